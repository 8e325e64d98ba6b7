#include "server/feed/subscriber_hub.h"

#include <malloc.h>

#include <algorithm>
#include <utility>

namespace walfeed {

SubscriberHub::SubscriberHub(Position head, absl::Duration tick) : tick_(tick), head_(head) {
  dispatcher_ = std::thread(&SubscriberHub::Dispatch, this);
}

SubscriberHub::~SubscriberHub() { Stop(); }

void SubscriberHub::OnHeadAdvanced(const Position& head) {
  absl::MutexLock lock(&mu_);
  if (head > head_) {
    head_ = head;
    head_moved_ = true;
  }
}

bool SubscriberHub::AddWaiter(Pumpable* subscriber, const Position& next) {
  absl::MutexLock lock(&mu_);
  if (next <= head_ && !head_.IsZero()) return false;
  if (woken_.erase(subscriber) > 0 || shutting_down() || stopping_) {
    ready_.push_back(subscriber);
  } else {
    waiting_[subscriber] = next;
  }
  return true;
}

void SubscriberHub::Wake(Pumpable* subscriber) {
  absl::MutexLock lock(&mu_);
  if (waiting_.erase(subscriber) > 0) {
    ready_.push_back(subscriber);
  } else {
    woken_.insert(subscriber);
  }
}

void SubscriberHub::Requeue(Pumpable* subscriber) {
  absl::MutexLock lock(&mu_);
  ready_.push_back(subscriber);
}

size_t SubscriberHub::BatchBytesPerStream(size_t max_batch_bytes, size_t total_budget) const {
  const size_t share = total_budget / std::max<uint32_t>(1, subscribers_.load());
  return std::min(max_batch_bytes, std::max(kMinBatchBytes, share));
}

void SubscriberHub::SubscriberEnded(Pumpable* subscriber) {
  subscribers_.fetch_sub(1);
  ended_since_trim_.fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
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
  for (const auto& [subscriber, next] : waiting_) ready_.push_back(subscriber);
  waiting_.clear();
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

bool SubscriberHub::HasWork() const { return stopping_ || head_moved_ || !ready_.empty(); }

void SubscriberHub::Dispatch() {
  absl::Time next_tick = absl::Now() + tick_;
  for (;;) {
    std::vector<Pumpable*> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(this, &SubscriberHub::HasWork), next_tick);
      if (stopping_ && ready_.empty()) return;
      const bool tick = absl::Now() >= next_tick;
      if (tick) next_tick = absl::Now() + tick_;
      // Streams that ended freed their buffers to malloc, which keeps them; hand them back to
      // the system, so that RSS falls again after a crowd of streams leaves.
      if (tick && ended_since_trim_.exchange(0, std::memory_order_relaxed) > 0) malloc_trim(0);
      if (head_moved_ || tick) {
        for (auto it = waiting_.begin(); it != waiting_.end();) {
          if (tick || it->second <= head_) {
            ready_.push_back(it->first);
            waiting_.erase(it++);
          } else {
            ++it;
          }
        }
        head_moved_ = false;
      }
      batch.swap(ready_);
    }
    for (Pumpable* subscriber : batch) subscriber->Pump();
  }
}

}  // namespace walfeed
