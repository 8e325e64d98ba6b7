// ChangeLogOptions: how the change log opens its RocksDB database. Defaults are the safe ones.
#ifndef WALFEED_SERVER_LOG_CHANGE_LOG_OPTIONS_H_
#define WALFEED_SERVER_LOG_CHANGE_LOG_OPTIONS_H_

#include <string>

#include "absl/status/status.h"
#include "server/log/out_of_line_values.h"

namespace walfeed {

struct ChangeLogOptions {
  // Directory of the RocksDB database; created when missing.
  std::string path;
  // fsync every append before it returns. Only tests that do not need crash safety turn it off.
  bool sync = true;
  // RocksDB block cache for reads, in bytes.
  size_t block_cache_bytes = 64 << 20;
  // Which values a change stores out of line (tests make them small).
  OutOfLineLimits out_of_line;

  absl::Status Validate() const {
    if (path.empty()) return absl::InvalidArgumentError("the change log needs a data directory");
    if (out_of_line.chunk_bytes == 0) {
      return absl::InvalidArgumentError("out-of-line values need a positive chunk size");
    }
    return absl::OkStatus();
  }
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_CHANGE_LOG_OPTIONS_H_
