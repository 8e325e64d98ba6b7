#include "server/group_member.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/table_name.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

// How often the roles are checked, and how long a takeover may spend copying the stream's end.
constexpr absl::Duration kCheckInterval = absl::Seconds(1);
constexpr absl::Duration kDrainTimeout = absl::Seconds(60);
// Checks in a row that find the slot busy while this ingester's source does not stream before
// it goes back to following.
constexpr int kBusyChecksToDemote = 3;
// How long a takeover waits for the source to stream from the slot.
constexpr absl::Duration kStreamingTimeout = absl::Seconds(10);

}  // namespace

GroupMember::GroupMember(SourceOptions source, ReplicationOptions replication, ChangeLog* log,
                         SlotMonitor* slot)
    : source_options_(std::move(source)),
      replication_options_(std::move(replication)),
      log_(log),
      slot_(slot) {}

GroupMember::~GroupMember() { Stop(); }

absl::StatusOr<bool> GroupMember::Join(const std::function<bool()>& stop_requested) {
  while (!stop_requested()) {
    if (!log_->Head().IsZero()) return true;
    {
      LogFollower probe(replication_options_, log_);
      absl::StatusOr<bool> adopted = probe.AdoptStreamLogId();
      if (!adopted.ok()) return adopted.status();
      if (*adopted) return true;
    }
    // An empty log and a stream without segments agree: the first member to get the slot
    // starts the group's log.
    if (SlotIsFree().value_or(false)) {
      StartFollowing();
      if (TryTakeOver()) return true;
      std::unique_ptr<LogFollower> follower;
      {
        absl::MutexLock lock(&mu_);
        follower = std::move(follower_);
      }
      if (follower != nullptr) follower->Stop();
    }
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), kCheckInterval);
  }
  return false;
}

void GroupMember::Start() {
  bool idle = false;
  {
    absl::MutexLock lock(&mu_);
    idle = source_ == nullptr && follower_ == nullptr;
  }
  if (idle) StartFollowing();
  thread_ = std::thread([this] { Run(); });
}

void GroupMember::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  std::unique_ptr<LogFollower> follower;
  std::unique_ptr<Source> source;
  std::unique_ptr<LogReplicator> replicator;
  {
    absl::MutexLock lock(&mu_);
    follower = std::move(follower_);
    source = std::move(source_);
    replicator = std::move(replicator_);
  }
  // The source confirms what it may on the way out: its gate, the replication, stops after it.
  if (source != nullptr) source->Stop();
  if (replicator != nullptr) replicator->Stop();
  if (follower != nullptr) follower->Stop();
}

bool GroupMember::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

bool GroupMember::ingesting() const {
  absl::MutexLock lock(&mu_);
  return source_ != nullptr;
}

SourceStatus GroupMember::SourceView() const {
  absl::MutexLock lock(&mu_);
  if (source_ != nullptr) return source_->status();
  if (follower_ != nullptr) return follower_->SourceView();
  SourceStatus switching;
  switching.role = "replica";
  switching.state = "switching";
  return switching;
}

v1::ReplicationStatus GroupMember::ReplicationView() const {
  absl::MutexLock lock(&mu_);
  if (replicator_ != nullptr) return replicator_->Status();
  if (follower_ != nullptr) return follower_->Status();
  v1::ReplicationStatus switching;
  switching.set_state("switching");
  switching.set_stream(replication_options_.stream);
  return switching;
}

std::optional<Position> GroupMember::KeepFrom() const {
  absl::MutexLock lock(&mu_);
  if (replicator_ != nullptr) return replicator_->KeepFrom();
  if (follower_ != nullptr) return follower_->KeepFrom();
  return Position{};
}

std::optional<bool> GroupMember::SlotIsFree() {
  absl::StatusOr<SlotWal> slot = slot_->Read();
  if (absl::IsNotFound(slot.status())) return true;
  if (!slot.ok()) {
    spdlog::debug("event=slot_check_failed error=\"{}\"", EscapeForLog(slot.status().message()));
    return std::nullopt;
  }
  return !slot->active;
}

void GroupMember::StartFollowing() {
  if (absl::Status discarded = log_->DiscardStaged(); !discarded.ok()) {
    spdlog::warn("event=discard_staged_failed error=\"{}\"", EscapeForLog(discarded.message()));
  }
  auto follower = std::make_unique<LogFollower>(replication_options_, log_);
  follower->Start();
  absl::MutexLock lock(&mu_);
  follower_ = std::move(follower);
}

void GroupMember::Run() {
  while (!stopping()) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), kCheckInterval);
      if (stopping_) break;
    }
    if (!ingesting()) {
      if (SlotIsFree().value_or(false)) TryTakeOver();
      continue;
    }
    bool demoted = false;
    bool streaming = false;
    {
      absl::MutexLock lock(&mu_);
      demoted = replicator_->Demoted();
      streaming = source_->status().state == "streaming";
    }
    if (demoted) {
      Demote("another member published after this one");
      continue;
    }
    if (streaming) {
      slot_busy_checks_ = 0;
      continue;
    }
    // The source cannot stream: another member holding the slot ends this one's turn.
    const std::optional<bool> free = SlotIsFree();
    slot_busy_checks_ = free.has_value() && !*free ? slot_busy_checks_ + 1 : 0;
    if (slot_busy_checks_ >= kBusyChecksToDemote) {
      Demote("the slot is busy and this member's source cannot stream");
    }
  }
}

bool GroupMember::TryTakeOver() {
  const absl::Time began = absl::Now();
  std::unique_ptr<LogFollower> follower;
  {
    absl::MutexLock lock(&mu_);
    follower = std::move(follower_);
  }
  // The copy must be complete before this member adds to the log: the stream's end is where
  // the last ingester stopped.
  const bool drained = follower != nullptr && follower->DrainAndStop(kDrainTimeout);
  const v1::ReplicationStatus copied =
      follower != nullptr ? follower->Status() : v1::ReplicationStatus();
  follower.reset();
  if (!drained) {
    spdlog::warn(
        "event=takeover_skipped reason=\"the copy of the stream could not reach its end: "
        "{}\"",
        EscapeForLog(copied.last_error()));
    if (!stopping()) StartFollowing();
    return false;
  }
  // A transaction the copy staged in part comes again whole from PostgreSQL.
  if (absl::Status discarded = log_->DiscardStaged(); !discarded.ok()) {
    spdlog::warn("event=discard_staged_failed error=\"{}\"", EscapeForLog(discarded.message()));
    StartFollowing();
    return false;
  }
  auto replicator = std::make_unique<LogReplicator>(replication_options_, log_);
  auto source = std::make_unique<Source>(source_options_, log_, log_);
  source->SetConfirmGate(replicator.get());
  absl::Status started = source->Start();
  // Two members may both find the slot free; PostgreSQL lets one of them stream from it.
  if (started.ok()) started = AwaitStreaming(*source);
  if (!started.ok()) {
    spdlog::info("event=takeover_failed reason=\"{}\"", EscapeForLog(started.message()));
    source->Stop();
    source.reset();
    replicator.reset();
    if (!stopping()) StartFollowing();
    return false;
  }
  replicator->Start();
  {
    absl::MutexLock lock(&mu_);
    source_ = std::move(source);
    replicator_ = std::move(replicator);
  }
  slot_busy_checks_ = 0;
  spdlog::info(
      "event=ingest_taken_over stream_sequence={} head={} writer={} took_seconds={:.3f} "
      "previous_writer={}",
      copied.stream_sequence(), FormatCursor(log_->Head()), replication_options_.writer,
      absl::ToDoubleSeconds(absl::Now() - began), copied.writer());
  return true;
}

absl::Status GroupMember::AwaitStreaming(const Source& source) {
  const absl::Time deadline = absl::Now() + kStreamingTimeout;
  while (true) {
    const SourceStatus status = source.status();
    // A snapshot or a resynchronisation runs on the slot it created: this member holds it.
    if (status.state == "streaming" || status.state == "snapshotting" ||
        status.state == "resyncing") {
      return absl::OkStatus();
    }
    if (status.state == "reconnecting" || absl::Now() > deadline || stopping()) {
      return absl::UnavailableError(
          absl::StrCat("the source did not stream from the slot (", status.state,
                       status.last_error.empty() ? "" : ": ", status.last_error, ")"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

void GroupMember::Demote(const std::string& why) {
  std::unique_ptr<Source> source;
  std::unique_ptr<LogReplicator> replicator;
  {
    absl::MutexLock lock(&mu_);
    source = std::move(source_);
    replicator = std::move(replicator_);
  }
  spdlog::warn("event=ingest_demoted reason=\"{}\" head={}", why, FormatCursor(log_->Head()));
  if (source != nullptr) source->Stop();
  if (replicator != nullptr) replicator->Stop();
  source.reset();
  replicator.reset();
  if (!stopping()) StartFollowing();
}

}  // namespace walfeed
