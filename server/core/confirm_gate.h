// ConfirmGate: a bound, beyond the log's own durability, on what the source may tell PostgreSQL
// is safe (the flushed LSN of its standby status updates).
//
// Under --confirm-after=replicated the replication into NATS JetStream implements it, so that
// PostgreSQL keeps every change JetStream does not have yet: losing walfeed's machine with its
// disk then loses nothing. The source reads the log's durable point first and the gate after
// it, and reports the smaller: a gate read later never lets through a change appended after.
#ifndef WALFEED_SERVER_CORE_CONFIRM_GATE_H_
#define WALFEED_SERVER_CORE_CONFIRM_GATE_H_

#include <cstdint>
#include <limits>

namespace walfeed {

class ConfirmGate {
 public:
  // No bound: everything the log holds is replicated.
  static constexpr uint64_t kNoBound = std::numeric_limits<uint64_t>::max();

  virtual ~ConfirmGate() = default;

  // The highest LSN the source may report as flushed now: every transaction whose commit LSN is
  // below it is replicated whole (PostgreSQL sends again any transaction whose commit LSN is at
  // or after the reported point). 0 while that is not known yet.
  virtual uint64_t ConfirmableLsn() const = 0;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_CONFIRM_GATE_H_
