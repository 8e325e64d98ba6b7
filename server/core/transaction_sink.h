// TransactionSink: where the source delivers committed transactions (the log implements it).
//
// The contract the source relies on for exactly-once capture: Append() returns OK only once the
// transactions and the resume point are durable together (atomically: all or nothing), and
// ResumeLsn() then returns that resume point, also after a restart.
#ifndef WALFEED_SERVER_CORE_TRANSACTION_SINK_H_
#define WALFEED_SERVER_CORE_TRANSACTION_SINK_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
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

  // Which source the stored transactions came from, as the source describes itself ("" until
  // one is recorded). A source refuses to feed a sink that holds another source's changes.
  virtual std::string SourceIdentity() const = 0;
  // Records `identity` durably.
  virtual absl::Status SetSourceIdentity(absl::string_view identity) = 0;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_TRANSACTION_SINK_H_
