// TransactionSink: where the source delivers committed transactions (the log implements it).
//
// The contract the source relies on for exactly-once capture: Append() returns OK only once the
// transactions and the resume point are durable together (atomically: all or nothing), and
// ResumeLsn() then returns that resume point, also after a restart. Staged changes become visible
// only when committed.
//
// Threads: the source calls it from two threads (its streaming thread reads ResumeLsn(), Head()
// and Metadata() and sets metadata and discards staged changes between sessions; the durable
// appender's thread calls Append() and StageChanges()), and readers of the log call Head() from
// theirs. An implementation must be thread-safe and must serialize the writing calls.
#ifndef WALFEED_SERVER_CORE_TRANSACTION_SINK_H_
#define WALFEED_SERVER_CORE_TRANSACTION_SINK_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/core/position.h"
#include "server/core/transaction.h"

namespace walfeed {

class TransactionSink {
 public:
  virtual ~TransactionSink() = default;

  // Durably appends `transactions` (in commit order, each after everything already stored)
  // together with `resume_lsn`, the source LSN from which streaming must resume after a restart.
  // `transactions` may be empty to store only a new resume point.
  virtual absl::Status Append(absl::Span<const Transaction> transactions, uint64_t resume_lsn) = 0;

  // The resume point of the last successful Append (0 when nothing was ever appended).
  virtual uint64_t ResumeLsn() const = 0;

  // The newest committed position (zero when nothing is committed).
  virtual Position Head() const = 0;

  // Staged changes (the initial snapshot) are written ahead at their final positions, above the
  // head, without a sync; readers do not see them. CommitStaged() makes everything up to `last`
  // visible and durable together with `resume_lsn`; DiscardStaged() drops whatever is staged
  // (also done when the sink reopens), so a crash never leaves a partial stage visible.
  // `metadata` (see Metadata()) is written in the same atomic write as the commit.
  using MetadataUpdates = std::vector<std::pair<std::string, std::string>>;
  virtual absl::Status StageChanges(absl::Span<const v1::Change> changes) = 0;
  virtual absl::Status CommitStaged(const Position& last, uint64_t resume_lsn,
                                    const MetadataUpdates& metadata) = 0;
  virtual absl::Status DiscardStaged() = 0;

  // Small durable facts the source keeps beside its changes ("" when `key` was never set):
  // which database the changes come from, how far the snapshot got.
  virtual std::string Metadata(absl::string_view key) const = 0;
  virtual absl::Status SetMetadata(absl::string_view key, absl::string_view value) = 0;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_TRANSACTION_SINK_H_
