// LogFollower: a replica's copy of the log (walfeed --follow). It reads the replication stream
// that a publishing walfeed writes (log_replicator.h; each message one segment,
// segment_builder.h) and appends every segment to the local log exactly as the publisher stored
// it: the same positions, the same bytes, the same values out of line, the same log id. The local
// log then serves the same feed with the same cursors.
//
// Promises:
// - A segment is applied only when it continues the local copy exactly: the next stream
//   sequence, the log's id, and a Walfeed-Start equal to where the copy ends. Anything else (a
//   gap left by the stream's limits, another log's segments) stops the follower with a sentence
//   (state "failed"); it never guesses.
// - Crash-safe and exactly once: each segment that ends a transaction is appended together with
//   the stream sequence and the start of the next segment, in one atomic write; a segment that
//   ends inside a transaction is staged (invisible, discarded on reopen) until the segment that
//   ends it, and a restart reads on from the last recorded sequence.
// - Readers of the local log see whole transactions only.
// - The log may already hold what the stream brings (in an ingest group this instance published
//   it when it was the ingester; a bootstrap copied it): changes at or below the log's head are
//   skipped, the rest continues the log.
// - When the stream's limits removed segments the copy lacks, it copies them from another
//   instance of the group (--bootstrap-from, log_bootstrap.h) and continues from the stream's
//   first segment; without --bootstrap-from it stops with a sentence.
// - Failures to reach NATS are retried with backoff for ever, counted, logged and shown in
//   Status() and SourceView() (so the health service turns NOT_SERVING past --unhealthy-after).
// Thread-safe: Status() and SourceView() may be called from any thread.
#ifndef WALFEED_SERVER_REPLICATION_LOG_FOLLOWER_H_
#define WALFEED_SERVER_REPLICATION_LOG_FOLLOWER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/source_status.h"
#include "server/log/change_log.h"
#include "server/replication/jetstream_log.h"
#include "server/replication/replication_options.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class LogFollower {
 public:
  // `log` must outlive the follower.
  LogFollower(ReplicationOptions options, ChangeLog* log);
  ~LogFollower();

  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;

  // Before serving: an empty local log takes the id of the log the stream holds. True once the
  // local log has its id (at once when it holds changes: Start() checks that id against the
  // stream's); false, with a log line saying why, while the stream or its first segment cannot
  // be read yet (the caller tries again); an error when the data directory holds another log.
  absl::StatusOr<bool> AdoptStreamLogId();

  void Start();
  void Stop();
  // Copies until the stream's end as read now, then stops: true once caught up, false when
  // `timeout` passed or following failed first (it is stopped either way).
  bool DrainAndStop(absl::Duration timeout);
  // Compaction keeps the changes from where the copy of the stream ends on (an ingest group's
  // member may hold changes it ingested and the stream lacks).
  std::optional<Position> KeepFrom() const;

  // State "following" (applying segments), "caught_up", "failing" or "failed"; the stream
  // sequence and cursor of the newest applied segment.
  v1::ReplicationStatus Status() const;
  // What the feed shows in place of a PostgreSQL source: state "following", and since when the
  // follower has failed with its latest error.
  SourceStatus SourceView() const;

 private:
  void Run();
  // Reads and applies segments until a read fails or Stop().
  // Sets the status's writer from the stream's last message when this follower already holds it.
  void NoteWriterOfCopiedEnd(JetStreamLog& stream);
  absl::Status Follow(JetStreamLog& stream);
  // Appends one stream message (a segment) to the local log.
  absl::Status Apply(const JetStreamLog::Message& message);
  // The stream begins at `first`, after what the copy holds: copies the rest from another
  // instance and continues from `first`.
  absl::Status Bootstrap(JetStreamLog& stream, uint64_t first);
  // Drops the chunks and records the log already holds.
  void SkipHeld(std::vector<ChangeLog::StoredChunk>* chunks, std::vector<LogRecord>* records) const;
  std::string next_start() const;
  absl::Status StopForGood(const std::string& problem);
  void NoteError(const absl::Status& error);
  void SetState(absl::string_view state);
  bool stopping() const;

  const ReplicationOptions options_;
  ChangeLog* const log_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  // DrainAndStop(): stop once caught up, and whether it was.
  bool drain_ ABSL_GUARDED_BY(mu_) = false;
  bool drained_ ABSL_GUARDED_BY(mu_) = false;
  // next_start_, for other threads.
  std::string status_next_start_ ABSL_GUARDED_BY(mu_);
  absl::Time failing_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  v1::ReplicationStatus status_ ABSL_GUARDED_BY(mu_);
  // Where the copy continues (the follower thread only): the next stream sequence and the
  // Walfeed-Start the next segment must have.
  uint64_t next_sequence_ = 1;
  std::string next_start_;
  // Whether the local log is a copy of a stream (empty, or written by a follower).
  bool copy_ = true;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_REPLICATION_LOG_FOLLOWER_H_
