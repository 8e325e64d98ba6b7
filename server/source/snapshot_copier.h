// SnapshotCopier: reads the rows that already exist in the published tables, inside a
// transaction that imported the slot's exported snapshot, and stages them in the sink as READ
// changes.
//
// Rows are fetched through a cursor a few thousand at a time and staged as they come, so memory
// stays constant whatever the table size. They take positions `first`, (first.lsn,
// first.seq + 1), ..., where `first` sorts before every change streamed after the snapshot (see
// FirstSyntheticPosition for rows read mid-stream); the last row is marked
// last_in_transaction. Staged rows stay invisible until the caller commits them, so an
// interrupted copy never looks complete. Columns are the ones pgoutput sends (no dropped or
// generated columns, none the filter excludes, only the publication's column list) and rows
// (the publication's row filter; a partitioned table published through its root whole) with
// the same key columns (primary key, replica identity index, or every column under REPLICA
// IDENTITY FULL). Not thread-safe; progress is
// reported through a callback.
#ifndef WALFEED_SERVER_SOURCE_SNAPSHOT_COPIER_H_
#define WALFEED_SERVER_SOURCE_SNAPSHOT_COPIER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "server/core/position.h"
#include "server/core/transaction_sink.h"
#include "server/source/pg_connection.h"
#include "server/source/table_filter.h"
#include "server/source/type_catalog.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

struct SnapshotProgress {
  uint32_t tables_total = 0;
  uint32_t tables_copied = 0;
  uint64_t rows_copied = 0;
};

class SnapshotCopier {
 public:
  // `conn` is in the transaction that imported the snapshot. Everything must outlive the copier.
  SnapshotCopier(PgConnection* conn, TransactionSink* sink, const TypeCatalog* types,
                 const TableFilter* filter, std::string publication, Position first,
                 const absl::Notification* stop,
                 std::function<void(const SnapshotProgress&)> on_progress);

  // Copies every table ("schema.table"); returns the position of the last staged row, or a zero
  // position when the tables are empty. Cancelled when `stop` is notified.
  absl::StatusOr<Position> CopyTables(
      const std::vector<std::pair<std::string, std::string>>& tables);

 private:
  struct TableShape {
    std::vector<std::string> columns;
    std::vector<uint32_t> types;  // declared type OIDs (a domain, not its base type)
    std::vector<bool> is_key;
    bool partitioned = false;  // published through its root: read with its partitions
    std::string row_filter;    // the publication's row filter, "" when none
    char replica_identity = 'd';
    v1::Change::KeyKind key_kind = v1::Change::NONE;
    uint32_t relation_id = 0;  // pg_class.oid
  };

  absl::StatusOr<TableShape> ShapeOf(const std::string& schema, const std::string& table);
  absl::Status CopyTable(const std::string& schema, const std::string& table);
  // Stages `pending_` except its last row, which waits to learn whether it ends the snapshot.
  absl::Status StagePending(bool final);

  PgConnection* const conn_;
  TransactionSink* const sink_;
  const TypeCatalog* const types_;
  const TableFilter* const filter_;
  const std::string publication_;
  const Position first_;
  const absl::Notification* const stop_;
  const std::function<void(const SnapshotProgress&)> on_progress_;
  const std::string lsn_text_;
  google::protobuf::Timestamp read_time_;

  SnapshotProgress progress_;
  std::vector<v1::Change> pending_;
  uint32_t next_seq_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_SNAPSHOT_COPIER_H_
