// RocksDbEventLogger: turns the RocksDB events an operator must know about into walfeed's log
// lines (internal to server/log/): background errors (a full disk, a failed flush), write stalls
// and I/O errors. It also turns off RocksDB's own recovery from such errors, which can wait for
// ever on a small volume: walfeed resumes the log itself once a write succeeds. While RocksDB
// refuses or stalls writes walfeed acknowledges nothing new to PostgreSQL; these lines say why.
#ifndef WALFEED_SERVER_LOG_ROCKSDB_EVENT_LOGGER_H_
#define WALFEED_SERVER_LOG_ROCKSDB_EVENT_LOGGER_H_

#include "rocksdb/listener.h"

namespace walfeed {

class RocksDbEventLogger final : public rocksdb::EventListener {
 public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override;
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason reason, rocksdb::Status error,
                            bool* auto_recovery) override;
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override;
  void OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) override;
  void OnIOError(const rocksdb::IOErrorInfo& info) override;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_ROCKSDB_EVENT_LOGGER_H_
