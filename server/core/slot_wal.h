// SlotWal: where PostgreSQL's WAL ends and what walfeed's replication slot holds of it, as read
// from the server (see SlotMonitor). A plain value for the metrics endpoint.
#ifndef WALFEED_SERVER_CORE_SLOT_WAL_H_
#define WALFEED_SERVER_CORE_SLOT_WAL_H_

#include <cstdint>

namespace walfeed {

struct SlotWal {
  uint64_t current_wal_lsn = 0;      // pg_current_wal_lsn()
  uint64_t restart_lsn = 0;          // the oldest WAL the slot keeps
  uint64_t confirmed_flush_lsn = 0;  // what walfeed confirmed as durable
  bool active = false;               // a walsender streams from the slot now

  // WAL PostgreSQL has written that walfeed has not confirmed.
  uint64_t LagBytes() const {
    return current_wal_lsn > confirmed_flush_lsn ? current_wal_lsn - confirmed_flush_lsn : 0;
  }
  // WAL PostgreSQL keeps on disk for the slot.
  uint64_t RetainedBytes() const {
    return current_wal_lsn > restart_lsn ? current_wal_lsn - restart_lsn : 0;
  }
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_SLOT_WAL_H_
