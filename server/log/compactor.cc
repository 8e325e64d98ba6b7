#include "server/log/compactor.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "server/core/log_format.h"
#include "server/core/proto_time.h"
#include "server/core/table_name.h"
#include "spdlog/spdlog.h"

namespace walfeed {

Compactor::Compactor(ChangeLog* log, CompactionPolicy policy, absl::Duration interval)
    : log_(log), policy_(policy), interval_(interval) {}

Compactor::~Compactor() { Stop(); }

void Compactor::Start() {
  thread_ = std::thread([this] { Loop(); });
}

absl::Status Compactor::Request(const CompactionPolicy& policy, Done done) {
  if (absl::Status valid = policy.Validate(); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("walfeed is shutting down; no compaction now");
  if (running_ || pending_) {
    return absl::FailedPreconditionError(
        "a compaction pass is already running; try again when it has finished");
  }
  pending_ = Pending{policy, std::move(done)};
  return absl::OkStatus();
}

void Compactor::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);  // one Stop() at a time: the thread is joined once
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  stop_requested_.store(true);
  if (thread_.joinable()) thread_.join();
  std::optional<Pending> pending;
  {
    absl::MutexLock lock(&mu_);
    pending.swap(pending_);
  }
  if (pending) pending->done(absl::UnavailableError("walfeed is shutting down; no compaction now"));
}

void Compactor::Loop() {
  absl::Time next_scheduled = absl::Now() + interval_;
  for (;;) {
    std::optional<Pending> request;
    bool scheduled = false;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || pending_.has_value();
      };
      mu_.AwaitWithDeadline(absl::Condition(&ready),
                            std::min(next_scheduled, absl::Now() + kIndexCheckInterval));
      if (stopping_) return;
      request.swap(pending_);
      scheduled = absl::Now() >= next_scheduled;
      running_ = request.has_value() || scheduled;
    }
    if (request) {
      absl::StatusOr<v1::CompactionResult> result = RunPass(request->policy);
      {
        absl::MutexLock lock(&mu_);
        running_ = false;  // before answering: the caller may ask again at once
      }
      request->done(std::move(result));
      continue;
    }
    if (scheduled) {
      (void)RunPass(policy_);
      next_scheduled = absl::Now() + interval_;
    } else if (!log_->IndexIsCurrent()) {
      // After a snapshot or a transaction staged in parts: index what they added.
      if (absl::Status indexed = log_->CatchUpIndex(&stop_requested_);
          !indexed.ok() && !stop_requested_.load()) {
        spdlog::error("event=index_catch_up_failed error=\"{}\"", EscapeForLog(indexed.message()));
      }
    }
    absl::MutexLock lock(&mu_);
    running_ = false;
  }
}

absl::StatusOr<v1::CompactionResult> Compactor::RunPass(const CompactionPolicy& requested) {
  CompactionPolicy policy = requested;
  for (const auto& keep_from_of : keep_from_) {
    const std::optional<Position> keep_from = keep_from_of();
    if (keep_from.has_value() &&
        (!policy.keep_from.has_value() || *keep_from < *policy.keep_from)) {
      policy.keep_from = keep_from;
    }
  }
  spdlog::info("event=compaction_started");
  absl::StatusOr<v1::CompactionResult> result =
      log_->Compact(policy, absl::Now(), &stop_requested_);
  if (result.ok()) {
    spdlog::info(
        "event=compaction_done examined={} superseded_removed={} tombstones_purged={} "
        "retention_removed={} live_keys={} bytes_before={} bytes_after={} purge_cursor={} "
        "took_ms={}",
        result->changes_examined(), result->superseded_removed(), result->tombstones_purged(),
        result->retention_removed(), result->live_keys(), result->log_bytes_before(),
        result->log_bytes_after(), result->purge_cursor().empty() ? "-" : result->purge_cursor(),
        absl::ToInt64Milliseconds(FromProtoDuration(result->took())));
  } else if (stop_requested_.load()) {
    result = absl::UnavailableError("walfeed is shutting down; the compaction pass was stopped");
  } else {
    spdlog::error("event=compaction_failed error=\"{}\"", EscapeForLog(result.status().message()));
  }
  return result;
}

}  // namespace walfeed
