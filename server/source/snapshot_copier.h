// SnapshotCopier: reads the rows that exist in the published tables, inside a transaction that
// imported a slot's exported snapshot, and hands them to a CopiedRowHandler: the initial snapshot
// stages each as a READ change (ReadRowStager), a resynchronisation compares it with the log.
//
// Rows are fetched through a cursor a few thousand at a time and handed on as they come, so
// memory stays constant whatever the table size. Columns are the ones pgoutput sends (no dropped
// or generated columns, none the filter excludes, only the publication's column list) and rows
// (the publication's row filter; a partitioned table published through its root whole) with the
// same key columns (primary key, replica identity index, or every column under REPLICA IDENTITY
// FULL). Not thread-safe; progress is reported through a callback.
#ifndef WALFEED_SERVER_SOURCE_SNAPSHOT_COPIER_H_
#define WALFEED_SERVER_SOURCE_SNAPSHOT_COPIER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "server/core/position.h"
#include "server/source/change_stager.h"
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

// What becomes of the rows a copy reads.
class CopiedRowHandler {
 public:
  virtual ~CopiedRowHandler() = default;
  // Around each table's rows. `table` carries its names, relation_id and key_kind (no op).
  virtual absl::Status BeginTable(const v1::Change& table) = 0;
  virtual absl::Status EndTable(const v1::Change& table) = 0;
  // One row: a READ change with names, relation_id, key_kind, key and after, no position.
  virtual absl::Status Row(v1::Change row) = 0;
};

// The initial snapshot's handler: every row is staged as it is.
class ReadRowStager final : public CopiedRowHandler {
 public:
  explicit ReadRowStager(ChangeStager* stager) : stager_(stager) {}
  absl::Status BeginTable(const v1::Change&) override { return absl::OkStatus(); }
  absl::Status EndTable(const v1::Change&) override { return absl::OkStatus(); }
  absl::Status Row(v1::Change row) override { return stager_->Add(std::move(row)); }

 private:
  ChangeStager* const stager_;
};

class SnapshotCopier {
 public:
  // `conn` is in the transaction that imported the snapshot. Everything must outlive the copier.
  SnapshotCopier(PgConnection* conn, const TypeCatalog* types, const TableFilter* filter,
                 std::string publication, const absl::Notification* stop,
                 std::function<void(const SnapshotProgress&)> on_progress);

  // Reads every table (schema, table) into `handler`, in order. Cancelled when `stop` is
  // notified.
  absl::Status CopyTables(const std::vector<std::pair<std::string, std::string>>& tables,
                          CopiedRowHandler* handler);

 private:
  absl::Status CopyTable(const std::string& schema, const std::string& table,
                         CopiedRowHandler* handler);

  PgConnection* const conn_;
  const TypeCatalog* const types_;
  const TableFilter* const filter_;
  const std::string publication_;
  const absl::Notification* const stop_;
  const std::function<void(const SnapshotProgress&)> on_progress_;
  SnapshotProgress progress_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_SNAPSHOT_COPIER_H_
