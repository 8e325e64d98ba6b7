// RecordingSink: a TransactionSink held in memory for unit tests of what writes to a sink (the
// durable appender, the table capture), with no PostgreSQL and no RocksDB. It records every
// writing call in order, keeps metadata in memory,
// can hold writers inside Append() until released (to build up a queue behind them), and can
// fail a chosen Append(). What it promises about durability is only what it records: an Append
// that failed stored nothing. Thread-safe.
#ifndef WALFEED_TESTS_SUPPORT_RECORDING_SINK_H_
#define WALFEED_TESTS_SUPPORT_RECORDING_SINK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/core/transaction_sink.h"

namespace walfeed::test {

class RecordingSink : public TransactionSink {
 public:
  struct Call {
    enum Kind { kAppend, kStage };
    Kind kind = kAppend;
    // kAppend: the transactions' commit LSNs; kStage: the staged changes' LSNs.
    std::vector<uint64_t> lsns;
    uint64_t resume_lsn = 0;
    bool failed = false;
  };

  // Appends wait inside Append() from now until Release().
  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
  }
  // The `n`th Append() (counting from 1) fails with a sentence and stores nothing.
  void FailAppend(int n) {
    absl::MutexLock lock(&mu_);
    fail_append_ = n;
  }
  // Waits until `n` Append() calls have begun.
  void AwaitAppendsBegun(int n) const {
    absl::MutexLock lock(&mu_);
    const auto begun = [this, n]()
                           ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return appends_begun_ >= n; };
    mu_.Await(absl::Condition(&begun));
  }
  std::vector<Call> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

  absl::Status Append(absl::Span<const Transaction> transactions, uint64_t resume_lsn) override {
    absl::MutexLock lock(&mu_);
    const int number = ++appends_begun_;
    mu_.Await(absl::Condition(
        +[](bool* held) { return !*held; }, &held_));
    Call call;
    call.resume_lsn = resume_lsn;
    for (const Transaction& transaction : transactions) call.lsns.push_back(transaction.commit_lsn);
    call.failed = number == fail_append_;
    calls_.push_back(call);
    if (call.failed) return absl::UnavailableError("the test's sink failed this append");
    resume_lsn_ = resume_lsn;
    return absl::OkStatus();
  }
  uint64_t ResumeLsn() const override {
    absl::MutexLock lock(&mu_);
    return resume_lsn_;
  }
  Position Head() const override { return Position{}; }
  absl::Status StageChanges(absl::Span<const v1::Change> changes) override {
    absl::MutexLock lock(&mu_);
    Call call;
    call.kind = Call::kStage;
    for (const v1::Change& change : changes) call.lsns.push_back(change.lsn());
    calls_.push_back(call);
    return absl::OkStatus();
  }
  absl::Status CommitStaged(const Position&, uint64_t, const MetadataUpdates&) override {
    return absl::UnimplementedError("not used by the appender");
  }
  absl::Status DiscardStaged() override { return absl::OkStatus(); }
  std::string Metadata(absl::string_view key) const override {
    absl::MutexLock lock(&mu_);
    const auto found = metadata_.find(key);
    return found == metadata_.end() ? "" : found->second;
  }
  absl::Status SetMetadata(absl::string_view key, absl::string_view value) override {
    absl::MutexLock lock(&mu_);
    metadata_[key] = std::string(value);
    ++metadata_writes_;
    return absl::OkStatus();
  }
  int metadata_writes() const {
    absl::MutexLock lock(&mu_);
    return metadata_writes_;
  }

 private:
  mutable absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  int fail_append_ ABSL_GUARDED_BY(mu_) = 0;
  int appends_begun_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t resume_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> metadata_ ABSL_GUARDED_BY(mu_);
  int metadata_writes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_RECORDING_SINK_H_
