#include "server/feed/subscribe_reactor.h"

#include <google/protobuf/arena.h>

#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/error_reason.h"
#include "server/core/log_format.h"
#include "server/core/position.h"
#include "server/feed/grpc_status.h"
#include "server/feed/subscription_plan.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

Position Predecessor(const Position& position) {
  if (position.IsZero()) return position;
  if (position.seq == 0) return Position{position.lsn - 1, std::numeric_limits<uint32_t>::max()};
  return Position{position.lsn, position.seq - 1};
}

}  // namespace

SubscribeReactor::SubscribeReactor(const ChangeLog* log, SubscriberHub* hub,
                                   SharedBatchCache* shared_batches, const FeedOptions* options,
                                   SubscriptionPlan plan,
                                   std::unique_ptr<ConsumerRegistry::Lease> consumer)
    : consumer_(std::move(consumer)),
      log_(log),
      hub_(hub),
      shared_batches_(shared_batches),
      options_(options),
      plan_(std::move(plan)),
      next_(plan_.start),
      reported_(Predecessor(plan_.start)),
      purge_baseline_(plan_.purge_point) {
  hub_->SubscriberStarted();
  Pump();
}

Position SubscribeReactor::CaughtUpTo() const { return Predecessor(next_); }

bool SubscribeReactor::ReachedStop() const { return plan_.stop_at && next_ > *plan_.stop_at; }

void SubscribeReactor::Pump() {
  // Finish() may delete this reactor at once (OnDone on another thread): every path below
  // calls it last, touching nothing afterwards.
  if (hub_->shutting_down()) {
    Finish(GrpcError(grpc::StatusCode::UNAVAILABLE,
                     "walfeed is shutting down; resume from your last cursor",
                     reason::kShuttingDown));
    return;
  }
  if (cancelled_.load()) {
    Finish(grpc::Status::CANCELLED);
    return;
  }
  if (std::exchange(send_filled_, false)) {  // read ahead, then handed back to the hub
    SendFilled();
    return;
  }
  for (int reads = 1;; ++reads) {
    grpc::Status failure;
    const BatchResult result = FillBatch(&failure);
    if (result == BatchResult::kWrite) {
      SendFilled();
      return;
    }
    if (result == BatchResult::kFailed) {
      Finish(failure);
      return;
    }
    if (result == BatchResult::kStopped) {
      FinishAtStop();
      return;
    }
    const bool progress_due = absl::Now() - last_write_ >= options_->progress_interval;
    if (result == BatchResult::kFilteredOut) {
      // Everything read was filtered out. Tell the client how far it got, at a transaction
      // boundary only; read on, but give the thread back now and then.
      if (progress_due && last_read_ends_transaction_) {
        WriteProgress();
        return;
      }
      if (reads >= kMaxReadsPerPump) {
        hub_->Requeue(this);
        return;
      }
      continue;
    }
    // Caught up with the head, which is always a transaction boundary.
    if (ReachedStop() || (plan_.stop_at && plan_.stop_at->IsZero())) {
      FinishAtStop();
      return;
    }
    if (progress_due) {
      WriteProgress();
      return;
    }
    // A subscriber to some tables waits for changes of those (see SubscriberHub).
    if (hub_->AddWaiter(this, next_, plan_.tables.empty() ? nullptr : &plan_.tables,
                        last_write_ + options_->progress_interval)) {
      return;
    }
    if (reads >= kMaxReadsPerPump) {
      hub_->Requeue(this);
      return;
    }
  }
}

void SubscribeReactor::WriteProgress() {
  reported_ = CaughtUpTo();
  response_ = builder_.Finish(FormatCursor(reported_), FormatCursor(log_->Head()), log_->LogId());
  Write();
}

void SubscribeReactor::FinishAtStop() {
  // Changes filtered out since the last message moved the position on: say so once more, so
  // that a client saving its cursor does not read them again next time.
  if (CaughtUpTo() > reported_) {
    finish_after_write_ = true;
    WriteProgress();
    return;
  }
  Finish(grpc::Status::OK);
}

bool SubscribeReactor::SharesBatches() const {
  return plan_.tables.empty() && plan_.op_mask == 0 && !plan_.stop_at && !plan_.row_filter;
}

absl::StatusOr<absl::string_view> SubscribeReactor::FilterRow(absl::string_view change,
                                                              const Position& position) {
  if (row_arena_ == nullptr) row_arena_ = std::make_unique<char[]>(kRowArenaBytes);
  google::protobuf::ArenaOptions options;
  options.initial_block = row_arena_.get();
  options.initial_block_size = kRowArenaBytes;
  google::protobuf::Arena arena(options);
  v1::Change* const parsed = google::protobuf::Arena::CreateMessage<v1::Change>(&arena);
  if (!parsed->ParseFromArray(change.data(), static_cast<int>(change.size()))) {
    return WithReason(absl::DataLossError(absl::StrCat("the change at ", FormatCursor(position),
                                                       " cannot be decoded")),
                      reason::kLogUnreadable);
  }
  absl::StatusOr<RowFilter::Verdict> verdict = plan_.row_filter->Judge(*parsed);
  if (!verdict.ok()) return verdict.status();
  switch (*verdict) {
    case RowFilter::Verdict::kSkip:
      return absl::string_view();
    case RowFilter::Verdict::kDeliver:
      return change;
    case RowFilter::Verdict::kLeft:
      parsed->set_left_filter(true);
      left_scratch_.clear();
      parsed->AppendToString(&left_scratch_);
      return absl::string_view(left_scratch_);
  }
  return change;
}

bool SubscribeReactor::Purged(const Position& read_from, const Position& purge_point,
                              grpc::Status* failure) const {
  // A subscriber holding state fails once compaction purged, since its state began, something
  // it has not read yet: anything from where this read started on. (Not from where the read
  // ended: a batch that spans the purge point has already skipped what was purged in it.)
  if ((plan_.holds_state || delivered_any_) && purge_point > purge_baseline_ &&
      read_from <= purge_point) {
    *failure = ToGrpcStatus(PurgedError(read_from, purge_point));
    return true;
  }
  return false;
}

void SubscribeReactor::NoteDelivery(const Position& purge_before_read) {
  // A subscriber from 0 holds state from this read on; purges it saw before are harmless.
  if (!plan_.holds_state && !delivered_any_) purge_baseline_ = purge_before_read;
  delivered_any_ = true;
}

SubscribeReactor::BatchResult SubscribeReactor::FillBatch(grpc::Status* failure) {
  const Position purge_before_read = log_->PurgePoint();
  const bool shares = SharesBatches();
  SharedBatch shared;
  const size_t max_bytes =
      hub_->BatchBytesPerStream(options_->max_batch_bytes, options_->max_inflight_bytes);
  if (shares && shared_batches_->Find(next_, plan_.max_batch_changes, purge_before_read, &shared) &&
      shared.response.Length() <= max_bytes + kFramingAllowance) {
    // The batch was read under `purge_before_read`, but a pass may have run since this
    // subscriber looked: judge it by the point as it is now.
    if (Purged(next_, log_->PurgePoint(), failure)) return BatchResult::kFailed;
    NoteDelivery(purge_before_read);
    next_ = shared.next;
    last_read_ends_transaction_ = shared.ends_transaction;
    filled_.response = std::move(shared.response);
    filled_.changes = shared.changes;
    filled_.finish_after = false;
    reported_ = Predecessor(next_);  // an unfiltered batch ends with the change before next_
    return BatchResult::kWrite;
  }
  const Position head = log_->Head();
  if (!plan_.tables.empty() && !plan_.stop_at) {
    // Nothing of this subscriber's tables since next_, as far as the hub heard: skip unread.
    next_ = hub_->FirstPossible(plan_.tables, next_);
    if (!head.IsZero() && next_ > head) return BatchResult::kCaughtUp;
  }
  // The changes go from RocksDB's buffers straight into the response being built (a subscriber
  // holds no records between reads: a thousand idle streams hold nothing).
  const Position start = next_;
  size_t visited = 0;
  Position last_sent;
  std::optional<Position> corrupt;
  absl::Status judged;  // a row filter that cannot judge a change ends the stream
  absl::Status read = log_->Visit(next_, plan_.max_batch_changes, max_bytes,
                                  [&](const Position& position, absl::string_view change) {
                                    ++visited;
                                    if (plan_.stop_at && position > *plan_.stop_at) {
                                      next_ = plan_.stop_at->Successor();
                                      return false;
                                    }
                                    next_ = position.Successor();
                                    ChangeSummary summary;
                                    if (!SummarizeChange(change, &summary)) {
                                      corrupt = position;
                                      return false;
                                    }
                                    last_read_ends_transaction_ = summary.last_in_transaction;
                                    if (!plan_.Accepts(summary.op, summary.schema, summary.table)) {
                                      return true;
                                    }
                                    if (plan_.row_filter) {
                                      absl::StatusOr<absl::string_view> kept =
                                          FilterRow(change, position);
                                      if (!kept.ok()) {
                                        judged = kept.status();
                                        return false;
                                      }
                                      change = *kept;
                                      if (change.empty()) return true;
                                    }
                                    builder_.AddChange(change);  // sent as stored
                                    last_sent = position;
                                    return true;
                                  });
  if (!read.ok()) {
    spdlog::error("event=subscriber_read_failed error=\"{}\"", read.message());
    *failure = GrpcError(grpc::StatusCode::UNAVAILABLE,
                         absl::StrCat("cannot read the change log: ", read.message(),
                                      "; resume from your last cursor"),
                         reason::kLogUnreadable);
    return BatchResult::kFailed;
  }
  if (!judged.ok()) {
    *failure = ToGrpcStatus(judged);
    return BatchResult::kFailed;
  }
  if (corrupt) {
    spdlog::error("event=corrupt_change position={}", FormatCursor(*corrupt));
    *failure =
        GrpcError(grpc::StatusCode::DATA_LOSS,
                  absl::StrCat("the change at ", FormatCursor(*corrupt), " cannot be decoded"),
                  reason::kLogUnreadable, {{"position", FormatCursor(*corrupt)}});
    return BatchResult::kFailed;
  }
  // Checked after the read: compaction raises the purge point before it removes anything, so a
  // read that missed a purged change sees the raised point here.
  const Position purge_after_read = log_->PurgePoint();
  if (Purged(start, purge_after_read, failure)) return BatchResult::kFailed;
  if (visited == 0) {
    // Nothing up to `head` is left to read (compaction may have removed the rest).
    if (!head.IsZero() && next_ <= head) next_ = head.Successor();
    return BatchResult::kCaughtUp;
  }
  filled_.finish_after = ReachedStop();
  if (builder_.changes() > 0) {
    NoteDelivery(purge_before_read);
    filled_.changes = builder_.changes();
    filled_.response =
        builder_.Finish(FormatCursor(last_sent), FormatCursor(log_->Head()), log_->LogId());
    reported_ = last_sent;
    // Shared only when no pass ran during the read: its key must say what the batch missed.
    if (shares && purge_after_read == purge_before_read) {
      shared_batches_->Add(SharedBatch{start, plan_.max_batch_changes, purge_before_read, next_,
                                       last_read_ends_transaction_, filled_.changes,
                                       filled_.response});
    }
    return BatchResult::kWrite;
  }
  return filled_.finish_after ? BatchResult::kStopped : BatchResult::kFilteredOut;
}

void SubscribeReactor::Write() {
  last_write_ = absl::Now();
  hub_->Sent(this, response_changes_, next_);
  response_changes_ = 0;
  StartWrite(&response_);
}

void SubscribeReactor::SendFilled() {
  // A loop, not a recursion: a write that completes while the next batch is read ahead is
  // followed by that batch's write here, a few rounds at most before the thread goes back (to
  // the hub or gRPC, whose threads other streams wait for).
  for (int round = 1;; ++round) {
    response_ = std::move(filled_.response);
    response_changes_ = filled_.changes;
    finish_after_write_ = filled_.finish_after;
    const bool read_ahead = ShouldReadAhead();
    if (read_ahead) {
      absl::MutexLock lock(&handoff_mu_);
      reading_ahead_ = true;  // before the write starts: its OnWriteDone must find it set
    }
    Write();
    if (!read_ahead) return;
    // The write is on the wire, and gRPC reads only response_: read the next batch meanwhile.
    ahead_failure_ = grpc::Status();
    ahead_ = FillBatch(&ahead_failure_);
    bool ok = false;
    {
      absl::MutexLock lock(&handoff_mu_);
      reading_ahead_ = false;
      if (!write_done_) return;  // OnWriteDone goes on from ahead_
      write_done_ = false;
      ok = write_ok_;
    }
    switch (AfterWrite(ok)) {
      case Next::kSendFilled:
        if (round < kMaxReadsPerPump) continue;
        send_filled_ = true;  // Pump() sends it
        hub_->Requeue(this);
        return;
      case Next::kReadOn:
        hub_->Requeue(this);  // the hub pumps it: no Pump() nested in this loop
        return;
      case Next::kNothing:
        return;
    }
  }
}

bool SubscribeReactor::ShouldReadAhead() const {
  // Only while at least about a message's worth of WAL behind the head (a stream following the
  // head reads one batch per write, as before), never past the last message, and only while
  // every stream could hold two messages within the shared budget.
  return !finish_after_write_ && !cancelled_.load() &&
         log_->Head().lsn >= next_.lsn + options_->max_batch_bytes &&
         hub_->subscribers() * 2 * options_->max_batch_bytes <= options_->max_inflight_bytes;
}

void SubscribeReactor::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&handoff_mu_);
    if (reading_ahead_) {  // SendFilled() goes on when its read is done
      write_done_ = true;
      write_ok_ = ok;
      return;
    }
  }
  switch (AfterWrite(ok)) {
    case Next::kSendFilled:
      SendFilled();
      return;
    case Next::kReadOn:
      Pump();
      return;
    case Next::kNothing:
      return;
  }
}

SubscribeReactor::Next SubscribeReactor::AfterWrite(bool ok) {
  // Written: give the batch's memory back rather than keep it per stream.
  response_.Clear();
  const std::optional<BatchResult> ahead = std::exchange(ahead_, std::nullopt);
  if (!ok) {
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the stream was closed"));
    return Next::kNothing;
  }
  if (finish_after_write_) {
    FinishAtStop();
    return Next::kNothing;
  }
  if (ahead == BatchResult::kWrite && !cancelled_.load() && !hub_->shutting_down()) {
    return Next::kSendFilled;
  }
  if (ahead == BatchResult::kFailed) {
    Finish(ahead_failure_);
    return Next::kNothing;
  }
  if (ahead == BatchResult::kStopped) {
    FinishAtStop();
    return Next::kNothing;
  }
  // Nothing read ahead, or nothing to send from it (caught up, filtered out, cancelled): Pump()
  // reads on, or finishes.
  return Next::kReadOn;
}

void SubscribeReactor::OnCancel() {
  cancelled_.store(true);
  hub_->Wake(this);
}

void SubscribeReactor::OnDone() {
  hub_->SubscriberEnded(this);
  delete this;
}

}  // namespace walfeed
