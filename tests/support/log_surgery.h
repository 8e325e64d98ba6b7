// Changes a closed change log's RocksDB files behind its back, the way an older walfeed would
// have left them, for tests of what the log does on open.
#ifndef WALFEED_TESTS_SUPPORT_LOG_SURGERY_H_
#define WALFEED_TESTS_SUPPORT_LOG_SURGERY_H_

#include <string>

#include "absl/status/status.h"

namespace walfeed::test {

// Removes the per-key index's format record, as a log written before the format was recorded.
absl::Status ForgetIndexFormat(const std::string& log_dir);

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_LOG_SURGERY_H_
