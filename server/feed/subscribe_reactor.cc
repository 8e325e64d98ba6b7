#include "server/feed/subscribe_reactor.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "server/core/log_format.h"
#include "server/core/position.h"
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
                                   const FeedOptions* options, SubscriptionPlan plan)
    : log_(log), hub_(hub), options_(options), plan_(std::move(plan)), next_(plan_.start) {
  hub_->SubscriberStarted();
  Pump();
}

Position SubscribeReactor::CaughtUpTo() const { return Predecessor(next_); }

bool SubscribeReactor::ReachedStop() const { return plan_.stop_at && next_ > *plan_.stop_at; }

void SubscribeReactor::Pump() {
  if (finished_) return;
  if (hub_->shutting_down()) {
    finished_ = true;
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "walfeed is shutting down; resume from your last cursor"));
    return;
  }
  if (cancelled_.load()) {
    finished_ = true;
    Finish(grpc::Status::CANCELLED);
    return;
  }
  for (;;) {
    if (FillBatch()) {
      Write();
      return;
    }
    if (finished_) return;
    const bool progress_due = absl::Now() - last_write_ >= options_->progress_interval;
    if (!records_.empty()) {
      // Everything read was filtered out. Tell the client how far it got, at a transaction
      // boundary only, then read on.
      if (progress_due && last_read_ends_transaction_) {
        WriteProgress();
        return;
      }
      continue;
    }
    // Caught up with the head, which is always a transaction boundary.
    if (ReachedStop() || (plan_.stop_at && plan_.stop_at->IsZero())) {
      finished_ = true;
      Finish(grpc::Status::OK);
      return;
    }
    if (progress_due) {
      WriteProgress();
      return;
    }
    if (hub_->AddWaiter(this, next_)) return;  // the hub drives us from here on
  }
}

void SubscribeReactor::WriteProgress() {
  response_.Clear();
  response_.set_cursor(FormatCursor(CaughtUpTo()));
  response_.set_head_cursor(FormatCursor(log_->Head()));
  Write();
}

bool SubscribeReactor::FillBatch() {
  response_.Clear();
  records_.clear();
  absl::Status read =
      log_->Read(next_, plan_.max_batch_changes, options_->max_batch_bytes, &records_);
  if (!read.ok()) {
    spdlog::error("event=subscriber_read_failed error=\"{}\"", read.message());
    finished_ = true;
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("cannot read the change log: ", read.message(),
                                     "; resume from your last cursor")));
    records_.clear();
    return false;
  }
  for (LogRecord& record : records_) {
    if (plan_.stop_at && record.position > *plan_.stop_at) {
      finish_after_write_ = true;
      next_ = plan_.stop_at->Successor();
      break;
    }
    next_ = record.position.Successor();
    v1::Change* change = response_.add_changes();
    if (!change->ParseFromString(record.change)) {
      spdlog::error("event=corrupt_change position={}", FormatCursor(record.position));
      finished_ = true;
      Finish(grpc::Status(
          grpc::StatusCode::DATA_LOSS,
          absl::StrCat("the change at ", FormatCursor(record.position), " cannot be decoded")));
      return false;
    }
    last_read_ends_transaction_ = change->last_in_transaction();
    if (!plan_.Accepts(*change)) response_.mutable_changes()->RemoveLast();
  }
  if (ReachedStop()) finish_after_write_ = true;
  if (response_.changes_size() == 0) {
    if (finish_after_write_) {
      finished_ = true;
      Finish(grpc::Status::OK);
      records_.clear();
    }
    return false;
  }
  response_.set_cursor(response_.changes(response_.changes_size() - 1).cursor());
  response_.set_head_cursor(FormatCursor(log_->Head()));
  return true;
}

void SubscribeReactor::Write() {
  last_write_ = absl::Now();
  StartWrite(&response_);
}

void SubscribeReactor::OnWriteDone(bool ok) {
  if (!ok) {
    finished_ = true;
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the stream was closed"));
    return;
  }
  if (finish_after_write_) {
    finished_ = true;
    Finish(grpc::Status::OK);
    return;
  }
  Pump();
}

void SubscribeReactor::OnCancel() {
  cancelled_.store(true);
  hub_->Wake(this);
}

void SubscribeReactor::OnDone() {
  hub_->SubscriberEnded();
  delete this;
}

}  // namespace walfeed
