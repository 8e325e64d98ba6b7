// Fault points: named places where a crash test makes walfeed die, exactly there, instead of at a
// random moment (etcd's gofail, Redpanda's failure probes). Each point sits between two durable
// steps whose gap a crash could expose; the crash tests (tests/integration/fault_points_test.cc)
// kill walfeed at every point and prove that it loses and duplicates nothing.
//
// WALFEED_FAULT_POINT("name") is compiled in only when WALFEED_FAULT_POINTS is defined (builds
// that include the test suite); elsewhere it is nothing at all. Compiled in, a point is armed by
// the environment at start: WALFEED_FAULT_POINT=<name> or <name>@<n> makes the process write
// "walfeed: fault point <name> reached (<n>), killing the process" to stderr and SIGKILL itself
// the n-th time (the first, unless given) it reaches that point. With ":hold" after it
// (<name>[@<n>]:hold) the thread that reaches it stops there for good instead, after writing
// "... reached (<n>), holding": the process lives on, so a test can watch what it does (and what
// it tells PostgreSQL) while that step never completes. Unarmed, a point costs a call
// and a comparison. The names are listed in kFaultPoints, and a name that is not one of them is
// refused at start (a typo would otherwise test nothing).
#ifndef WALFEED_SERVER_CORE_FAULT_POINT_H_
#define WALFEED_SERVER_CORE_FAULT_POINT_H_

#include "absl/status/status.h"

namespace walfeed {

// Every fault point, with the gap it sits in.
inline constexpr const char* kFaultPoints[] = {
    // The source decoded transactions and has not begun appending them to the log: nothing of
    // them is durable, so nothing of them may be confirmed to PostgreSQL.
    "source.before_append",
    // The source appended transactions durably but has not told PostgreSQL: it sends them again.
    "source.appended_before_confirm",
    // The initial snapshot's slot exists, but the log has not recorded its consistent point.
    "snapshot.slot_created_before_recorded",
    // The initial snapshot is committed (and marked done), the captured tables not yet recorded.
    "snapshot.committed_before_tables_recorded",
    // A compaction pass wrote a batch of deletes, and not the next one or the pass's record.
    "compaction.after_delete_batch",
    // A segment is in JetStream, and the log has not recorded the copy point after it.
    "replication.published_before_copy_point",
    // A backfill chunk's rows and progress are in the log; the next chunk is not read yet.
    "backfill.chunk_appended",
};

// True when WALFEED_FAULT_POINT() is compiled in.
inline constexpr bool kFaultPointsCompiledIn =
#ifdef WALFEED_FAULT_POINTS
    true;
#else
    false;
#endif

// Reads WALFEED_FAULT_POINT; fails with a sentence when it names no point (or when fault points
// are not compiled in). Called once at start, before any point can be reached.
absl::Status ArmFaultPointFromEnvironment();

// Kills the process if `name` is the armed point, reached for the armed time.
void ReachFaultPoint(const char* name);

}  // namespace walfeed

#ifdef WALFEED_FAULT_POINTS
#define WALFEED_FAULT_POINT(name) ::walfeed::ReachFaultPoint(name)
#else
#define WALFEED_FAULT_POINT(name) \
  do {                            \
  } while (false)
#endif

#endif  // WALFEED_SERVER_CORE_FAULT_POINT_H_
