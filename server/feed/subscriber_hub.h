// SubscriberHub: wakes idle subscribers when the log's head moves, and paces their progress
// messages, with one dispatcher thread for all of them (no thread per stream).
//
// Ownership protocol, which is what makes this safe without reference counts: a subscriber is
// driven by exactly one party at a time, either gRPC (a write in flight), the hub (it sits in
// the waiting set or the ready queue), or the thread currently running its Pump(). A subscriber
// that finds nothing to send hands itself to the hub with AddWaiter(); the hub gives it back
// by calling Pump() from its dispatcher thread when the head passes the subscriber's next
// position, at each progress tick, on cancellation, and at shutdown.
// Thread-safe.
#ifndef WALFEED_SERVER_FEED_SUBSCRIBER_HUB_H_
#define WALFEED_SERVER_FEED_SUBSCRIBER_HUB_H_

#include <atomic>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/position.h"

namespace walfeed {

// What the hub drives.
class Pumpable {
 public:
  virtual ~Pumpable() = default;
  // Reads on from the subscriber's position and writes, waits or finishes.
  virtual void Pump() = 0;
};

class SubscriberHub {
 public:
  SubscriberHub(Position head, absl::Duration tick);
  ~SubscriberHub();

  SubscriberHub(const SubscriberHub&) = delete;
  SubscriberHub& operator=(const SubscriberHub&) = delete;

  // The log's head moved (called from the appender's thread; cheap).
  void OnHeadAdvanced(const Position& head);

  // Takes `subscriber` until the head reaches `next` (or a tick, cancel or shutdown). Returns
  // false, keeping nothing, when the head is already at or past `next`: read again.
  bool AddWaiter(Pumpable* subscriber, const Position& next);

  // Hands a waiting subscriber back promptly (it was cancelled). If it is not waiting right now,
  // its next AddWaiter() hands it back at once instead.
  void Wake(Pumpable* subscriber);

  // Takes `subscriber` to pump it again soon: it did a bounded amount of work and has more.
  void Requeue(Pumpable* subscriber);

  // From now on every subscriber is pumped at once so that it can end its stream.
  void BeginShutdown();
  bool shutting_down() const { return shutting_down_.load(std::memory_order_acquire); }

  // Stops the dispatcher thread. Call after the gRPC server has shut down.
  void Stop();

  void SubscriberStarted() { subscribers_.fetch_add(1); }
  // A subscriber wrote a message of `changes` changes and reads on from `next` (for metrics:
  // changes sent, and how far behind the slowest subscriber is).
  void Sent(Pumpable* subscriber, uint64_t changes, const Position& next);
  uint64_t changes_sent() const { return changes_sent_.load(); }
  // The position the slowest subscriber that has written a message reads on from; zero when
  // there is none.
  Position SlowestPosition() const;
  // Called from the subscriber's OnDone: the hub forgets it.
  void SubscriberEnded(Pumpable* subscriber);
  uint32_t subscribers() const { return subscribers_.load(); }

  // The most bytes of changes one stream's next message may hold: `max_batch_bytes`, shrunk as
  // streams grow in number so that all of them together hold about `total_budget` in messages
  // their clients have not taken yet (a stalled stream holds one), never below kMinBatchBytes.
  static constexpr size_t kMinBatchBytes = 64 << 10;
  size_t BatchBytesPerStream(size_t max_batch_bytes, size_t total_budget) const;

 private:
  void Dispatch();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration tick_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<uint32_t> subscribers_{0};
  std::atomic<uint64_t> changes_sent_{0};
  // Streams ended since the dispatcher last gave freed memory back to the system.
  std::atomic<uint32_t> ended_since_trim_{0};

  mutable absl::Mutex mu_;
  Position head_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Pumpable*, Position> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<Pumpable*> ready_ ABSL_GUARDED_BY(mu_);
  // Woken while not waiting: the next AddWaiter returns them to the ready queue.
  absl::flat_hash_set<Pumpable*> woken_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Pumpable*, Position> positions_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool head_moved_ ABSL_GUARDED_BY(mu_) = false;
  std::thread dispatcher_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_SUBSCRIBER_HUB_H_
