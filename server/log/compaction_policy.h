// CompactionPolicy: what one compaction pass may remove from the change log.
//
// Nothing younger than `lag` (by commit time), and nothing among the newest `lag_changes`
// positions, is ever removed. Below that: an older change of a row that has a newer one is
// removed; a delete (tombstone) is removed once older than `delete_retention`; changes that are
// never merged (messages, tables without a usable key) are removed once older than `retention`
// or, oldest first, while the log is larger than `retention_bytes`. Nothing at or after
// `keep_from` is removed, whatever else allows it (the changes not yet replicated, say).
#ifndef WALFEED_SERVER_LOG_COMPACTION_POLICY_H_
#define WALFEED_SERVER_LOG_COMPACTION_POLICY_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/core/position.h"

namespace walfeed {

struct CompactionPolicy {
  absl::Duration lag = absl::Hours(1);
  uint64_t lag_changes = 0;
  absl::Duration delete_retention = absl::Hours(24);
  // InfiniteDuration: keep unmerged changes forever (by time).
  absl::Duration retention = absl::InfiniteDuration();
  // 0: no size limit.
  uint64_t retention_bytes = 0;
  // Unset: no such bound.
  std::optional<Position> keep_from;

  absl::Status Validate() const {
    for (const auto& [name, value] : {std::pair<const char*, absl::Duration>{"compaction lag", lag},
                                      {"delete retention", delete_retention},
                                      {"retention", retention}}) {
      if (value < absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the ", name, " is ", absl::FormatDuration(value), "; it must not be negative"));
      }
    }
    return absl::OkStatus();
  }
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_COMPACTION_POLICY_H_
