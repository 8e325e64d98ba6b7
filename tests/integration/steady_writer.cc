#include "tests/integration/steady_writer.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/postgres_environment.h"

namespace walfeed::test {

SteadyWriter::SteadyWriter(std::string db, int first_id) : db_(std::move(db)), next_id_(first_id) {
  thread_ = std::thread([this] { Run(); });
}

void SteadyWriter::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void SteadyWriter::Run() {
  while (!stop_) {
    const int id = next_id_++;
    std::string sql;
    if (id % 40 == 0) {
      sql = absl::StrCat("INSERT INTO t SELECT g, repeat('b', 150) FROM generate_series(",
                         id * 1000, ", ", id * 1000 + 299, ") g");
    } else if (id % 7 == 0) {
      sql = absl::StrCat("UPDATE t SET v = 'updated ", id, "' WHERE id = ", id - 3);
    } else if (id % 13 == 0) {
      // Not transactional: stored at its record's end - 1, between commits.
      sql = absl::StrCat("SELECT pg_logical_emit_message(false, 'heartbeat', '", id, "')");
    } else if (id % 11 == 0) {
      sql = absl::StrCat("DELETE FROM t WHERE id = ", id - 5);
    } else {
      sql = absl::StrCat("INSERT INTO t VALUES (", id, ", 'row ", id, "')");
    }
    if (SharedPostgres().Exec(db_, sql).ok()) ++transactions_;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

}  // namespace walfeed::test
