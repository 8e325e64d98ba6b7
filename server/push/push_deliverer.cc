#include "server/push/push_deliverer.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "server/core/error_reason.h"
#include "server/core/large_value.h"
#include "server/core/proto_time.h"
#include "server/core/table_name.h"
#include "server/core/value_ref.h"
#include "server/push/delivery_policy.h"
#include "server/push/push_request.h"
#include "server/push/push_settings.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

// Records looked at per read of new changes before the round ends (and the cursor may be stored).
constexpr size_t kScanRecords = 10000;
// Bytes of stored changes one Visit() call may read; far above any batch.
constexpr size_t kVisitBytes = size_t{1} << 40;
constexpr absl::Duration kSaveEvery = absl::Seconds(1);
constexpr absl::Duration kIdleWait = absl::Seconds(1);
constexpr absl::Duration kLagEvery = absl::Seconds(2);

Position PendingLast(const v1::StoredPushSubscription& s) {
  return Position{s.pending_last_lsn(), s.pending_last_seq()};
}

Position PendingFirst(const v1::StoredPushSubscription& s) {
  return Position{s.pending_first_lsn(), s.pending_first_seq()};
}

void SetPending(const Position& first, const Position& last, v1::StoredPushSubscription* s) {
  s->set_pending_first_lsn(first.lsn);
  s->set_pending_first_seq(first.seq);
  s->set_pending_last_lsn(last.lsn);
  s->set_pending_last_seq(last.seq);
}

// The first position to read after `cursor` (zero reads from the oldest change).
Position After(const Position& cursor) { return cursor.IsZero() ? cursor : cursor.Successor(); }

// The value `large` names, read whole from `log`.
absl::StatusOr<std::string> ReadWholeValue(const ChangeLog& log, const v1::LargeValue& large) {
  absl::StatusOr<ValueRef> ref = ParseValueRef(large.ref());
  if (!ref.ok()) return ref.status();
  std::string value;
  value.reserve(large.size());
  while (value.size() < large.size()) {
    absl::StatusOr<std::string> chunk = log.ReadLargeValue(*ref, value.size(), 1 << 20);
    if (!chunk.ok()) return chunk.status();
    if (chunk->empty()) break;
    value += *chunk;
  }
  if (value.size() != large.size()) {
    return absl::NotFoundError(absl::StrCat("the value at '", large.ref(), "' is gone"));
  }
  return value;
}

}  // namespace

PushDeliverer::PushDeliverer(std::string name, const ChangeLog* log, PushStore* store,
                             std::function<std::string()> database)
    : name_(std::move(name)), log_(log), store_(store), database_(std::move(database)) {}

PushDeliverer::~PushDeliverer() { Stop(); }

void PushDeliverer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void PushDeliverer::RequestStop() {
  stop_.store(true);
  Wake();
}

void PushDeliverer::Stop() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

void PushDeliverer::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

void PushDeliverer::ClearWake() {
  absl::MutexLock lock(&mu_);
  woken_ = false;
}

void PushDeliverer::WaitForWake(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  // stop_ too: a Stop() between a look at stop_ and ClearWake() must still end the wait.
  const auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return woken_ || stop_.load(); };
  mu_.AwaitWithDeadline(absl::Condition(&woken), deadline);
}

PushDeliverer::Runtime PushDeliverer::runtime() const {
  absl::MutexLock lock(&mu_);
  return runtime_;
}

void PushDeliverer::SetRuntime(const std::function<void(Runtime*)>& change) {
  absl::MutexLock lock(&mu_);
  change(&runtime_);
}

void PushDeliverer::Run() {
  HttpPoster poster(&stop_);
  while (!stop_.load()) {
    if (!Step(poster)) return;
  }
  if (dirty_) Save();
}

void PushDeliverer::Publish() {
  SetRuntime([this](Runtime* r) {
    r->progress = working_;
    r->epoch = epoch_;
  });
}

void PushDeliverer::Save() {
  Publish();
  const absl::Status saved = store_->Update(
      name_,
      [this](v1::StoredPushSubscription* stored) {
        CopyDeliveryState(working_, stored);
        if (working_.paused()) {
          stored->set_paused(true);
          stored->set_pause_reason(working_.pause_reason());
        }
      },
      epoch_);
  if (saved.ok()) {
    dirty_ = false;
    saved_at_ = absl::Now();
    return;
  }
  // Reset or deleted meanwhile (Aborted, NotFound): read the subscription again. Otherwise the
  // write failed (the store undid it): read again too, after a pause, and send nothing whose
  // bounds are not stored.
  loaded_ = false;
  if (!absl::IsAborted(saved) && !absl::IsNotFound(saved)) {
    spdlog::error("event=push_save_failed subscription={} error=\"{}\"", name_,
                  EscapeForLog(saved.message()));
    SetRuntime([&](Runtime* r) {
      r->state = "retrying";
      r->last_error = absl::StrCat("cannot store the delivery's state: ", saved.message());
    });
    WaitForWake(absl::Now() + kIdleWait);
  }
}

void PushDeliverer::Pause(const std::string& reason, const std::string& error) {
  spdlog::warn("event=push_paused subscription={} reason={} error=\"{}\"", name_, reason,
               EscapeForLog(error));
  working_.set_paused(true);
  working_.set_pause_reason(reason);
  working_.set_last_error(error);
  Save();
  working_.set_paused(false);
  loaded_ = false;
}

bool PushDeliverer::Step(HttpPoster& poster) {
  ClearWake();
  std::optional<PushStore::Snapshot> snapshot = store_->Get(name_);
  if (!snapshot.has_value()) return false;
  if (!loaded_ || snapshot->epoch != epoch_) {
    working_ = snapshot->stored;
    working_.set_paused(false);
    working_.clear_pause_reason();
    epoch_ = snapshot->epoch;
    loaded_ = true;
    dirty_ = false;
    Publish();
  }
  const v1::PushSubscription& settings = snapshot->stored.subscription();
  if (snapshot->stored.paused()) {
    if (dirty_) Save();
    SetRuntime([](Runtime* r) { r->state = "paused"; });
    WaitForWake(absl::InfiniteFuture());
    return true;
  }
  // The filters, from the settings (checked when they came in).
  PlanLimits limits;
  limits.tables_known = false;
  v1::SubscribeRequest filters = FilterRequest(settings);
  filters.clear_cursor();
  filters.clear_from_head();
  absl::StatusOr<SubscriptionPlan> plan =
      PlanSubscription(filters, FeedBounds{log_->Head(), Position(), 0, log_->LogId()}, {}, limits);
  if (!plan.ok()) {
    Pause(reason::kFilterInvalid, std::string(plan.status().message()));
    return true;
  }

  const Position cursor = PushStore::CursorOf(working_);
  const Position purge_before_read = log_->PurgePoint();
  const Position pending_last = PendingLast(working_);
  const bool has_pending = !pending_last.IsZero();
  Batch batch;
  absl::StatusOr<ReadEnd> read = ReadBatch(
      *plan, settings, has_pending ? std::optional<Position>(pending_last) : std::nullopt, &batch);
  if (!read.ok()) {
    spdlog::error("event=push_read_failed subscription={} error=\"{}\"", name_,
                  EscapeForLog(read.status().message()));
    SetRuntime([&](Runtime* r) {
      r->state = "retrying";
      r->last_error = std::string(read.status().message());
    });
    WaitForWake(absl::Now() + kIdleWait);
    return true;
  }
  if (*read == ReadEnd::kPause) return true;
  // Compaction's promise: a subscription holding state never delivers on past deletes purged
  // since its state began. Judged after the read: a purge point at or before the cursor now was so
  // during the read too. (One reading from the start holds none yet: what was purged before this
  // read is not missing from the state it reads.)
  const Position purge_point = log_->PurgePoint();
  if (working_.holds_state() && purge_point > PushStore::PurgeBaselineOf(working_) &&
      purge_point > cursor) {
    Pause(reason::kCursorPurged,
          absl::StrCat("compaction removed changes up to ", FormatCursor(purge_point),
                       " (deletes among them) that this subscription had not delivered (its "
                       "cursor is ",
                       FormatCursor(cursor), "): walfeedctl push resume ", name_,
                       " --to-start delivers the current state from the start"));
    return true;
  }
  CountLag();
  if (batch.message.changes_size() == 0) {
    if (has_pending) {
      // Everything of the pending batch was compacted away: it is superseded by later changes.
      PushStore::SetCursor(pending_last, &working_);
      SetPending(Position(), Position(), &working_);
      Save();
      return true;
    }
    const bool caught_up = batch.scanned_to <= cursor;
    if (!caught_up) {
      PushStore::SetCursor(batch.scanned_to, &working_);
      dirty_ = true;
    }
    if (dirty_ && (caught_up || absl::Now() - saved_at_ >= kSaveEvery)) Save();
    if (caught_up) {
      SetRuntime([](Runtime* r) {
        r->state = "caught_up";
        r->lag_changes = 0;
        r->lag_seconds = 0;
      });
      WaitForWake(absl::Now() + kIdleWait);
    }
    return true;
  }
  if (!has_pending) {
    // The batch's bounds are stored before its first attempt, with the previous acknowledgement.
    SetPending(batch.first, batch.last, &working_);
    if (!working_.holds_state()) PushStore::SetPurgeBaseline(purge_before_read, &working_);
    working_.set_holds_state(true);
    Save();
    if (!loaded_) return true;  // not stored (reset or deleted meanwhile): read again
  } else {
    batch.first = PendingFirst(working_);
    batch.last = pending_last;
  }
  Deliver(poster, settings, batch);
  return true;
}

absl::StatusOr<PushDeliverer::ReadEnd> PushDeliverer::ReadBatch(
    const SubscriptionPlan& plan, const v1::PushSubscription& settings,
    std::optional<Position> until, Batch* batch) {
  const Position cursor = PushStore::CursorOf(working_);
  // Every record up to the head as it is before the read is visible to it.
  const Position head = log_->Head();
  batch->scanned_to = cursor;
  size_t bytes = 0;
  size_t visits = 0;
  bool stopped = false;
  absl::Status failure;
  bool pause = false;
  const size_t max_records = until.has_value() ? std::numeric_limits<size_t>::max() : kScanRecords;
  absl::Status visited = log_->Visit(
      After(cursor), max_records, kVisitBytes,
      [&](const Position& position, absl::string_view stored) {
        ++visits;
        stopped = true;  // unless this record is taken or passed over
        if (until.has_value() && position > *until) return false;
        v1::Change change;
        if (!change.ParseFromArray(stored.data(), static_cast<int>(stored.size()))) {
          failure = absl::DataLossError(
              absl::StrCat("the change at ", FormatCursor(position), " cannot be decoded"));
          return false;
        }
        RowFilter::Verdict verdict = RowFilter::Verdict::kDeliver;
        if (plan.Accepts(change) && plan.row_filter.has_value()) {
          absl::StatusOr<RowFilter::Verdict> judged = plan.row_filter->Judge(change);
          if (!judged.ok()) {
            Pause(reason::kFilterInvalid, std::string(judged.status().message()));
            pause = true;
            return false;
          }
          verdict = *judged;
        }
        if (!plan.Accepts(change) || verdict == RowFilter::Verdict::kSkip) {
          batch->scanned_to = position;
          stopped = false;
          return true;
        }
        if (verdict == RowFilter::Verdict::kLeft) change.set_left_filter(true);
        if (absl::Status inlined = InlineLargeValues(
                &change,
                [this](const v1::LargeValue& large) { return ReadWholeValue(*log_, large); });
            !inlined.ok()) {
          failure = inlined;
          return false;
        }
        const size_t size = change.ByteSizeLong();
        const int count = batch->message.changes_size();
        if (!until.has_value() && count > 0 &&
            (static_cast<uint32_t>(count) >= settings.batch_changes() ||
             bytes + size > settings.batch_bytes())) {
          return false;
        }
        bytes += size;
        if (count == 0) batch->first = position;
        batch->last = position;
        batch->scanned_to = position;
        *batch->message.add_changes() = std::move(change);
        stopped = false;
        return true;
      });
  if (!visited.ok()) return visited;
  // Nothing more to read: everything up to the head is looked at, also changes compaction removed
  // after the last one left (so the cursor reaches the head).
  if (!until.has_value() && !stopped && visits < max_records) {
    batch->scanned_to = std::max(batch->scanned_to, head);
  }
  if (!failure.ok()) return failure;
  if (pause) return ReadEnd::kPause;
  batch->message.set_log_id(log_->LogId());
  return ReadEnd::kOk;
}

void PushDeliverer::Deliver(HttpPoster& poster, const v1::PushSubscription& settings,
                            Batch& batch) {
  batch.message.set_first_cursor(FormatCursor(batch.first));
  batch.message.set_last_cursor(FormatCursor(batch.last));
  batch.message.set_generation(working_.generation());
  // Nothing of the moment goes into the body (Debezium's ts_ms is the first change's commit time),
  // so that the batch sent again after a restart is the same bytes under the same key.
  const std::string body = PushBody(settings, &batch.message, database_(),
                                    FromProtoTimestamp(batch.message.changes(0).commit_time()));
  absl::BitGen random;
  HttpPost post;
  post.url = settings.url();
  post.body = body;
  post.timeout = absl::Milliseconds(settings.timeout_ms());
  post.ca_file = settings.ca_file();
  post.version = VersionChoice(settings);
  SetRuntime([](Runtime* r) { r->state = "delivering"; });
  for (int attempt = 1; !stop_.load(); ++attempt) {
    const absl::Time now = absl::Now();
    post.headers = PushHeaders(settings, batch.message, body, attempt, now);
    const HttpAnswer answer = poster.Post(post);
    if (answer.cancelled) return;
    const DeliveryDecision decision =
        Decide(answer, attempt, absl::Uniform<double>(random, 0.0, 1.0));
    working_.set_last_status(answer.status);
    if (!answer.http_version.empty()) {
      SetRuntime([&](Runtime* r) { r->http_version = answer.http_version; });
    }
    switch (decision.next) {
      case DeliveryDecision::Next::kDelivered:
        PushStore::SetCursor(batch.last, &working_);
        SetPending(Position(), Position(), &working_);
        working_.set_delivered_batches(working_.delivered_batches() + 1);
        working_.set_delivered_changes(working_.delivered_changes() +
                                       static_cast<uint64_t>(batch.message.changes_size()));
        working_.clear_last_error();
        ToProtoTimestamp(absl::Now(), working_.mutable_last_delivered_at());
        dirty_ = true;  // stored with the next batch's bounds, or when caught up
        Publish();
        return;
      case DeliveryDecision::Next::kPause:
        Pause("HTTP_4XX", decision.error);
        return;
      case DeliveryDecision::Next::kRetry:
        break;
    }
    working_.set_retries(working_.retries() + 1);
    working_.set_last_error(decision.error);
    dirty_ = true;
    Publish();
    spdlog::warn("event=push_retry subscription={} attempt={} wait={} error=\"{}\"", name_, attempt,
                 absl::FormatDuration(decision.wait), EscapeForLog(decision.error));
    SetRuntime([](Runtime* r) { r->state = "retrying"; });
    // Waits out the backoff; an operator's pause, reset or deletion ends the attempts (looked at
    // after clearing the wake, so that a change made meanwhile wakes the wait).
    const absl::Time until = absl::Now() + decision.wait;
    for (bool waited = false; !stop_.load(); waited = true) {
      ClearWake();
      std::optional<PushStore::Snapshot> now_stored = store_->Get(name_);
      if (!now_stored.has_value() || now_stored->stored.paused() || now_stored->epoch != epoch_) {
        if (dirty_) Save();
        return;
      }
      if (waited && absl::Now() >= until) break;
      WaitForWake(until);
    }
  }
}

void PushDeliverer::CountLag() {
  const absl::Time now = absl::Now();
  if (now - lag_counted_at_ < kLagEvery) return;
  lag_counted_at_ = now;
  uint64_t count = 0;
  absl::Time oldest = absl::InfiniteFuture();
  (void)log_->Visit(After(PushStore::CursorOf(working_)), kLagCountLimit, kVisitBytes,
                    [&](const Position&, absl::string_view stored) {
                      if (count++ == 0) {
                        v1::Change change;
                        if (change.ParseFromArray(stored.data(), static_cast<int>(stored.size()))) {
                          oldest = FromProtoTimestamp(change.commit_time());
                        }
                      }
                      return true;
                    });
  const double seconds =
      count == 0 || oldest == absl::InfiniteFuture() ? 0 : absl::ToDoubleSeconds(now - oldest);
  SetRuntime([&](Runtime* r) {
    r->lag_changes = count;
    r->lag_seconds = std::max(0.0, seconds);
  });
}

}  // namespace walfeed
