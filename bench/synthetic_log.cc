#include "bench/synthetic_log.h"

#include <filesystem>
#include <utility>

#include "server/core/position.h"

namespace walfeed {
namespace bench {

v1::Change RowChange(uint64_t lsn, uint32_t seq, int64_t id, uint64_t version, size_t row_bytes,
                     absl::Time committed) {
  v1::Change change;
  change.set_lsn(lsn);
  change.set_seq(seq);
  change.set_cursor(FormatCursor({lsn, seq}));
  change.set_lsn_text(FormatLsn(lsn));
  change.set_op(version == 0 ? v1::Change::INSERT : v1::Change::UPDATE);
  change.set_schema("public");
  change.set_table("accounts");
  change.set_key_kind(v1::Change::PRIMARY_KEY);
  change.set_xid(static_cast<uint32_t>(lsn));
  change.mutable_commit_time()->set_seconds(absl::ToUnixSeconds(committed));
  v1::Column* key = change.add_key();
  key->set_name("id");
  key->set_type("int8");
  key->set_int_(id);
  *change.add_after() = *key;
  v1::Column* version_column = change.add_after();
  version_column->set_name("version");
  version_column->set_type("int8");
  version_column->set_int_(static_cast<int64_t>(version));
  v1::Column* payload = change.add_after();
  payload->set_name("payload");
  payload->set_type("text");
  // Varies per row so that compression does not make every row free.
  std::string text;
  uint64_t x = static_cast<uint64_t>(id) * 0x9E3779B97F4A7C15ull + version;
  while (text.size() < row_bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    text.push_back(static_cast<char>('a' + x % 26));
  }
  payload->set_text(std::move(text));
  return change;
}

absl::Status Fill(ChangeLog& log, uint64_t count, uint64_t keys, uint64_t first_round,
                  size_t row_bytes, absl::Time committed) {
  uint64_t lsn = log.Head().lsn + 0x1000;
  for (uint64_t done = 0; done < count; lsn += 0x1000) {
    Transaction txn;
    txn.commit_lsn = lsn;
    txn.end_lsn = lsn + 0x30;
    for (uint32_t seq = 0; seq < kChangesPerTransaction && done < count; ++seq, ++done) {
      const uint64_t n = done + first_round * keys;
      txn.changes.push_back(
          RowChange(lsn, seq, static_cast<int64_t>(n % keys), n / keys, row_bytes, committed));
    }
    txn.changes.back().set_last_in_transaction(true);
    if (absl::Status s = log.Append({txn}, lsn + 0x30); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ChangeLog>> OpenUnsyncedLog(const std::string& path) {
  ChangeLogOptions options;
  options.path = path;
  options.sync = false;
  return ChangeLog::Open(options);
}

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

}  // namespace bench
}  // namespace walfeed
