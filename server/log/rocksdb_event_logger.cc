#include "server/log/rocksdb_event_logger.h"

#include "server/core/event_counters.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

const char* ReasonName(rocksdb::BackgroundErrorReason reason) {
  switch (reason) {
    case rocksdb::BackgroundErrorReason::kFlush:
      return "flush";
    case rocksdb::BackgroundErrorReason::kCompaction:
      return "compaction";
    case rocksdb::BackgroundErrorReason::kWriteCallback:
      return "write";
    case rocksdb::BackgroundErrorReason::kMemTable:
      return "memtable";
    case rocksdb::BackgroundErrorReason::kManifestWrite:
      return "manifest_write";
    case rocksdb::BackgroundErrorReason::kFlushNoWAL:
      return "flush_no_wal";
    case rocksdb::BackgroundErrorReason::kManifestWriteNoWAL:
      return "manifest_write_no_wal";
  }
  return "other";
}

const char* StallName(rocksdb::WriteStallCondition condition) {
  switch (condition) {
    case rocksdb::WriteStallCondition::kNormal:
      return "normal";
    case rocksdb::WriteStallCondition::kDelayed:
      return "delayed";
    case rocksdb::WriteStallCondition::kStopped:
      return "stopped";
  }
  return "other";
}

}  // namespace

void RocksDbEventLogger::OnBackgroundError(rocksdb::BackgroundErrorReason reason,
                                           rocksdb::Status* error) {
  CountEvent("log_background_error");
  spdlog::error(
      "event=log_background_error during={} error=\"{}\" effect=\"the change log takes no writes "
      "until this is resolved (is the disk full?); nothing new is acknowledged to PostgreSQL\"",
      ReasonName(reason), error->ToString());
}

void RocksDbEventLogger::OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason reason,
                                              rocksdb::Status error, bool* auto_recovery) {
  // RocksDB's own recovery from a full disk waits for more free space than a small volume may
  // ever have, and refuses DB::Resume() meanwhile (Busy). walfeed resumes itself instead: its next
  // write calls Resume(), which succeeds as soon as the write can.
  *auto_recovery = false;
  spdlog::warn(
      "event=log_recovery_deferred during={} error=\"{}\" effect=\"walfeed retries the "
      "write once space returns\"",
      ReasonName(reason), error.ToString());
}

void RocksDbEventLogger::OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) {
  if (info.new_bg_error.ok()) {
    spdlog::warn("event=log_recovered error_was=\"{}\"", info.old_bg_error.ToString());
  } else {
    spdlog::error("event=log_recovery_failed error=\"{}\"", info.new_bg_error.ToString());
  }
}

void RocksDbEventLogger::OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) {
  CountEvent("log_write_stall");
  spdlog::warn("event=log_write_stall family={} from={} to={}", info.cf_name,
               StallName(info.condition.prev), StallName(info.condition.cur));
}

void RocksDbEventLogger::OnIOError(const rocksdb::IOErrorInfo& info) {
  spdlog::error("event=log_io_error file=\"{}\" error=\"{}\"", info.file_path,
                info.io_status.ToString());
}

}  // namespace walfeed
