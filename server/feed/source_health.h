// Whether the source makes progress, as health checks and FeedInfo report it. A source that has
// been failing (its connection or replication refused: PostgreSQL down, the slot dropped or
// invalidated) for longer than a grace period is a problem an orchestrator must see: consumers
// get nothing new, yet no error. Shorter failures (a restart, a cut connection) are not.
#ifndef WALFEED_SERVER_FEED_SOURCE_HEALTH_H_
#define WALFEED_SERVER_FEED_SOURCE_HEALTH_H_

#include <string>

#include "absl/time/time.h"
#include "server/core/source_status.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

// Why the source cannot make progress ("no progress for 2m30s: <its last error>"), "" when it
// makes progress or has been failing for less than `grace`.
std::string SourceProblem(const SourceStatus& status, absl::Duration grace, absl::Time now);

// Under --confirm-after=replicated, PostgreSQL is told nothing new while the replication into
// JetStream makes no progress, and its WAL grows: why ("replication into JetStream stream S
// makes no progress for 1m30s: <its last error>"), "" when it makes progress, has been failing
// for less than `grace`, or runs under --confirm-after=local.
std::string ReplicationProblem(const v1::ReplicationStatus& status, absl::Duration grace);

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_SOURCE_HEALTH_H_
