// GroupMember: one walfeed of an ingest group (--ingest=auto). Several walfeeds share a
// PostgreSQL slot and a JetStream stream; exactly one of them ingests at a time, the others are
// replicas, and when the ingester dies or loses PostgreSQL another takes over.
//
// No consensus of its own: PostgreSQL admits one walsender per slot (a member that cannot stream
// from the slot does not ingest), and JetStream's expected-last-message check lets one writer
// continue the stream (a member that sees another's segment after its own goes back to
// following and never writes again).
//
// Promises:
// - A member takes over only when the slot is free and its copy of the stream is complete: it
//   copies the stream to its end, then starts the source at its log's resume point (PostgreSQL
//   re-sends what it was not told is safe; what the log holds is skipped by position) and the
//   replication at the stream's end.
// - A member that is no longer the ingester (another writer published after it, or the slot
//   stays busy while its source cannot stream) stops its source and replication and follows
//   the stream again, skipping what its log already holds.
// - Whatever the role, the log serves the same feed, with the same positions and log id.
// Thread-safe: the status accessors may be called from any thread.
#ifndef WALFEED_SERVER_GROUP_MEMBER_H_
#define WALFEED_SERVER_GROUP_MEMBER_H_

#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/position.h"
#include "server/core/source_status.h"
#include "server/log/change_log.h"
#include "server/replication/log_follower.h"
#include "server/replication/log_replicator.h"
#include "server/replication/replication_options.h"
#include "server/source/slot_monitor.h"
#include "server/source/source.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class GroupMember {
 public:
  // `log` and `slot` must outlive the member.
  GroupMember(SourceOptions source, ReplicationOptions replication, ChangeLog* log,
              SlotMonitor* slot);
  ~GroupMember();

  GroupMember(const GroupMember&) = delete;
  GroupMember& operator=(const GroupMember&) = delete;

  // Before serving: returns true once the log belongs to the group (it holds changes, took the
  // id of the log the stream holds, or this member took over with an empty log and an empty
  // stream), false when `stop_requested` says so first; an error when the data directory
  // holds another log.
  absl::StatusOr<bool> Join(const std::function<bool()>& stop_requested);
  // Follows (unless Join() took over already) and watches the roles.
  void Start();
  // Stops whatever runs: the source (confirming what it may), the replication, the copy.
  void Stop();

  bool ingesting() const;
  SourceStatus SourceView() const;
  v1::ReplicationStatus ReplicationView() const;
  // What compaction must keep (see LogReplicator::KeepFrom and LogFollower::KeepFrom).
  std::optional<Position> KeepFrom() const;

 private:
  void Run();
  // The slot is free: copies the stream to its end and starts ingesting. False (following
  // again) when the copy or the source's start fails, say because another member was faster.
  bool TryTakeOver();
  // Waits until `source` streams from the slot; an error when it cannot (another member
  // streams from it) or does not within a few seconds.
  absl::Status AwaitStreaming(const Source& source);
  // Back to following.
  void Demote(const std::string& why);
  void StartFollowing();
  // Whether the slot is free (missing, or no walsender streams from it); nullopt when
  // PostgreSQL cannot be asked.
  std::optional<bool> SlotIsFree();
  bool stopping() const;

  const SourceOptions source_options_;
  const ReplicationOptions replication_options_;
  ChangeLog* const log_;
  SlotMonitor* const slot_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Following: follower_; ingesting: source_ and replicator_ (the source's confirm gate). Null
  // for a moment while the role changes.
  std::unique_ptr<LogFollower> follower_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Source> source_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<LogReplicator> replicator_ ABSL_GUARDED_BY(mu_);
  // Consecutive checks that found the slot busy while this ingester's source did not stream.
  int slot_busy_checks_ = 0;  // role thread only
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_GROUP_MEMBER_H_
