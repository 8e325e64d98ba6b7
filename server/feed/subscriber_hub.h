// SubscriberHub: wakes idle subscribers when the log's head moves, and paces their progress
// messages, with one dispatcher thread for all of them (no thread per stream).
//
// Ownership protocol, which is what makes this safe without reference counts: a subscriber is
// driven by exactly one party at a time, either gRPC (a write in flight), the hub (it sits in
// the waiting set or the ready queue), or the thread currently running its Pump(). A subscriber
// that finds nothing to send hands itself to the hub with AddWaiter(); the hub gives it back
// by calling Pump() from its dispatcher thread when the head passes the subscriber's next
// position, at the first tick after its progress message is due, on cancellation, and at
// shutdown. Subscribers woken by the head go first: those due for progress are pumped in small
// slices between them, so that thousands of progress messages never hold up a live change.
//
// A subscriber filtered to some tables waits for those tables only: the hub learns which tables
// each head advance touched (HeadAdvance), wakes it when one of them moved, and tells it how far
// it may skip without reading (FirstPossible), so that thousands of streams following quiet
// tables cost nothing while other tables take writes.
// Thread-safe.
#ifndef WALFEED_SERVER_FEED_SUBSCRIBER_HUB_H_
#define WALFEED_SERVER_FEED_SUBSCRIBER_HUB_H_

#include <atomic>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/core/position.h"

namespace walfeed {

// What the hub drives.
class Pumpable {
 public:
  virtual ~Pumpable() = default;
  // Reads on from the subscriber's position and writes, waits or finishes. The hub calls it from
  // its dispatcher thread, holding no lock of its own: Pump() may call back into the hub.
  virtual void Pump() = 0;
};

class SubscriberHub {
 public:
  // `head`: the log's head when the hub starts; it knows nothing of the tables before it.
  SubscriberHub(Position head, absl::Duration tick);
  ~SubscriberHub();

  SubscriberHub(const SubscriberHub&) = delete;
  SubscriberHub& operator=(const SubscriberHub&) = delete;

  // The log's head moved from `previous` to `head`; the changes in between belong to `tables`
  // (TableKey) or, when `all_tables`, to any. Called from the appender's thread, one advance at
  // a time and in order; cheap.
  void OnHeadAdvanced(const Position& previous, const Position& head,
                      absl::Span<const std::string> tables, bool all_tables)
      ABSL_LOCKS_EXCLUDED(mu_);
  // An advance whose tables are not told.
  void OnHeadAdvanced(const Position& head) { OnHeadAdvanced(Position(), head, {}, true); }

  // Takes `subscriber` until the head reaches `next` (or the first tick at or after
  // `progress_due`, cancel or shutdown). Returns false, keeping nothing, when the head is already
  // at or past `next`: read again.
  // With `tables` (TableKeys; must outlive the wait), it waits until a change of one of them is
  // appended at or after `next` instead.
  bool AddWaiter(Pumpable* subscriber, const Position& next,
                 const absl::flat_hash_set<std::string>* tables = nullptr,
                 absl::Time progress_due = absl::InfinitePast()) ABSL_LOCKS_EXCLUDED(mu_);

  // Where a subscriber to `tables` that reads on from `next` may read on from instead: past the
  // head, when the hub has heard of every change since `next` and none was of these tables;
  // otherwise `next`.
  Position FirstPossible(const absl::flat_hash_set<std::string>& tables,
                         const Position& next) const;

  // Hands a waiting subscriber back promptly (it was cancelled). If it is not waiting right now,
  // its next AddWaiter() hands it back at once instead.
  void Wake(Pumpable* subscriber) ABSL_LOCKS_EXCLUDED(mu_);

  // Takes `subscriber` to pump it again soon: it did a bounded amount of work and has more.
  void Requeue(Pumpable* subscriber) ABSL_LOCKS_EXCLUDED(mu_);

  // From now on every subscriber is pumped at once so that it can end its stream.
  void BeginShutdown() ABSL_LOCKS_EXCLUDED(mu_);
  bool shutting_down() const { return shutting_down_.load(std::memory_order_acquire); }

  // Stops the dispatcher thread. Call after the gRPC server has shut down.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  void SubscriberStarted() { subscribers_.fetch_add(1); }
  // A subscriber wrote a message of `changes` changes and reads on from `next` (for metrics:
  // changes sent, and how far behind the slowest subscriber is).
  void Sent(Pumpable* subscriber, uint64_t changes, const Position& next);
  uint64_t changes_sent() const { return changes_sent_.load(); }
  // The position the slowest subscriber that has written a message reads on from; zero when
  // there is none.
  Position SlowestPosition() const;
  // Called from the subscriber's OnDone: the hub forgets it.
  void SubscriberEnded(Pumpable* subscriber) ABSL_LOCKS_EXCLUDED(mu_);
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

  // Subscribers due for progress pumped between two looks at the ready queue.
  static constexpr size_t kDueSlice = 64;

  // A waiting subscriber: for any change at or after `next`, or for changes of `tables`.
  struct Wait {
    Position next;
    absl::Time progress_due;
    const absl::flat_hash_set<std::string>* tables = nullptr;
  };
  // Hands every table waiter that `wakes` accepts to `queue`.
  template <typename Wakes>
  void WakeTableWaiters(Wakes wakes, std::vector<Pumpable*>* queue)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetTableWait(Pumpable* subscriber) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The one-driver rule, checked where invariants are (invariant.h): the hub takes a subscriber
  // only from the party driving it, never one it holds already, and gives it back once.
  void Take(Pumpable* subscriber) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void GiveBack(Pumpable* subscriber) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
#ifdef WALFEED_DEBUG_CHECKS
  // Subscribers the hub holds: waiting, ready or due.
  absl::flat_hash_set<Pumpable*> held_ ABSL_GUARDED_BY(mu_);
#endif

  mutable absl::Mutex mu_;
  Position head_ ABSL_GUARDED_BY(mu_);
  // Waiting for any change at or after their position.
  absl::flat_hash_map<Pumpable*, Wait> waiting_ ABSL_GUARDED_BY(mu_);
  // Waiting for changes of their tables, and the same by table.
  absl::flat_hash_map<Pumpable*, Wait> table_waiting_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<Pumpable*>> waiting_by_table_
      ABSL_GUARDED_BY(mu_);
  // The newest head at which each table was touched, heard since `complete_after_`: the hub has
  // heard which tables every change after that position belongs to (not before: changes appended
  // before it started, or in an advance whose tables were not told).
  absl::flat_hash_map<std::string, Position> touched_at_ ABSL_GUARDED_BY(mu_);
  Position complete_after_ ABSL_GUARDED_BY(mu_);
  // To pump: woken by the head, a wake or a requeue (all at once), and due for progress (in
  // slices, oldest first).
  std::vector<Pumpable*> ready_ ABSL_GUARDED_BY(mu_);
  std::deque<Pumpable*> due_ ABSL_GUARDED_BY(mu_);
  // Woken while not waiting: the next AddWaiter returns them to the ready queue.
  absl::flat_hash_set<Pumpable*> woken_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Pumpable*, Position> positions_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool head_moved_ ABSL_GUARDED_BY(mu_) = false;
  // The head moved by changes whose tables were not told: table waiters must look.
  bool any_table_moved_ ABSL_GUARDED_BY(mu_) = false;
  std::thread dispatcher_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_SUBSCRIBER_HUB_H_
