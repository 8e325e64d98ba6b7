#include "server/source/durable_appender.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

#include "server/core/fault_point.h"
#include "server/core/free_memory.h"
#include "server/core/invariant.h"
#include "server/core/log_format.h"
#include "server/core/position.h"
#include "server/core/table_name.h"
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
  return Enqueue(Item{std::move(transaction), /*staged=*/false}, bytes);
}

bool DurableAppender::SubmitStaged(std::vector<v1::Change> changes, size_t bytes) {
  Item item;
  item.transaction.changes = std::move(changes);
  item.staged = true;
  return Enqueue(std::move(item), bytes);
}

bool DurableAppender::Enqueue(Item item, size_t bytes) {
  absl::MutexLock lock(&mu_);
  // Backpressure: wait while too much is queued (always admit into an empty queue).
  const auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !error_.ok() || stopping_ || queue_.empty() || queued_bytes_ < max_queued_bytes_;
  };
  mu_.Await(absl::Condition(&has_room));
  if (!error_.ok() || stopping_) return false;
  queue_.push_back(std::move(item));
  queued_bytes_ += bytes;
  return true;
}

absl::Status DurableAppender::Write(std::vector<Item>& items, uint64_t* appended_end_lsn) {
  WALFEED_FAULT_POINT("source.before_append");
  std::vector<Transaction> run;
  const auto flush_run = [&]() -> absl::Status {
    if (run.empty()) return absl::OkStatus();
    const uint64_t end_lsn = run.back().end_lsn;
    absl::Status appended = sink_->Append(run, end_lsn);
    if (appended.ok()) *appended_end_lsn = end_lsn;
    run.clear();
    return appended;
  };
  for (Item& item : items) {
    if (!item.staged) {
      run.push_back(std::move(item.transaction));
      continue;
    }
    if (absl::Status s = flush_run(); !s.ok()) return s;
    if (absl::Status s = sink_->StageChanges(item.transaction.changes); !s.ok()) return s;
    // Logged once the part is in the log (written, not yet synced: a killed process keeps it).
    spdlog::debug("event=large_transaction_staged commit_lsn={} changes={}",
                  FormatLsn(item.transaction.changes.front().lsn()),
                  item.transaction.changes.size());
    // A large transaction's parts are many small allocations made on the decoding thread and
    // freed here; the allocator keeps freed pages in its per-thread arenas, which doubled the
    // resident memory of a million-row transaction. Give them back after each part (a few
    // milliseconds, once per several megabytes staged).
    std::vector<v1::Change>().swap(item.transaction.changes);
    ReleaseFreeMemory();
  }
  return flush_run();
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
    std::vector<Item> group;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &DurableAppender::HasWorkOrStop));
      if (queue_.empty() || !error_.ok()) return;  // stopping with nothing (more) to do
      group.swap(queue_);
      queued_bytes_ = 0;
      appending_ = true;
    }
    uint64_t end_lsn = 0;
    absl::Status written = Write(group, &end_lsn);
    if (written.ok() && end_lsn != 0) WALFEED_FAULT_POINT("source.appended_before_confirm");
    {
      absl::MutexLock lock(&mu_);
      appending_ = false;
      WALFEED_INVARIANT(end_lsn == 0 || end_lsn >= durable_lsn_.load(),
                        "the durable LSN went back: PostgreSQL would be told less than before");
      if (end_lsn != 0) durable_lsn_.store(end_lsn, std::memory_order_release);
      if (!written.ok()) {
        spdlog::error(
            "event=append_failed items={} error=\"{}\" action=\"not confirming to PostgreSQL; the "
            "source reconnects and PostgreSQL sends them again\"",
            group.size(), EscapeForLog(written.message()));
        error_ = written;
        queue_.clear();
        queued_bytes_ = 0;
      }
    }
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

}  // namespace walfeed
