// LogBootstrap: fills a replica's log from another instance of its group over the public API,
// for when the replication stream no longer holds what the replica lacks (JetStream's limits
// removed the log's beginning). It reads Subscribe(log_id, from the local head, stop_at_head)
// and ReadValue from each reachable address in turn and appends what it gets exactly as that
// instance stores it (same positions, same bytes, values out of line in the same chunks).
//
// Promises:
// - Only the same log: the peer must serve the local log's id, else nothing is copied.
// - Whole transactions: a transaction becomes visible once all of it is copied; an attempt that
//   breaks off leaves the log at its last whole transaction (what was staged is discarded on
//   reopen or by the next attempt), and the next attempt reads on from there.
// - The copy ends at the peer's head as it was when the read reached it, and carries the peer's
//   purge point (read after the copy, so it covers anything purged meanwhile): a consumer
//   resuming below it is told its cursor was purged, as the peer would tell it.
// Not thread-safe; used by the follower's thread.
#ifndef WALFEED_SERVER_REPLICATION_LOG_BOOTSTRAP_H_
#define WALFEED_SERVER_REPLICATION_LOG_BOOTSTRAP_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/log/change_log.h"

namespace walfeed {

class LogBootstrap {
 public:
  // `log` must outlive the bootstrap.
  LogBootstrap(std::vector<std::string> addresses, ChangeLog* log)
      : addresses_(std::move(addresses)), log_(log) {}

  // Copies what the reachable peers hold after the local head; Unavailable when none answers;
  // `stopping` ends it early (with Cancelled).
  absl::Status CopyToPeerHead(const std::function<bool()>& stopping);

 private:
  absl::Status CopyFrom(const std::string& address, const std::function<bool()>& stopping);

  const std::vector<std::string> addresses_;
  ChangeLog* const log_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_REPLICATION_LOG_BOOTSTRAP_H_
