#include "server/replication/log_replicator.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/fault_point.h"
#include "server/core/proto_time.h"
#include "server/core/table_name.h"
#include "server/replication/copy_point.h"
#include "server/replication/jetstream_log.h"
#include "server/replication/segment_codec.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

// Room left in every message for its headers.
constexpr size_t kHeaderRoom = 4096;
// The smallest segment bound, whatever the servers' max_payload.
constexpr size_t kMinSegmentBytes = 64 << 10;
// Lag counting stops here (the figure then means "at least"), and runs at most this often while
// changes wait: it reads the log, and a replication far behind has better uses for the core.
constexpr size_t kLagCountLimit = 100000;
constexpr absl::Duration kLagInterval = absl::Seconds(5);
// How often an ingest group's publisher records where its log stands in the stream.
constexpr absl::Duration kCopyPointInterval = absl::Seconds(2);

}  // namespace

struct LogReplicator::HeadSignal {
  absl::Mutex mu;
  bool moved ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
};

LogReplicator::LogReplicator(ReplicationOptions options, ChangeLog* log)
    : options_(std::move(options)), log_(log), head_signal_(std::make_shared<HeadSignal>()) {
  status_.set_state("connecting");
  status_.set_servers(absl::StrJoin(options_.servers, ","));
  status_.set_stream(options_.stream);
  status_.set_confirm_after(options_.confirm_after == ConfirmAfter::kReplicated ? "replicated"
                                                                                : "local");
}

LogReplicator::~LogReplicator() { Stop(); }

void LogReplicator::Start() {
  std::shared_ptr<HeadSignal> signal = head_signal_;
  log_->AddHeadListener([signal](const HeadAdvance&) {
    absl::MutexLock lock(&signal->mu);
    signal->moved = true;
  });
  thread_ = std::thread([this] { Run(); });
}

void LogReplicator::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  {
    absl::MutexLock lock(&head_signal_->mu);
    head_signal_->stop = true;
  }
  if (thread_.joinable()) thread_.join();
}

uint64_t LogReplicator::ConfirmableLsn() const {
  absl::MutexLock lock(&mu_);
  if (!next_.has_value()) return 0;
  // The head is read after the source read its durable point: a newer head only makes this
  // stricter.
  const Position head = log_->Head();
  if (head.IsZero() || next_->position > head) return kNoBound;
  // Not next_->lsn: a non-transactional message sits at its record's end - 1, above the start
  // PostgreSQL compares, and next_ may be inside a transaction split between segments.
  if (!last_whole_.has_value()) return 0;
  return last_whole_->lsn + 1;
}

std::optional<Position> LogReplicator::KeepFrom() const {
  absl::MutexLock lock(&mu_);
  if (failed_) return std::nullopt;
  if (!next_.has_value()) return Position{};
  return next_->position;
}

v1::ReplicationStatus LogReplicator::Status() const {
  absl::MutexLock lock(&mu_);
  v1::ReplicationStatus status = status_;
  if (failing_since_ != absl::InfinitePast()) {
    status.set_failing_seconds(absl::ToDoubleSeconds(absl::Now() - failing_since_));
  }
  return status;
}

bool LogReplicator::Failed() const {
  absl::MutexLock lock(&mu_);
  return failed_;
}

bool LogReplicator::Demoted() const {
  absl::MutexLock lock(&mu_);
  return demoted_;
}

void LogReplicator::SetState(absl::string_view state) {
  absl::MutexLock lock(&mu_);
  if (status_.state() == state) return;
  const bool routine = (state == "replicating" && status_.state() == "caught_up") ||
                       (state == "caught_up" && status_.state() == "replicating");
  status_.set_state(std::string(state));
  // Replicating and caught up take turns with every burst of writes: not worth a line each.
  spdlog::log(routine ? spdlog::level::debug : spdlog::level::info,
              "event=replication_state state={} stream={}", std::string(state), options_.stream);
}

void LogReplicator::NoteError(const absl::Status& error) {
  absl::MutexLock lock(&mu_);
  status_.set_publish_errors(status_.publish_errors() + 1);
  status_.set_last_error(std::string(error.message()));
  if (failing_since_ == absl::InfinitePast()) failing_since_ = absl::Now();
  if (!failed_) status_.set_state("failing");
  spdlog::warn("event=replication_failed stream={} error=\"{}\" action=\"{}\"", options_.stream,
               EscapeForLog(error.message()),
               failed_ ? "replication stopped" : "retrying; the local log keeps the changes");
}

absl::Status LogReplicator::StopForGood(const std::string& problem) {
  {
    absl::MutexLock lock(&mu_);
    failed_ = true;
    status_.set_state("failed");
  }
  spdlog::error("event=replication_stopped stream={} reason=\"{}\"", options_.stream,
                EscapeForLog(problem));
  return absl::FailedPreconditionError(problem);
}

void LogReplicator::ClearFailure() {
  failing_since_ = absl::InfinitePast();
  status_.clear_last_error();
}

void LogReplicator::Run() {
  absl::Duration backoff = options_.retry_min;
  std::unique_ptr<JetStreamLog> stream;
  const auto stopping = [this] {
    absl::MutexLock lock(&mu_);
    return stopping_;
  };
  while (!stopping()) {
    if (stream == nullptr) {
      absl::StatusOr<std::unique_ptr<JetStreamLog>> opened = JetStreamLog::Open(options_);
      if (opened.ok()) {
        stream = *std::move(opened);
        const int64_t max_payload = stream->MaxPayload();
        budget_ = std::max(kMinSegmentBytes,
                           std::min(options_.segment_bytes,
                                    static_cast<size_t>(std::max<int64_t>(max_payload, 0)) -
                                        std::min<size_t>(kHeaderRoom, max_payload)));
        spdlog::info(
            "event=replication_connected server={} stream={} max_payload={} "
            "segment_bytes={}",
            stream->ConnectedUrl(), options_.stream, max_payload, budget_);
      } else {
        NoteError(opened.status());
      }
    }
    absl::Status result = stream != nullptr ? Resume(*stream) : absl::OkStatus();
    if (stream != nullptr && result.ok()) {
      const uint64_t published_before = Status().segments_published();
      result = Publish(*stream);
      if (Status().segments_published() > published_before) backoff = options_.retry_min;
    }
    if (stopping()) break;
    if (!result.ok()) NoteError(result);
    MeasureLag(/*force=*/false);
    if (Failed()) break;
    // A stream deleted under us is created again by a new connection.
    if (absl::IsNotFound(result)) stream.reset();
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
    }
    backoff = std::min(backoff * 2, options_.retry_max);
  }
}

absl::Status LogReplicator::Resume(JetStreamLog& stream) {
  absl::StatusOr<JetStreamLog::Message> last = stream.ReadLast();
  if (!last.ok()) return last.status();
  SegmentStart next;
  std::optional<Position> last_whole;
  if (last->sequence > 0 && !last->present) {
    // The stream's limits (max_age, say) or a delete took its last message. Only this writer's
    // own memory can say where that message ended the log.
    bool known = false;
    {
      absl::MutexLock lock(&mu_);
      known = next_.has_value() && expected_sequence_ == last->sequence;
    }
    if (!known) {
      return StopForGood(absl::StrCat(
          "the last message (", last->sequence, ") of the JetStream stream ", options_.stream,
          " is gone (expired by the stream's limits, or deleted), so walfeed cannot tell where "
          "its log continues: keep the newest messages (limit the stream by max_bytes or max_msgs, "
          "not max_age alone), or start a new stream with --replication-stream"));
    }
    expected_id_.clear();
    return absl::OkStatus();
  }
  if (last->sequence > 0) {
    const std::string writer = last->Header("Walfeed-Writer");
    if (options_.failover && acknowledged_any_ && last->sequence > expected_sequence_ &&
        writer != options_.writer) {
      // Another member of the ingest group took over after this one published: it holds the
      // slot now, and this one must not write again.
      {
        absl::MutexLock lock(&mu_);
        demoted_ = true;
        status_.set_writer(writer);
      }
      return StopForGood(absl::StrCat("another walfeed (", writer,
                                      ") took over publishing the log at stream message ",
                                      last->sequence, "; this one goes back to following"));
    }
    const std::string log_id = last->Header("Walfeed-Log-Id");
    absl::StatusOr<SegmentStart> parsed = ParseSegmentStart(last->Header("Walfeed-Next"));
    std::string problem;
    if (log_id != log_->LogId()) {
      problem = absl::StrCat("the JetStream stream ", options_.stream, " ends (message ",
                             last->sequence, ") with ",
                             log_id.empty() ? "a message walfeed did not write"
                                            : absl::StrCat("segments of log ", log_id),
                             ", not of this walfeed's log ", log_->LogId(),
                             ": another walfeed publishes to it; give each log its own "
                             "--replication-stream");
    } else if (!parsed.ok()) {
      problem = absl::StrCat("the last message (", last->sequence, ") of the JetStream stream ",
                             options_.stream,
                             " has no valid Walfeed-Next header: ", parsed.status().message());
    } else if (parsed->position > log_->Head().Successor() && !options_.failover) {
      // (In an ingest group the stream may be ahead: the previous ingester published what this
      // one is still reading from PostgreSQL, at the same positions. Publishing continues once
      // the log reaches the stream's end.)
      problem = absl::StrCat(
          "the JetStream stream ", options_.stream, " holds this log's changes up to ",
          FormatSegmentStart(*parsed), ", past its head ", FormatCursor(log_->Head()),
          ": another walfeed with a copy of this data directory publishes to it, or the "
          "directory is older than the stream");
    } else if (!log_->PurgePoint().IsZero() && parsed->position <= log_->PurgePoint()) {
      problem = absl::StrCat("the JetStream stream ", options_.stream, " ends at ",
                             FormatSegmentStart(*parsed), ", but compaction removed changes up to ",
                             FormatCursor(log_->PurgePoint()),
                             " from the log: they cannot be replicated any more");
    }
    if (!problem.empty()) return StopForGood(problem);
    next = *parsed;
    std::string scratch;
    absl::StatusOr<absl::string_view> bytes =
        DecodeSegment(last->data, last->Header(kCompressionHeader), &scratch);
    v1::LogSegment segment;
    if (bytes.ok() && segment.ParseFromArray(bytes->data(), static_cast<int>(bytes->size()))) {
      for (const v1::Change& change : segment.changes()) {
        if (change.last_in_transaction()) last_whole = Position{change.lsn(), change.seq()};
      }
    }
  }
  expected_sequence_ = last->sequence;
  expected_id_.clear();
  {
    absl::MutexLock lock(&mu_);
    if (next_.has_value() && next.position < next_->position) {
      // JetStream lost messages it had acknowledged (2.9 syncs its files every 60 s): they are
      // published again, from the local log, which still holds them unless PostgreSQL was told.
      spdlog::warn("event=replication_rewound stream={} acknowledged_up_to={} stream_ends_at={}",
                   options_.stream, FormatSegmentStart(*next_), FormatSegmentStart(next));
    }
    // What the stream's last message says ends a transaction; else what this writer knew, when
    // the stream ends where it left it.
    if (last_whole.has_value()) {
      last_whole_ = last_whole;
    } else if (!(next_.has_value() && next == *next_)) {
      last_whole_.reset();
    }
    next_ = next;
    status_.set_stream_sequence(last->sequence);
    if (last->sequence > 0) status_.set_writer(last->Header("Walfeed-Writer"));
    const std::string last_cursor = last->Header("Walfeed-Last-Cursor");
    if (!last_cursor.empty()) status_.set_replicated_cursor(last_cursor);
  }
  spdlog::info("event=replication_resumed stream={} stream_sequence={} next={}", options_.stream,
               last->sequence, FormatSegmentStart(next));
  MeasureLag(/*force=*/true);
  return absl::OkStatus();
}

absl::Status LogReplicator::Publish(JetStreamLog& stream) {
  const std::string& log_id = log_->LogId();
  // Sent, not yet answered, oldest first. On a failure (or Stop) they are forgotten: the end
  // of the stream is read again and tells which of them were stored.
  std::deque<InFlight> in_flight;
  absl::Cleanup forget = [&stream, &in_flight] {
    if (!in_flight.empty()) stream.Abandon();
  };
  SegmentStart build_from;
  {
    absl::MutexLock lock(&mu_);
    build_from = *next_;
  }
  if (options_.failover && !acknowledged_any_) {
    if (absl::Status fenced = Fence(stream, build_from); !fenced.ok()) return fenced;
  }
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::OkStatus();
    }
    // Keep the window full: build and send the segments that follow the last one sent.
    while (in_flight.size() < static_cast<size_t>(options_.in_flight) &&
           build_from.position <= log_->Head()) {
      absl::StatusOr<std::optional<Segment>> segment =
          BuildSegment(*log_, log_id, build_from, budget_);
      if (!segment.ok()) return segment.status();
      if (!segment->has_value()) break;
      absl::StatusOr<InFlight> sent = Send(stream, build_from, **segment);
      if (!sent.ok()) return sent.status();
      build_from = sent->next;
      in_flight.push_back(*std::move(sent));
    }
    if (in_flight.empty()) {
      {
        absl::MutexLock lock(&mu_);
        status_.set_lag_changes(0);
        status_.set_lag_bytes(0);
        status_.set_lag_seconds(0);
        ClearFailure();
      }
      SetState("caught_up");
      WaitForHead(absl::Seconds(1));
      continue;
    }
    absl::StatusOr<uint64_t> sequence = stream.AwaitAck(in_flight.front().id);
    if (!sequence.ok()) return sequence.status();
    WALFEED_FAULT_POINT("replication.published_before_copy_point");
    const InFlight done = std::move(in_flight.front());
    in_flight.pop_front();
    expected_sequence_ = *sequence;
    acknowledged_any_ = true;
    if (options_.failover) RecordCopyPoint(*sequence, done);
    {
      absl::MutexLock lock(&mu_);
      status_.set_writer(options_.writer);
      next_ = done.next;
      if (done.last_whole.has_value()) last_whole_ = done.last_whole;
      status_.set_stream_sequence(*sequence);
      if (done.last.has_value()) status_.set_replicated_cursor(FormatCursor(*done.last));
      status_.set_segments_published(status_.segments_published() + 1);
      ClearFailure();
      if (status_.state() != "replicating") {
        spdlog::info("event=replication_state state=replicating stream={}", options_.stream);
        status_.set_state("replicating");
      }
    }
    MeasureLag(/*force=*/false);
  }
}

absl::Status LogReplicator::Fence(JetStreamLog& stream, const SegmentStart& end) {
  v1::LogSegment empty;
  empty.set_log_id(log_->LogId());
  Segment fence;
  fence.bytes = empty.SerializeAsString();
  fence.next = end;
  absl::StatusOr<InFlight> sent = Send(stream, end, fence);
  if (!sent.ok()) return sent.status();
  absl::StatusOr<uint64_t> sequence = stream.AwaitAck(sent->id);
  if (!sequence.ok()) return sequence.status();
  expected_sequence_ = *sequence;
  acknowledged_any_ = true;
  {
    absl::MutexLock lock(&mu_);
    status_.set_stream_sequence(*sequence);
    status_.set_writer(options_.writer);
  }
  spdlog::info("event=replication_fenced stream={} stream_sequence={} at={} writer={}",
               options_.stream, *sequence, FormatSegmentStart(end), options_.writer);
  return absl::OkStatus();
}

absl::StatusOr<LogReplicator::InFlight> LogReplicator::Send(JetStreamLog& stream,
                                                            const SegmentStart& start,
                                                            const Segment& built) {
  const std::string& log_id = log_->LogId();
  const std::string start_text = FormatSegmentStart(start);
  JetStreamLog::Headers headers = {{"Walfeed-Log-Id", log_id},
                                   {"Walfeed-Start", start_text},
                                   {"Walfeed-Next", FormatSegmentStart(built.next)}};
  if (!options_.writer.empty()) headers.emplace_back("Walfeed-Writer", options_.writer);
  const EncodedSegment encoded = EncodeSegment(built.bytes, options_.compression);
  if (!encoded.compression.empty()) headers.emplace_back(kCompressionHeader, encoded.compression);
  const absl::string_view data = encoded.Data(built.bytes);
  if (built.first.has_value()) {
    headers.emplace_back("Walfeed-First-Cursor", FormatCursor(*built.first));
    headers.emplace_back("Walfeed-Last-Cursor", FormatCursor(*built.last));
  }
  // The id names both ends: a segment rebuilt from the same start after a failed publish may
  // reach further (the head moved), and must not pass for the one stored meanwhile.
  // The writer too: another member of an ingest group builds the same segment under the same
  // name, and JetStream's deduplication must not take one writer's for the other's.
  InFlight sent{absl::StrCat(log_id, "@", start_text, "..", FormatSegmentStart(built.next), "#",
                             options_.writer),
                built.next, built.last, built.last_whole};
  size_t header_bytes = sent.id.size() + 64;
  for (const auto& [key, value] : headers) header_bytes += key.size() + value.size() + 4;
  const int64_t max_payload = stream.MaxPayload();
  if (max_payload > 0 && data.size() + header_bytes > static_cast<size_t>(max_payload)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the change at ", start_text, " takes ", data.size(),
        " bytes in a segment, more than the NATS servers' max_payload (", max_payload,
        " bytes) allows: raise max_payload in nats-server's configuration (walfeed's changes "
        "stay under about 1 MiB; 8MB leaves room)"));
  }
  // The first message after the end was read expects that end's sequence; every later one the
  // message sent before it.
  const JetStreamLog::Expectation expect{expected_sequence_, expected_id_};
  if (absl::Status sent_status = stream.Send(data, headers, sent.id, expect); !sent_status.ok()) {
    return sent_status;
  }
  expected_id_ = sent.id;
  {
    // A retry while publishing fails stays "failing" until a publish succeeds.
    absl::MutexLock lock(&mu_);
    if (failing_since_ == absl::InfinitePast() && status_.state() != "replicating") {
      status_.set_state("replicating");
    }
  }
  return sent;
}

void LogReplicator::RecordCopyPoint(uint64_t sequence, const InFlight& done) {
  // Only where a segment ends a transaction (the log's head may rest there), and at most every
  // few seconds: a follower reads on from an older point just as well, skipping what it holds.
  if (!done.last.has_value() || done.last != done.last_whole || done.next.chunk.has_value()) {
    return;
  }
  const absl::Time now = absl::Now();
  if (now - copy_point_recorded_ < kCopyPointInterval) return;
  copy_point_recorded_ = now;
  if (absl::Status recorded =
          log_->SetMetadata(CopyPoint{sequence, FormatSegmentStart(done.next)}.Updates());
      !recorded.ok()) {
    spdlog::warn("event=copy_point_not_recorded stream={} error=\"{}\"", options_.stream,
                 EscapeForLog(recorded.message()));
  }
}

void LogReplicator::WaitForHead(absl::Duration timeout) {
  HeadSignal& signal = *head_signal_;
  absl::MutexLock lock(&signal.mu);
  const auto ready = [&signal]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(signal.mu) {
    return signal.moved || signal.stop;
  };
  signal.mu.AwaitWithTimeout(absl::Condition(&ready), timeout);
  signal.moved = false;
}

void LogReplicator::MeasureLag(bool force) {
  const absl::Time now = absl::Now();
  if (!force && now - lag_measured_ < kLagInterval) return;
  lag_measured_ = now;
  SegmentStart next;
  {
    absl::MutexLock lock(&mu_);
    if (!next_.has_value()) return;
    next = *next_;
  }
  uint64_t changes = 0;
  uint64_t bytes = 0;
  absl::Time oldest = absl::InfinitePast();
  absl::Status counted = log_->Visit(
      next.position, kLagCountLimit, ~size_t{0}, [&](const Position&, absl::string_view change) {
        if (changes == 0) {
          v1::Change parsed;
          if (parsed.ParseFromArray(change.data(), static_cast<int>(change.size())) &&
              parsed.has_commit_time()) {
            oldest = FromProtoTimestamp(parsed.commit_time());
          }
        }
        ++changes;
        bytes += change.size();
        return true;
      });
  if (!counted.ok()) return;
  absl::MutexLock lock(&mu_);
  status_.set_lag_changes(changes);
  status_.set_lag_bytes(bytes);
  status_.set_lag_seconds(
      oldest == absl::InfinitePast() ? 0 : std::max(0.0, absl::ToDoubleSeconds(now - oldest)));
}

}  // namespace walfeed
