#include "server/source/slot_creation_watch.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/table_name.h"
#include "server/source/pg_connection.h"
#include "spdlog/spdlog.h"

namespace walfeed {

SlotCreationWatch::SlotCreationWatch(std::string conninfo, std::string slot,
                                     absl::Duration first_report, absl::Duration interval)
    : conninfo_(std::move(conninfo)), slot_(std::move(slot)) {
  thread_ = std::thread(&SlotCreationWatch::Run, this, first_report, interval);
}

SlotCreationWatch::~SlotCreationWatch() {
  done_.Notify();
  thread_.join();
}

void SlotCreationWatch::Run(absl::Duration first_report, absl::Duration interval) {
  absl::Duration wait = first_report;
  while (!done_.WaitForNotificationWithTimeout(wait)) {
    Report(absl::Now() - started_);
    wait = interval;
  }
}

void SlotCreationWatch::Report(absl::Duration waited) {
  std::vector<std::string> blockers;
  absl::StatusOr<std::unique_ptr<PgConnection>> conn =
      PgConnection::Connect(conninfo_, PgConnection::Mode::kPlain);
  if (conn.ok()) {
    absl::StatusOr<QueryRows> prepared = (*conn)->Query(
        "SELECT gid, database, prepared FROM pg_prepared_xacts ORDER BY prepared LIMIT 5");
    if (prepared.ok()) {
      for (const std::vector<std::string>& row : prepared->rows) {
        blockers.push_back(absl::StrCat("prepared transaction '", row[0], "' in database ", row[1],
                                        " since ", row[2]));
      }
    }
    absl::StatusOr<QueryRows> open = (*conn)->Query(
        "SELECT pid, datname, xact_start FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
        "AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 5");
    if (open.ok()) {
      for (const std::vector<std::string>& row : open->rows) {
        blockers.push_back(absl::StrCat("transaction of pid ", row[0], " in database ", row[1],
                                        " open since ", row[2]));
      }
    }
  }
  spdlog::warn(
      "event=slot_creation_waiting slot={} waited={} blockers=\"{}\" action=\"PostgreSQL creates "
      "a logical slot only once every transaction running when it began has ended: COMMIT "
      "PREPARED or ROLLBACK PREPARED a forgotten prepared transaction, end or cancel a long one\"",
      slot_, absl::FormatDuration(absl::Trunc(waited, absl::Seconds(1))),
      EscapeForLog(blockers.empty() ? "none found" : absl::StrJoin(blockers, "; ")));
}

}  // namespace walfeed
