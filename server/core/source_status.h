// SourceStatus: what the source reports about itself, for the feed description.
// A plain value copied out of the source under its lock; it promises nothing by itself.
#ifndef WALFEED_SERVER_CORE_SOURCE_STATUS_H_
#define WALFEED_SERVER_CORE_SOURCE_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

struct SourceStatus {
  // "ingester" (reads PostgreSQL) or "replica" (copies the log from the replication stream).
  std::string role = "ingester";
  std::string database;
  std::string system_identifier;
  std::string slot;
  std::string publication;
  // Published tables as "schema.table", sorted.
  std::vector<std::string> tables;
  // "starting", "snapshotting", "resyncing", "streaming", "reconnecting" or "stopped".
  std::string state = "starting";
  // The LSN most recently confirmed to PostgreSQL as flushed.
  uint64_t confirmed_flush_lsn = 0;
  // The end of PostgreSQL's WAL as last heard from the server (0 before the first contact): no
  // change can have a commit LSN beyond it.
  uint64_t server_wal_end = 0;
  // The initial snapshot: "running", "done", "skipped" (--snapshot=never, or the log already
  // held changes) or "" before the source knows.
  std::string snapshot_state;
  uint32_t snapshot_tables_total = 0;
  uint32_t snapshot_tables_copied = 0;
  uint64_t snapshot_rows_copied = 0;
  // Since when the source has been failing without making progress in between (its connection
  // or replication refused, say an invalidated slot), with its latest error; InfiniteFuture and
  // "" while it streams or snapshots.
  absl::Time failing_since = absl::InfiniteFuture();
  std::string last_error;
  // The log's newest resynchronisation, also from before a restart.
  std::optional<v1::Resynchronisation> last_resync;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_SOURCE_STATUS_H_
