#include "server/source/durable_appender.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

#include "server/core/log_format.h"
#include "server/core/position.h"
#include "spdlog/spdlog.h"

namespace walfeed {

DurableAppender::DurableAppender(TransactionSink* sink, size_t max_queued_bytes)
    : sink_(sink),
      max_queued_bytes_(max_queued_bytes),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      durable_lsn_(sink->ResumeLsn()) {
  writer_ = std::thread(&DurableAppender::Run, this);
}

DurableAppender::~DurableAppender() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
}

bool DurableAppender::Submit(Transaction transaction, size_t bytes) {
  absl::MutexLock lock(&mu_);
  // Backpressure: wait while too much is queued (always admit into an empty queue).
  const auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !error_.ok() || stopping_ || queue_.empty() || queued_bytes_ < max_queued_bytes_;
  };
  mu_.Await(absl::Condition(&has_room));
  if (!error_.ok() || stopping_) return false;
  queue_.push_back(std::move(transaction));
  queued_bytes_ += bytes;
  return true;
}

absl::Status DurableAppender::Drain() {
  absl::MutexLock lock(&mu_);
  const auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !error_.ok() || (queue_.empty() && !appending_);
  };
  mu_.Await(absl::Condition(&drained));
  return error_;
}

bool DurableAppender::idle() const {
  absl::MutexLock lock(&mu_);
  return queue_.empty() && !appending_;
}

absl::Status DurableAppender::error() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

bool DurableAppender::HasWorkOrStop() const {
  return stopping_ || (!queue_.empty() && error_.ok());
}

void DurableAppender::Run() {
  for (;;) {
    std::vector<Transaction> group;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &DurableAppender::HasWorkOrStop));
      if (queue_.empty() || !error_.ok()) return;  // stopping with nothing (more) to do
      group.swap(queue_);
      queued_bytes_ = 0;
      appending_ = true;
    }
    const uint64_t end_lsn = group.back().end_lsn;
    absl::Status appended = sink_->Append(group, end_lsn);
    {
      absl::MutexLock lock(&mu_);
      appending_ = false;
      if (!appended.ok()) {
        spdlog::error(
            "event=append_failed transactions={} error=\"{}\" action=\"not confirming to "
            "PostgreSQL; the source reconnects and PostgreSQL sends them again\"",
            group.size(), appended.message());
        error_ = appended;
        queue_.clear();
        queued_bytes_ = 0;
      } else {
        durable_lsn_.store(end_lsn, std::memory_order_release);
      }
    }
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

}  // namespace walfeed
