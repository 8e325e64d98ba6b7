// Compactor: runs compaction passes over a ChangeLog on its own thread, off the append and read
// paths: one every `interval` (none when it is InfiniteDuration), and one on request. In between
// it brings the per-key index up to date when a snapshot or a staged transaction left it behind.
//
// Promises: at most one pass runs at a time; a request made while a pass runs or is pending is
// refused at once (FailedPrecondition) instead of queueing; every accepted request's `done` is
// called exactly once, from the compactor's thread, also when Stop() interrupts the pass
// (Unavailable). Thread-safe.
#ifndef WALFEED_SERVER_LOG_COMPACTOR_H_
#define WALFEED_SERVER_LOG_COMPACTOR_H_

#include <atomic>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/log/change_log.h"
#include "server/log/compaction_policy.h"

namespace walfeed {

class Compactor {
 public:
  using Done = std::function<void(absl::StatusOr<v1::CompactionResult>)>;

  // `log` must outlive the compactor.
  Compactor(ChangeLog* log, CompactionPolicy policy, absl::Duration interval);
  ~Compactor();

  Compactor(const Compactor&) = delete;
  Compactor& operator=(const Compactor&) = delete;

  // Every pass keeps what is at or after the position `keep_from` returns (nullopt: no bound),
  // whatever its policy allows: the replication's first unreplicated change, the oldest change a
  // named consumer has not committed. With several, the oldest of them. Call before Start().
  void KeepFrom(std::function<std::optional<Position>()> keep_from) {
    keep_from_.push_back(std::move(keep_from));
  }

  void Start();

  // Runs a pass with `policy` as soon as the thread is free and calls `done` with its result.
  absl::Status Request(const CompactionPolicy& policy, Done done);

  // Interrupts the running pass (between batches), answers a pending request, and joins.
  void Stop();

  const CompactionPolicy& policy() const { return policy_; }

 private:
  struct Pending {
    CompactionPolicy policy;
    Done done;
  };

  static constexpr absl::Duration kIndexCheckInterval = absl::Seconds(1);

  void Loop();
  // Runs one pass and logs its outcome.
  absl::StatusOr<v1::CompactionResult> RunPass(const CompactionPolicy& policy);

  ChangeLog* const log_;
  const CompactionPolicy policy_;
  const absl::Duration interval_;
  std::vector<std::function<std::optional<Position>()>> keep_from_;
  std::atomic<bool> stop_requested_{false};
  absl::Mutex stop_mu_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<Pending> pending_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_COMPACTOR_H_
