// LogReplicator: the replication room. It reads the change log the way a subscriber does and
// publishes it, segment by segment (segment_builder.h), into a NATS JetStream stream
// (jetstream_log.h). The source knows no NATS and the log knows no NATS: the source only meets a
// ConfirmGate, the compactor a bound, both given by this class.
//
// Promises:
// - Exactly once, in order: on start and after any failed publish it reads where the stream ends
//   (the last message's Walfeed-Next header, from the stream itself) and continues right there,
//   whatever crashed meanwhile: walfeed, a NATS node, the stream's leader, the whole cluster.
//   Every message expects its predecessor at the stream's end, so a second writer cannot
//   interleave: a stream that ends with another log's segments, or past this log's head, stops
//   the replication with a sentence (state "failed") and nothing more is published.
// - ConfirmableLsn() never lets PostgreSQL be told of a change JetStream has not acknowledged;
//   KeepFrom() keeps compaction off every change not yet replicated.
// - Publishing failures are retried with backoff for ever, counted, logged and shown in
//   Status(); the local log buffers meanwhile.
// Thread-safe: Status(), ConfirmableLsn() and KeepFrom() may be called from any thread.
#ifndef WALFEED_SERVER_REPLICATION_LOG_REPLICATOR_H_
#define WALFEED_SERVER_REPLICATION_LOG_REPLICATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/confirm_gate.h"
#include "server/core/position.h"
#include "server/log/change_log.h"
#include "server/replication/replication_options.h"
#include "server/replication/segment_builder.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class JetStreamLog;

class LogReplicator : public ConfirmGate {
 public:
  // `log` must outlive the replicator.
  LogReplicator(ReplicationOptions options, ChangeLog* log);
  ~LogReplicator() override;

  LogReplicator(const LogReplicator&) = delete;
  LogReplicator& operator=(const LogReplicator&) = delete;

  void Start();
  // Ends the publishing thread (a publish under way ends first, within the request timeout).
  void Stop();

  // ConfirmGate: kNoBound when JetStream has everything the log holds; else one past the
  // position of the newest change JetStream has that ends a transaction (every transaction up
  // to it is whole there, and the next one's commit record, or a non-transactional message's
  // record, starts after it); 0 while that is not known.
  uint64_t ConfirmableLsn() const override;
  // The first change JetStream does not have (compaction keeps it and all after it); the log's
  // beginning until the stream's end has been read; no bound once the replication failed for
  // good (the stream is not this log's to continue).
  std::optional<Position> KeepFrom() const;

  v1::ReplicationStatus Status() const;
  // Whether the replication is stuck for good (another writer, a stream ahead of the log).
  bool Failed() const;
  // In an ingest group: another member published after this one did, so it holds the slot now
  // and this one has stopped for good (Failed() too).
  bool Demoted() const;

 private:
  void Run();
  // Reads where the stream ends; fails for good (kFailed) when it is not this log's to continue.
  absl::Status Resume(JetStreamLog& stream);
  // A segment sent and not yet answered: what its acknowledgement makes replicated.
  struct InFlight {
    std::string id;
    SegmentStart next;
    std::optional<Position> last;
    std::optional<Position> last_whole;
  };
  // Publishes what the log holds after the resume point, a window of segments in flight, until
  // a publish fails or Stop().
  absl::Status Publish(JetStreamLog& stream);
  // In an ingest group, before anything else: publishes a segment without changes at the
  // stream's `end`, so that whatever the previous ingester still sends (it may only be paused)
  // no longer continues the stream and it steps down.
  absl::Status Fence(JetStreamLog& stream, const SegmentStart& end);
  // Sends the segment `built` that begins at `start`, expecting the message sent before it (or
  // the end read last) at the stream's end.
  absl::StatusOr<InFlight> Send(JetStreamLog& stream, const SegmentStart& start,
                                const Segment& built);
  // In an ingest group: records where the log stands in the stream (copy_point.h) now and then,
  // so that going back to following reads on from there.
  void RecordCopyPoint(uint64_t sequence, const InFlight& done);
  // Waits until the log's head moves past what is published, or `timeout`, or Stop().
  void WaitForHead(absl::Duration timeout);
  void NoteError(const absl::Status& error);
  // Marks the replication failed for good (state "failed"), logs why and returns it as
  // FailedPrecondition.
  absl::Status StopForGood(const std::string& problem);
  // Publishing makes progress again: no longer failing, no last error.
  void ClearFailure() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetState(absl::string_view state);
  // Refreshes the lag figures (the replication thread; at most every 5 s unless forced).
  void MeasureLag(bool force);

  const ReplicationOptions options_;
  ChangeLog* const log_;
  // Where the thread waits for the head to move; shared with the log's head listener, which
  // outlives the replicator.
  struct HeadSignal;
  const std::shared_ptr<HeadSignal> head_signal_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Where the next segment begins, once the stream's end is known.
  std::optional<SegmentStart> next_ ABSL_GUARDED_BY(mu_);
  // The newest replicated change that ends a transaction, when known.
  std::optional<Position> last_whole_ ABSL_GUARDED_BY(mu_);
  v1::ReplicationStatus status_ ABSL_GUARDED_BY(mu_);
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  bool demoted_ ABSL_GUARDED_BY(mu_) = false;
  // Since when publishing has failed (InfinitePast while it makes progress).
  absl::Time failing_since_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time lag_measured_ = absl::InfinitePast();  // replication thread only
  // The segment size: the configured bound, lowered to fit the servers' max_payload.
  size_t budget_ = 0;  // replication thread only
  // What the next message sent expects at the stream's end: the last sequence read or
  // acknowledged while no message was sent since the end was read, else the last id sent.
  uint64_t expected_sequence_ = 0;  // replication thread only
  std::string expected_id_;         // replication thread only
  // Whether JetStream acknowledged a message of this replicator, and when the copy point was
  // last recorded.
  bool acknowledged_any_ = false;                          // replication thread only
  absl::Time copy_point_recorded_ = absl::InfinitePast();  // replication thread only
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_REPLICATION_LOG_REPLICATOR_H_
