#include "server/source/slot_monitor.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace walfeed {

absl::StatusOr<SlotWal> SlotMonitor::Read() {
  absl::MutexLock lock(&mu_);
  if (connection_ == nullptr) {
    absl::StatusOr<std::unique_ptr<PgConnection>> connected =
        PgConnection::Connect(conninfo_, PgConnection::Mode::kPlain);
    if (!connected.ok()) return connected.status();
    connection_ = *std::move(connected);
  }
  absl::StatusOr<QueryRows> rows = connection_->Query(absl::StrCat(
      "SELECT (pg_current_wal_lsn() - '0/0')::bigint, (restart_lsn - '0/0')::bigint, "
      "(confirmed_flush_lsn - '0/0')::bigint, active FROM pg_replication_slots WHERE slot_name = ",
      connection_->QuoteLiteral(slot_)));
  if (!rows.ok()) {
    connection_.reset();  // asked again on a fresh connection next time
    return rows.status();
  }
  if (rows->rows.empty()) {
    return absl::NotFoundError(absl::StrCat("replication slot '", slot_, "' does not exist"));
  }
  SlotWal wal;
  const std::vector<std::string>& row = rows->rows[0];
  const std::vector<bool>& nulls = rows->nulls[0];
  if (!absl::SimpleAtoi(row[0], &wal.current_wal_lsn) ||
      (!nulls[1] && !absl::SimpleAtoi(row[1], &wal.restart_lsn)) ||
      (!nulls[2] && !absl::SimpleAtoi(row[2], &wal.confirmed_flush_lsn))) {
    return absl::InternalError("pg_replication_slots answered something that is not an LSN");
  }
  wal.active = row[3] == "t";
  return wal;
}

}  // namespace walfeed
