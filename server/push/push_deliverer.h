// PushDeliverer: delivers one push subscription, in order, on a thread of its own.
//
// The exactly-once protocol (with a receiver that drops a request whose idempotency key it has
// already applied):
// - One batch in flight. Before its first attempt the batch's bounds (its first and last cursor)
//   are stored durably as the subscription's pending batch, in the same write that stores the
//   previous batch's acknowledgement. Every attempt, after a walfeed restart too, sends that same
//   batch with the same idempotency key (read again from the log: positions never change).
// - Only a 2xx answer moves the cursor past the batch. 408, 429, 5xx and transport errors retry
//   it (delivery_policy.h); any other answer pauses the subscription until an operator resumes it.
// - A subscription that holds state (it was given something, or started after a cursor or at the
//   head) pauses with CURSOR_PURGED when compaction purged what it had not read yet (a tombstone
//   it would have missed), instead of delivering on without it.
// Changes a subscription's filters leave out move its cursor too, stored at most every second
// (and when it catches up), so that a restart does not read them again.
#ifndef WALFEED_SERVER_PUSH_PUSH_DELIVERER_H_
#define WALFEED_SERVER_PUSH_PUSH_DELIVERER_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/position.h"
#include "server/feed/subscription_plan.h"
#include "server/log/change_log.h"
#include "server/push/http_poster.h"
#include "server/push/push_store.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class PushDeliverer {
 public:
  // `log` and `store` must outlive the deliverer; `database` names the source database (for the
  // Debezium envelope).
  PushDeliverer(std::string name, const ChangeLog* log, PushStore* store,
                std::function<std::string()> database);
  ~PushDeliverer();
  PushDeliverer(const PushDeliverer&) = delete;
  PushDeliverer& operator=(const PushDeliverer&) = delete;

  void Start();
  // Asks the thread to stop (abandoning a request in flight) without waiting for it.
  void RequestStop();
  // Abandons a request in flight (it is sent again after a restart), stores what was
  // acknowledged, and joins.
  void Stop();
  // Looks again soon: the head moved, or an operator changed the subscription.
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);

  // What only the running delivery knows, for PushSubscriptionInfo.
  struct Runtime {
    std::string state = "delivering";
    // The delivery's state (PushStore's fields, CopyDeliveryState) ahead of what is stored, and
    // the epoch it belongs to; nullopt before the first look.
    std::optional<v1::StoredPushSubscription> progress;
    uint64_t epoch = 0;
    // Why the last read of the log failed, while it does.
    std::string last_error;
    uint64_t lag_changes = 0;
    double lag_seconds = 0;
    std::string http_version;
  };
  Runtime runtime() const ABSL_LOCKS_EXCLUDED(mu_);

  // Records counted towards lag_changes at most.
  static constexpr uint64_t kLagCountLimit = 100000;

 private:
  // A batch read from the log.
  struct Batch {
    v1::PushBatch message;
    Position first;
    Position last;
    // Every record up to here was looked at (delivered, or filtered out).
    Position scanned_to;
  };
  enum class ReadEnd { kOk, kPause };

  void Run();
  // One round: reads what comes next and delivers it, or waits. Returns false when the
  // subscription is gone.
  bool Step(HttpPoster& poster);
  // Reads the next batch after `cursor_` (or, with `until`, the pending batch again). Pauses the
  // subscription (and says kPause) when its filter cannot judge a change.
  absl::StatusOr<ReadEnd> ReadBatch(const SubscriptionPlan& plan,
                                    const v1::PushSubscription& settings,
                                    std::optional<Position> until, Batch* batch);
  // Sends `batch` until a 2xx answer, a pause, a stop or an operator's change.
  void Deliver(HttpPoster& poster, const v1::PushSubscription& settings, Batch& batch);
  // Shows working_ in runtime().
  void Publish();
  // Stores the delivery's fields of `working_` (in the epoch it was read in).
  void Save();
  void Pause(const std::string& reason, const std::string& error);
  // Waits until Wake(), Stop() or `deadline`; at once when woken since the last ClearWake().
  void ClearWake() ABSL_LOCKS_EXCLUDED(mu_);
  void WaitForWake(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  void SetRuntime(const std::function<void(Runtime*)>& change) ABSL_LOCKS_EXCLUDED(mu_);
  void CountLag();

  const std::string name_;
  const ChangeLog* const log_;
  PushStore* const store_;
  const std::function<std::string()> database_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  // The deliverer's own copy of the stored subscription and the epoch it was read in; touched by
  // its thread only.
  v1::StoredPushSubscription working_;
  uint64_t epoch_ = 0;
  bool loaded_ = false;
  // working_ holds changes not stored yet (an acknowledgement, a cursor moved over filtered-out
  // changes), and when they were last stored.
  bool dirty_ = false;
  absl::Time saved_at_ = absl::InfinitePast();
  absl::Time lag_counted_at_ = absl::InfinitePast();

  mutable absl::Mutex mu_;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  Runtime runtime_ ABSL_GUARDED_BY(mu_);
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_PUSH_PUSH_DELIVERER_H_
