// Changes a closed change log's RocksDB files behind its back, the way an older (or newer)
// walfeed would have left them, for tests of what the log does on open.
#ifndef WALFEED_TESTS_SUPPORT_LOG_SURGERY_H_
#define WALFEED_TESTS_SUPPORT_LOG_SURGERY_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace walfeed::test {

// Removes the per-key index's format record, as a log written before the format was recorded.
absl::Status ForgetIndexFormat(const std::string& log_dir);

// Sets the key `key` of the default column family to `value`, or removes it when nullopt.
absl::Status SetDefaultKey(const std::string& log_dir, const std::string& key,
                           const std::optional<std::string>& value);

// The value of `key` in the default column family (nullopt when absent).
absl::StatusOr<std::optional<std::string>> ReadDefaultKey(const std::string& log_dir,
                                                          const std::string& key);

// Adds an empty column family called `name`, as a newer walfeed might.
absl::Status AddColumnFamily(const std::string& log_dir, const std::string& name);

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_LOG_SURGERY_H_
