// The SQL and replication commands that prepare a PostgreSQL database for walfeed and start
// streaming: server checks, publication and slot creation, catalog look-ups, START_REPLICATION.
//
// Each failure says what is wrong and how to fix it (wal_level, privileges, a slot in use).
// They run on a `replication=database` connection, one simple-protocol statement at a time.
#ifndef WALFEED_SERVER_SOURCE_REPLICATION_SETUP_H_
#define WALFEED_SERVER_SOURCE_REPLICATION_SETUP_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/source/pg_connection.h"
#include "server/source/type_catalog.h"

namespace walfeed {

struct SystemIdentity {
  std::string system_identifier;
  uint32_t timeline = 0;
  uint64_t wal_flush_lsn = 0;
  std::string database;
};

absl::StatusOr<SystemIdentity> IdentifySystem(PgConnection& conn);

// Fails unless wal_level is logical.
absl::Status CheckWalLevel(PgConnection& conn);

// Checks that `publication` exists; when it does not, creates it FOR ALL TABLES if
// `create_if_missing`, and fails with the fix otherwise.
absl::Status EnsurePublication(PgConnection& conn, const std::string& publication,
                               bool create_if_missing);

// Whether the slot exists, and whether PostgreSQL still keeps the WAL it needs.
enum class SlotState {
  kMissing,
  kReady,
  // wal_status 'lost': PostgreSQL removed WAL the slot needed (max_slot_wal_keep_size); it can
  // never stream again.
  kInvalidated,
};

// Fails when the slot exists with another plugin, on another database, or is in use by another
// process.
absl::StatusOr<SlotState> CheckSlot(PgConnection& conn, const std::string& slot);

// The server's current WAL insert position.
absl::StatusOr<uint64_t> CurrentWalInsertLsn(PgConnection& conn);

// Writes WAL (non-transactional logical messages with prefix "walfeed.wal_advance") until the
// server's insert position is at least `lsn`; returns how many bytes it wrote. A promoted standby
// continues the WAL from where it had replayed, which may be behind what the old primary had
// already streamed: a new slot must start past that. Fails, writing nothing, when that would take
// more than `max_bytes`.
absl::StatusOr<uint64_t> AdvanceWalTo(PgConnection& conn, uint64_t lsn, uint64_t max_bytes);

// The slot's confirmed_flush_lsn (0 when it has none yet).
absl::StatusOr<uint64_t> SlotConfirmedFlushLsn(PgConnection& conn, const std::string& slot);

// Creates the logical slot with pgoutput when missing (CheckSlot first).
absl::Status EnsureSlot(PgConnection& conn, const std::string& slot);

// A slot created with an exported snapshot: import `snapshot_name` in another connection's
// REPEATABLE READ transaction before this connection runs another command; that transaction
// then sees exactly what committed before `consistent_point`.
struct ExportedSnapshot {
  uint64_t consistent_point = 0;
  std::string snapshot_name;
};
// `temporary`: the slot goes away with the connection (it only serves to export a snapshot).
absl::StatusOr<ExportedSnapshot> CreateSlotWithSnapshot(PgConnection& conn, const std::string& slot,
                                                        bool temporary = false);

absl::Status DropSlot(PgConnection& conn, const std::string& slot);

// The publication's tables as (schema, table) pairs, sorted.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> PublishedRelations(
    PgConnection& conn, const std::string& publication);

// What a column named in --exclude-columns is to its table.
enum class ColumnRole {
  kMissing,  // no such column (or no such table)
  kKey,      // part of the key changes carry: the primary key or the replica identity index
  kOther,
};
absl::StatusOr<ColumnRole> DescribeColumn(PgConnection& conn, const std::string& schema,
                                          const std::string& table, const std::string& column);

// Every type in pg_type, for type names in changes.
absl::Status LoadTypes(PgConnection& conn, TypeCatalog* types);

// START_REPLICATION with pgoutput; afterwards the connection is in COPY BOTH mode.
absl::Status StartReplication(PgConnection& conn, const std::string& slot,
                              const std::string& publication, uint64_t start_lsn);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_REPLICATION_SETUP_H_
