#include "server/feed/subscriber_hub.h"

#include <algorithm>
#include <utility>

#include "server/core/free_memory.h"
#include "server/core/invariant.h"

namespace walfeed {

SubscriberHub::SubscriberHub(Position head, absl::Duration tick)
    : tick_(tick), head_(head), complete_after_(head) {
  dispatcher_ = std::thread(&SubscriberHub::Dispatch, this);
}

SubscriberHub::~SubscriberHub() { Stop(); }

void SubscriberHub::OnHeadAdvanced(const Position& previous, const Position& head,
                                   absl::Span<const std::string> tables, bool all_tables) {
  absl::MutexLock lock(&mu_);
  if (head <= head_) return;
  // What the hub knows of the tables holds after the newest advance it did not hear in full.
  if (all_tables || previous != head_) {
    complete_after_ = std::max(complete_after_, head);
    any_table_moved_ = true;
  }
  head_ = head;
  head_moved_ = true;
  for (const std::string& table : tables) {
    touched_at_[table] = head;
    const auto waiters = waiting_by_table_.find(table);
    if (waiters == waiting_by_table_.end()) continue;
    // Every table waiter waits from at most the head before this advance: all of these wake.
    const absl::flat_hash_set<Pumpable*> woken = std::move(waiters->second);
    for (Pumpable* subscriber : woken) {
      ForgetTableWait(subscriber);
      ready_.push_back(subscriber);
    }
  }
}

bool SubscriberHub::AddWaiter(Pumpable* subscriber, const Position& next,
                              const absl::flat_hash_set<std::string>* tables,
                              absl::Time progress_due) {
  absl::MutexLock lock(&mu_);
  if (next <= head_ && !head_.IsZero()) return false;
  Take(subscriber);
  if (woken_.erase(subscriber) > 0 || shutting_down() || stopping_) {
    ready_.push_back(subscriber);
  } else if (tables != nullptr && !tables->empty()) {
    table_waiting_[subscriber] = Wait{next, progress_due, tables};
    for (const std::string& table : *tables) waiting_by_table_[table].insert(subscriber);
  } else {
    waiting_[subscriber] = Wait{next, progress_due};
  }
  return true;
}

Position SubscriberHub::FirstPossible(const absl::flat_hash_set<std::string>& tables,
                                      const Position& next) const {
  absl::MutexLock lock(&mu_);
  if (next <= complete_after_ || next > head_) return next;
  for (const std::string& table : tables) {
    const auto touched = touched_at_.find(table);
    if (touched != touched_at_.end() && touched->second >= next) return next;
  }
  return head_.Successor();
}

void SubscriberHub::ForgetTableWait(Pumpable* subscriber) {
  const auto wait = table_waiting_.find(subscriber);
  if (wait == table_waiting_.end()) return;
  for (const std::string& table : *wait->second.tables) {
    const auto waiters = waiting_by_table_.find(table);
    if (waiters == waiting_by_table_.end()) continue;
    waiters->second.erase(subscriber);
    if (waiters->second.empty()) waiting_by_table_.erase(waiters);
  }
  table_waiting_.erase(wait);
}

template <typename Wakes>
void SubscriberHub::WakeTableWaiters(Wakes wakes, std::vector<Pumpable*>* queue) {
  const size_t first = queue->size();
  for (const auto& [subscriber, wait] : table_waiting_) {
    if (wakes(wait)) queue->push_back(subscriber);
  }
  for (size_t i = first; i < queue->size(); ++i) ForgetTableWait((*queue)[i]);
}

void SubscriberHub::Wake(Pumpable* subscriber) {
  absl::MutexLock lock(&mu_);
  if (waiting_.erase(subscriber) > 0) {
    ready_.push_back(subscriber);
  } else if (table_waiting_.contains(subscriber)) {
    ForgetTableWait(subscriber);
    ready_.push_back(subscriber);
  } else {
    woken_.insert(subscriber);
  }
}

void SubscriberHub::Requeue(Pumpable* subscriber) {
  absl::MutexLock lock(&mu_);
  Take(subscriber);
  ready_.push_back(subscriber);
}

void SubscriberHub::Take([[maybe_unused]] Pumpable* subscriber) {
#ifdef WALFEED_DEBUG_CHECKS
  WALFEED_INVARIANT(held_.insert(subscriber).second,
                    "the hub was handed a subscriber it already holds: two parties drive it");
#endif
}

void SubscriberHub::GiveBack([[maybe_unused]] Pumpable* subscriber) {
#ifdef WALFEED_DEBUG_CHECKS
  WALFEED_INVARIANT(held_.erase(subscriber) == 1,
                    "the hub gave back a subscriber it did not hold: it would be pumped twice");
#endif
}

size_t SubscriberHub::BatchBytesPerStream(size_t max_batch_bytes, size_t total_budget) const {
  const size_t share = total_budget / std::max<uint32_t>(1, subscribers_.load());
  return std::min(max_batch_bytes, std::max(kMinBatchBytes, share));
}

void SubscriberHub::SubscriberEnded(Pumpable* subscriber) {
  subscribers_.fetch_sub(1);
  ended_since_trim_.fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
#ifdef WALFEED_DEBUG_CHECKS
  WALFEED_INVARIANT(!held_.contains(subscriber), "a subscriber ended while the hub still held it");
#endif
  woken_.erase(subscriber);
  positions_.erase(subscriber);
}

void SubscriberHub::Sent(Pumpable* subscriber, uint64_t changes, const Position& next) {
  changes_sent_.fetch_add(changes, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  positions_[subscriber] = next;
}

Position SubscriberHub::SlowestPosition() const {
  absl::MutexLock lock(&mu_);
  Position slowest;
  for (const auto& [subscriber, next] : positions_) {
    if (slowest.IsZero() || next < slowest) slowest = next;
  }
  return slowest;
}

void SubscriberHub::BeginShutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_.store(true, std::memory_order_release);
  for (const auto& [subscriber, wait] : waiting_) ready_.push_back(subscriber);
  waiting_.clear();
  WakeTableWaiters([](const Wait&) { return true; }, &ready_);
}

void SubscriberHub::Stop() {
  BeginShutdown();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (dispatcher_.joinable()) dispatcher_.join();
}

bool SubscriberHub::HasWork() const {
  return stopping_ || head_moved_ || any_table_moved_ || !ready_.empty() || !due_.empty();
}

void SubscriberHub::Dispatch() {
  absl::Time next_tick = absl::Now() + tick_;
  absl::Time next_trim = absl::Now();
  for (;;) {
    std::vector<Pumpable*> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(this, &SubscriberHub::HasWork), next_tick);
      if (stopping_ && ready_.empty() && due_.empty()) return;
      const absl::Time now = absl::Now();
      const bool tick = now >= next_tick;
      if (tick) next_tick = now + tick_;
      // Streams that ended freed their buffers to malloc, which keeps them; hand them back to
      // the system, so that RSS falls again after a crowd of streams leaves.
      // At most once a second: a trim walks the whole heap.
      if (tick && now >= next_trim &&
          ended_since_trim_.exchange(0, std::memory_order_relaxed) > 0) {
        ReleaseFreeMemory();
        next_trim = now + absl::Seconds(1);
      }
      if (head_moved_ || tick) {
        for (auto it = waiting_.begin(); it != waiting_.end();) {
          if (it->second.next <= head_) {
            ready_.push_back(it->first);
          } else if (tick && it->second.progress_due <= now) {
            due_.push_back(it->first);
          } else {
            ++it;
            continue;
          }
          waiting_.erase(it++);
        }
        head_moved_ = false;
      }
      if (any_table_moved_) {
        const Position head = head_;
        WakeTableWaiters([&](const Wait& wait) { return wait.next <= head; }, &ready_);
        any_table_moved_ = false;
      }
      if (tick) {
        std::vector<Pumpable*> due;
        WakeTableWaiters([&](const Wait& wait) { return wait.progress_due <= now; }, &due);
        due_.insert(due_.end(), due.begin(), due.end());
      }
      batch.swap(ready_);
      // Then a slice of those due for progress: the head's waiters never wait for them all.
      for (size_t i = 0; i < kDueSlice && !due_.empty(); ++i) {
        batch.push_back(due_.front());
        due_.pop_front();
      }
      for (Pumpable* subscriber : batch) GiveBack(subscriber);
    }
    for (Pumpable* subscriber : batch) subscriber->Pump();
  }
}

}  // namespace walfeed
