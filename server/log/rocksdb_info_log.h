// RocksDbInfoLog: RocksDB's own diagnostic messages (its "info log") as walfeed log lines
// (internal to server/log/). RocksDB's default info log is a LOG file in the data directory,
// written through a file writer that, in RocksDB 7.8 as Debian builds it, aborts the process on
// the first message after a failed write: a full disk would kill walfeed. This logger writes
// nothing to the data directory, so a full disk costs no message and never aborts. RocksDB's
// warnings and errors become `event=rocksdb_log` lines; its routine messages (flushes,
// compactions, statistics) appear at --log-level=debug.
#ifndef WALFEED_SERVER_LOG_ROCKSDB_INFO_LOG_H_
#define WALFEED_SERVER_LOG_ROCKSDB_INFO_LOG_H_

#include <cstdarg>

#include "rocksdb/env.h"

namespace walfeed {

class RocksDbInfoLog final : public rocksdb::Logger {
 public:
  // The level below which RocksDB need not even format a message, from walfeed's log level.
  static rocksdb::InfoLogLevel LevelForWalfeedsLog();

  RocksDbInfoLog();

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_ROCKSDB_INFO_LOG_H_
