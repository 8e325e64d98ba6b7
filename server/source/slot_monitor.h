// SlotMonitor: asks PostgreSQL, on a plain (non-replication) connection of its own, where its
// WAL ends and what walfeed's slot holds (pg_replication_slots), for the metrics endpoint and
// an ingest group's members (whether the slot is free). The
// connection is opened on first use and again after any failure; a failure is an error status,
// never a crash, and never touches the replication stream. Thread-safe.
#ifndef WALFEED_SERVER_SOURCE_SLOT_MONITOR_H_
#define WALFEED_SERVER_SOURCE_SLOT_MONITOR_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/slot_wal.h"
#include "server/source/pg_connection.h"

namespace walfeed {

class SlotMonitor {
 public:
  SlotMonitor(std::string conninfo, std::string slot)
      : conninfo_(std::move(conninfo)), slot_(std::move(slot)) {}

  // NotFound when the slot does not exist (yet); Unavailable when PostgreSQL cannot be asked.
  absl::StatusOr<SlotWal> Read();

 private:
  const std::string conninfo_;
  const std::string slot_;
  absl::Mutex mu_;
  std::unique_ptr<PgConnection> connection_ ABSL_GUARDED_BY(mu_);
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_SLOT_MONITOR_H_
