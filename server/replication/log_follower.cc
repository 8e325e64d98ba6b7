#include "server/replication/log_follower.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/change_wire_format.h"
#include "server/core/table_name.h"
#include "server/replication/copy_point.h"
#include "server/replication/jetstream_log.h"
#include "server/replication/log_bootstrap.h"
#include "server/replication/segment_builder.h"
#include "server/replication/segment_codec.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

// Messages read per request, and how long a request waits for the first one.
constexpr int kReadBatch = 16;
constexpr absl::Duration kReadWait = absl::Seconds(1);

}  // namespace

LogFollower::LogFollower(ReplicationOptions options, ChangeLog* log)
    : options_(std::move(options)), log_(log) {
  status_.set_state("connecting");
  status_.set_servers(absl::StrJoin(options_.servers, ","));
  status_.set_stream(options_.stream);
  const CopyPoint point = CopyPoint::Read(*log_);
  next_sequence_ = point.sequence + 1;
  // A log with changes but no record of a stream was not copied: walfeed wrote it from
  // PostgreSQL (or it is a copy of such a directory). In an ingest group it may have been this
  // instance that wrote it: the copy then skips what the log holds.
  copy_ = options_.failover || log_->Head().IsZero() || point.sequence > 0;
  next_start_ = point.sequence > 0 ? point.next : FormatSegmentStart(SegmentStart());
  status_next_start_ = next_start_;
  status_.set_stream_sequence(next_sequence_ - 1);
  if (!log_->Head().IsZero()) status_.set_replicated_cursor(FormatCursor(log_->Head()));
}

LogFollower::~LogFollower() { Stop(); }

absl::StatusOr<bool> LogFollower::AdoptStreamLogId() {
  if (!log_->Head().IsZero()) return true;
  absl::StatusOr<std::unique_ptr<JetStreamLog>> stream =
      JetStreamLog::Open(options_, /*create_missing=*/false);
  absl::Status not_yet;
  if (stream.ok()) {
    absl::StatusOr<JetStreamLog::Message> last = (*stream)->ReadLast();
    if (last.ok() && last->present) {
      const std::string log_id = last->Header("Walfeed-Log-Id");
      if (log_id.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("the JetStream stream ", options_.stream,
                         " holds messages walfeed did not write (no Walfeed-Log-Id header)"));
      }
      if (absl::Status adopted = log_->AdoptLogId(log_id); !adopted.ok()) return adopted;
      return true;
    }
    not_yet = last.ok() ? absl::UnavailableError(absl::StrCat(
                              "the JetStream stream ", options_.stream, " holds no segment yet"))
                        : last.status();
  } else {
    not_yet = stream.status();
  }
  spdlog::info("event=follow_waiting stream={} reason=\"{}\"", options_.stream,
               EscapeForLog(not_yet.message()));
  return false;
}

void LogFollower::Start() {
  thread_ = std::thread([this] { Run(); });
}

void LogFollower::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool LogFollower::DrainAndStop(absl::Duration timeout) {
  bool drained = false;
  {
    absl::MutexLock lock(&mu_);
    drain_ = true;
    const auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return drained_ || failed_; };
    mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
    drained = drained_;
  }
  Stop();
  return drained;
}

std::optional<Position> LogFollower::KeepFrom() const {
  absl::StatusOr<SegmentStart> next = ParseSegmentStart(next_start());
  if (!next.ok()) return Position{};
  return next->position;
}

std::string LogFollower::next_start() const {
  absl::MutexLock lock(&mu_);
  return status_next_start_;
}

bool LogFollower::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

v1::ReplicationStatus LogFollower::Status() const {
  absl::MutexLock lock(&mu_);
  v1::ReplicationStatus status = status_;
  if (failing_since_ != absl::InfiniteFuture()) {
    status.set_failing_seconds(absl::ToDoubleSeconds(absl::Now() - failing_since_));
  }
  return status;
}

SourceStatus LogFollower::SourceView() const {
  SourceStatus view;
  view.role = "replica";
  view.state = "following";
  view.snapshot_state = "skipped";
  absl::MutexLock lock(&mu_);
  view.failing_since = failing_since_;
  view.last_error = status_.last_error();
  return view;
}

void LogFollower::SetState(absl::string_view state) {
  absl::MutexLock lock(&mu_);
  if (status_.state() == state) return;
  const bool routine = (state == "following" && status_.state() == "caught_up") ||
                       (state == "caught_up" && status_.state() == "following");
  status_.set_state(std::string(state));
  spdlog::log(routine ? spdlog::level::debug : spdlog::level::info,
              "event=follow_state state={} stream={}", std::string(state), options_.stream);
}

void LogFollower::NoteError(const absl::Status& error) {
  absl::MutexLock lock(&mu_);
  status_.set_publish_errors(status_.publish_errors() + 1);
  status_.set_last_error(std::string(error.message()));
  if (failing_since_ == absl::InfiniteFuture()) failing_since_ = absl::Now();
  if (!failed_) status_.set_state("failing");
  spdlog::warn("event=follow_failed stream={} error=\"{}\" action=\"{}\"", options_.stream,
               EscapeForLog(error.message()),
               failed_ ? "following stopped" : "retrying; the local copy keeps serving");
}

absl::Status LogFollower::StopForGood(const std::string& problem) {
  {
    absl::MutexLock lock(&mu_);
    failed_ = true;
    status_.set_state("failed");
  }
  spdlog::error("event=follow_stopped stream={} reason=\"{}\"", options_.stream,
                EscapeForLog(problem));
  return absl::FailedPreconditionError(problem);
}

void LogFollower::Run() {
  absl::Duration backoff = options_.retry_min;
  std::unique_ptr<JetStreamLog> stream;
  while (!stopping()) {
    absl::Status result;
    if (stream == nullptr) {
      // An ingest group's first member may find no stream yet: whoever ingests would create it.
      absl::StatusOr<std::unique_ptr<JetStreamLog>> opened =
          JetStreamLog::Open(options_, /*create_missing=*/options_.failover);
      if (opened.ok()) {
        stream = *std::move(opened);
        spdlog::info("event=follow_connected server={} stream={} next_sequence={} next={}",
                     stream->ConnectedUrl(), options_.stream, next_sequence_, next_start_);
        NoteWriterOfCopiedEnd(*stream);
      } else {
        result = opened.status();
      }
    }
    if (stream != nullptr) {
      const uint64_t applied_before = Status().segments_published();
      result = Follow(*stream);
      if (Status().segments_published() > applied_before) backoff = options_.retry_min;
    }
    if (stopping()) break;
    if (!result.ok()) NoteError(result);
    {
      absl::MutexLock lock(&mu_);
      if (failed_) break;
    }
    if (absl::IsNotFound(result)) stream.reset();
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
    }
    backoff = std::min(backoff * 2, options_.retry_max);
  }
}

void LogFollower::NoteWriterOfCopiedEnd(JetStreamLog& stream) {
  // A follower started again (a restart, a failed takeover) that holds the stream's whole end
  // reads no message, yet it knows who wrote the last one it copied: the stream's last message.
  if (!Status().writer().empty() || next_sequence_ <= 1) return;
  absl::StatusOr<JetStreamLog::Message> last = stream.ReadLast();
  if (!last.ok() || last->sequence == 0 || last->sequence >= next_sequence_) return;
  absl::MutexLock lock(&mu_);
  status_.set_writer(last->Header("Walfeed-Writer"));
}

absl::Status LogFollower::Follow(JetStreamLog& stream) {
  if (!copy_) {
    return StopForGood(absl::StrCat(
        "this data directory holds a log walfeed wrote from PostgreSQL (log ", log_->LogId(),
        "), not a replica's copy of a stream: give the replica an empty --data-dir"));
  }
  while (!stopping()) {
    absl::StatusOr<std::vector<JetStreamLog::Message>> messages =
        stream.ReadFrom(next_sequence_, kReadBatch, kReadWait);
    if (!messages.ok()) return messages.status();
    if (messages->empty()) {
      // Nothing new: caught up, unless the stream lost what this copy needs next.
      absl::StatusOr<uint64_t> first = stream.FirstSequence();
      if (!first.ok()) return first.status();
      if (*first > next_sequence_) {
        if (absl::Status bootstrapped = Bootstrap(stream, *first); !bootstrapped.ok()) {
          return bootstrapped;
        }
        continue;
      }
      {
        absl::MutexLock lock(&mu_);
        failing_since_ = absl::InfiniteFuture();
        status_.clear_last_error();
      }
      {
        absl::MutexLock lock(&mu_);
        status_.set_lag_segments(0);
        if (drain_) {
          drained_ = true;
          stopping_ = true;
        }
      }
      SetState("caught_up");
      continue;
    }
    for (const JetStreamLog::Message& message : *messages) {
      if (message.sequence != next_sequence_) {
        // The stream's limits removed segments this replica has not copied.
        return Bootstrap(stream, message.sequence);
      }
      if (absl::Status applied = Apply(message); !applied.ok()) {
        return applied;
      }
      absl::MutexLock lock(&mu_);
      status_.set_writer(message.Header("Walfeed-Writer"));
    }
    absl::MutexLock lock(&mu_);
    status_.set_lag_segments(messages->back().pending);
  }
  return absl::OkStatus();
}

absl::Status LogFollower::Apply(const JetStreamLog::Message& message) {
  const uint64_t sequence = message.sequence;
  const std::string log_id = message.Header("Walfeed-Log-Id");
  const std::string start = message.Header("Walfeed-Start");
  const std::string next = message.Header("Walfeed-Next");
  if (log_id != log_->LogId()) {
    return StopForGood(absl::StrCat(
        "message ", sequence, " of the JetStream stream ", options_.stream, " holds ",
        log_id.empty() ? std::string("no walfeed segment") : absl::StrCat("log ", log_id),
        ", but this replica copies log ", log_->LogId(),
        ": give the replica an empty --data-dir, or the stream of its own log"));
  }
  if (start != next_start_ || !ParseSegmentStart(next).ok()) {
    return StopForGood(absl::StrCat("message ", sequence, " of the JetStream stream ",
                                    options_.stream, " starts at '", start, "' (next '", next,
                                    "'), but this replica's copy ends at '", next_start_,
                                    "': the stream does not continue it"));
  }
  std::string scratch;
  absl::StatusOr<absl::string_view> data =
      DecodeSegment(message.data, message.Header(kCompressionHeader), &scratch);
  if (!data.ok()) {
    return StopForGood(absl::StrCat("message ", sequence, " of the JetStream stream ",
                                    options_.stream, " cannot be read: ", data.status().message()));
  }
  std::vector<ChangeLog::StoredChunk> chunks;
  std::vector<LogRecord> records;
  bool last_ends_transaction = false;
  bool well_formed = true;
  const bool parsed = VisitFields(*data, [&](uint32_t field, uint64_t, absl::string_view bytes) {
    if (field == v1::LogSegment::kValuesFieldNumber) {
      v1::LargeValueChunk chunk;
      if (!chunk.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        well_formed = false;
        return false;
      }
      absl::StatusOr<ValueRef> ref = ParseValueRef(chunk.ref());
      if (!ref.ok()) {
        well_formed = false;
        return false;
      }
      chunks.push_back(
          ChangeLog::StoredChunk{*ref, chunk.offset(), std::move(*chunk.mutable_data())});
    } else if (field == v1::LogSegment::kChangesFieldNumber) {
      ChangeSummary summary;
      if (!SummarizeChange(bytes, &summary)) {
        well_formed = false;
        return false;
      }
      records.push_back(LogRecord{Position{summary.lsn, summary.seq}, std::string(bytes)});
      last_ends_transaction = summary.last_in_transaction;
    }
    return true;
  });
  if (!parsed || !well_formed) {
    return StopForGood(absl::StrCat("message ", sequence, " of the JetStream stream ",
                                    options_.stream,
                                    " is not a well-formed walfeed.v1.LogSegment"));
  }
  SkipHeld(&chunks, &records);
  // Visible once a transaction is whole; recorded with it, so a restart reads on from there.
  const bool commit = !records.empty() && last_ends_transaction;
  ChangeLog::MetadataUpdates metadata;
  if (commit) metadata = CopyPoint{sequence, next}.Updates();
  absl::Status appended = absl::OkStatus();
  if (!records.empty() || !chunks.empty()) {
    appended = log_->AppendStored(chunks, records, commit, metadata);
  }
  if (!appended.ok()) {
    // Segments that do not continue the copy are not mended by retrying.
    if (absl::IsFailedPrecondition(appended)) {
      return StopForGood(absl::StrCat("message ", sequence, " of the JetStream stream ",
                                      options_.stream, ": ", appended.message()));
    }
    return appended;
  }
  next_sequence_ = sequence + 1;
  next_start_ = next;
  absl::MutexLock lock(&mu_);
  status_next_start_ = next;
  status_.set_stream_sequence(sequence);
  if (commit) status_.set_replicated_cursor(FormatCursor(records.back().position));
  status_.set_segments_published(status_.segments_published() + 1);
  failing_since_ = absl::InfiniteFuture();
  status_.clear_last_error();
  if (status_.state() != "following") {
    spdlog::info("event=follow_state state=following stream={}", options_.stream);
    status_.set_state("following");
  }
  return absl::OkStatus();
}

absl::Status LogFollower::Bootstrap(JetStreamLog& stream, uint64_t first) {
  const std::string lost = absl::StrCat(
      "the JetStream stream ", options_.stream, " no longer holds message ", next_sequence_,
      " (its first is ", first, "): its limits removed segments this replica has not copied");
  if (options_.bootstrap_from.empty()) {
    return StopForGood(absl::StrCat(
        lost,
        "; give --bootstrap-from the address of another instance of the group to copy "
        "them from, or start the replica with an empty --data-dir while the stream still "
        "holds the log from its start"));
  }
  spdlog::info("event=bootstrap_started stream={} reason=\"{}\" peers={}", options_.stream,
               EscapeForLog(lost), absl::StrJoin(options_.bootstrap_from, ","));
  SetState("bootstrapping");
  // What the stream's last segments staged of a transaction comes again from the peer.
  if (absl::Status discarded = log_->DiscardStaged(); !discarded.ok()) return discarded;
  LogBootstrap copy(options_.bootstrap_from, log_);
  if (absl::Status copied = copy.CopyToPeerHead([this] { return stopping(); }); !copied.ok()) {
    if (absl::IsFailedPrecondition(copied)) return StopForGood(std::string(copied.message()));
    return copied;
  }
  // The stream continues the copy from its first segment on, what the copy holds skipped.
  absl::StatusOr<std::vector<JetStreamLog::Message>> messages =
      stream.ReadFrom(first, 1, kReadWait);
  if (!messages.ok()) return messages.status();
  if (messages->empty()) {
    return absl::UnavailableError(
        absl::StrCat("the JetStream stream ", options_.stream, " did not give message ", first));
  }
  const JetStreamLog::Message& message = messages->front();
  const std::string start_text = message.Header("Walfeed-Start");
  absl::StatusOr<SegmentStart> start = ParseSegmentStart(start_text);
  if (!start.ok()) return StopForGood(std::string(start.status().message()));
  const Position head = log_->Head();
  // A segment that begins inside a change's values needs that change's earlier chunks.
  const bool reaches =
      start->chunk.has_value() ? start->position <= head : start->position <= head.Successor();
  if (!reaches) {
    return absl::UnavailableError(
        absl::StrCat("the copy from --bootstrap-from ends at ", FormatCursor(head),
                     ", before the stream's first segment begins (", start_text,
                     "): that instance is behind the stream; trying again"));
  }
  if (absl::Status recorded =
          log_->SetMetadata(CopyPoint{message.sequence - 1, start_text}.Updates());
      !recorded.ok()) {
    return recorded;
  }
  next_sequence_ = message.sequence;
  next_start_ = start_text;
  {
    absl::MutexLock lock(&mu_);
    status_next_start_ = start_text;
  }
  spdlog::info("event=bootstrap_done stream={} head={} next_sequence={}", options_.stream,
               FormatCursor(head), next_sequence_);
  return absl::OkStatus();
}

void LogFollower::SkipHeld(std::vector<ChangeLog::StoredChunk>* chunks,
                           std::vector<LogRecord>* records) const {
  // The log's head ends a transaction, and a segment splits only a transaction too large for
  // one message: what a segment holds is either all at or below the head, or from a
  // transaction's start on.
  const Position head = log_->Head();
  chunks->erase(std::remove_if(chunks->begin(), chunks->end(),
                               [&head](const ChangeLog::StoredChunk& chunk) {
                                 return chunk.ref.position <= head;
                               }),
                chunks->end());
  records->erase(
      std::remove_if(records->begin(), records->end(),
                     [&head](const LogRecord& record) { return record.position <= head; }),
      records->end());
}

}  // namespace walfeed
