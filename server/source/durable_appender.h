// DurableAppender: appends transactions to the sink on its own thread, so that decoding goes on
// while the previous group is being synced (group commit without waiting for an idle socket).
//
// Submit() queues a committed transaction and returns at once (it blocks only while more than
// `max_queued_bytes` wait, which bounds memory). The writer thread takes everything queued, appends
// it with one durable TransactionSink::Append() whose resume point is the last transaction's end
// LSN, then publishes that LSN as durable_lsn() and wakes whoever polls wake_fd(). Parts of a
// transaction too large to hold (SubmitStaged) are staged in queue order, before its last part.
// After a failed append it stops, keeps the error in error(), and drops the queue: nothing was
// confirmed, so PostgreSQL sends those transactions again. The destructor appends what is still
// queued (unless an append failed) before it returns. One appender serves one replication session.
// Thread-safe.
#ifndef WALFEED_SERVER_SOURCE_DURABLE_APPENDER_H_
#define WALFEED_SERVER_SOURCE_DURABLE_APPENDER_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/core/transaction_sink.h"

namespace walfeed {

class DurableAppender {
 public:
  DurableAppender(TransactionSink* sink, size_t max_queued_bytes);
  ~DurableAppender();

  DurableAppender(const DurableAppender&) = delete;
  DurableAppender& operator=(const DurableAppender&) = delete;

  // Queues `transaction` (`bytes` is its size estimate). False after an append failed.
  bool Submit(Transaction transaction, size_t bytes) ABSL_LOCKS_EXCLUDED(mu_);

  // Queues the early changes of a transaction too large to hold, to be staged (written at their
  // final positions, invisible) before the transaction's last part is appended.
  bool SubmitStaged(std::vector<v1::Change> changes, size_t bytes) ABSL_LOCKS_EXCLUDED(mu_);

  // Waits until everything submitted is durable or an append failed; returns error().
  absl::Status Drain() ABSL_LOCKS_EXCLUDED(mu_);

  // The end LSN of the last durably appended transaction (0 before the first).
  uint64_t durable_lsn() const { return durable_lsn_.load(std::memory_order_acquire); }

  // True when nothing is queued or being appended.
  bool idle() const ABSL_LOCKS_EXCLUDED(mu_);

  absl::Status error() const ABSL_LOCKS_EXCLUDED(mu_);

  // Readable after each durable append (an eventfd the reader polls and drains).
  int wake_fd() const { return wake_fd_; }

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  bool HasWorkOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TransactionSink* const sink_;
  const size_t max_queued_bytes_;
  const int wake_fd_;
  std::atomic<uint64_t> durable_lsn_{0};

  mutable absl::Mutex mu_;
  // A queued transaction, or (staged) early changes of a large one.
  struct Item {
    Transaction transaction;
    bool staged = false;
  };
  bool Enqueue(Item item, size_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // Writes `items` in order: staged changes as they are, runs of transactions as one Append.
  // Never under `mu_`: Submit() goes on queueing while the sink syncs.
  absl::Status Write(std::vector<Item>& items, uint64_t* appended_end_lsn) ABSL_LOCKS_EXCLUDED(mu_);

  std::vector<Item> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool appending_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::thread writer_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_DURABLE_APPENDER_H_
