#include "server/source/change_stager.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/source/replication_protocol.h"
#include "server/source/transaction_builder.h"

namespace walfeed {
namespace {

// A batch is staged once it holds this many changes or bytes, whichever comes first.
constexpr size_t kBatchChanges = 2000;
constexpr size_t kBatchBytes = 16 << 20;

}  // namespace

ChangeStager::ChangeStager(TransactionSink* sink, Position first)
    : sink_(sink), first_(first), lsn_text_(FormatLsn(first.lsn)), next_seq_(first.seq) {
  SetPgTimestamp(PgNowMicros(), &time_);
}

absl::Status ChangeStager::Add(v1::Change change) {
  if (next_seq_ > std::numeric_limits<uint32_t>::max()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", std::numeric_limits<uint32_t>::max() - first_.seq + 1,
                     " changes in one synthetic transaction at ", FormatLsn(first_.lsn)));
  }
  const uint32_t seq = static_cast<uint32_t>(next_seq_++);
  change.set_lsn(first_.lsn);
  change.set_seq(seq);
  change.set_cursor(absl::StrCat(lsn_text_, ":", seq));
  change.set_lsn_text(lsn_text_);
  *change.mutable_commit_time() = time_;
  pending_bytes_ += change.ByteSizeLong();
  pending_.push_back(std::move(change));
  if (pending_.size() < kBatchChanges && pending_bytes_ < kBatchBytes) return absl::OkStatus();
  return Stage(/*final=*/false);
}

absl::Status ChangeStager::Finish() { return Stage(/*final=*/true); }

Position ChangeStager::last() const {
  if (count() == 0) return Position{};
  return Position{first_.lsn, static_cast<uint32_t>(next_seq_ - 1)};
}

absl::Status ChangeStager::Stage(bool final) {
  if (pending_.empty()) return absl::OkStatus();
  if (final) {
    pending_.back().set_last_in_transaction(true);
    absl::Status staged = sink_->StageChanges(pending_);
    pending_.clear();
    pending_bytes_ = 0;
    return staged;
  }
  if (pending_.size() < 2) return absl::OkStatus();
  v1::Change held_back = std::move(pending_.back());
  pending_.pop_back();
  absl::Status staged = sink_->StageChanges(pending_);
  pending_.clear();
  pending_bytes_ = held_back.ByteSizeLong();
  pending_.push_back(std::move(held_back));
  return staged;
}

}  // namespace walfeed
