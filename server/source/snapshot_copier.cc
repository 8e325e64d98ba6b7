#include "server/source/snapshot_copier.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/utf8.h"
#include "server/source/table_shape.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

constexpr int kRowsPerFetch = 2000;

}  // namespace

SnapshotCopier::SnapshotCopier(PgConnection* conn, const TypeCatalog* types,
                               const TableFilter* filter, std::string publication,
                               const absl::Notification* stop,
                               std::function<void(const SnapshotProgress&)> on_progress)
    : conn_(conn),
      types_(types),
      filter_(filter),
      publication_(std::move(publication)),
      stop_(stop),
      on_progress_(std::move(on_progress)) {}

absl::Status SnapshotCopier::CopyTables(
    const std::vector<std::pair<std::string, std::string>>& tables, CopiedRowHandler* handler) {
  progress_.tables_total = static_cast<uint32_t>(tables.size());
  on_progress_(progress_);
  for (const auto& [schema, table] : tables) {
    if (absl::Status copied = CopyTable(schema, table, handler); !copied.ok()) return copied;
    ++progress_.tables_copied;
    on_progress_(progress_);
  }
  return absl::OkStatus();
}

absl::Status SnapshotCopier::CopyTable(const std::string& schema, const std::string& table,
                                       CopiedRowHandler* handler) {
  absl::StatusOr<TableShape> shape = ReadTableShape(*conn_, *filter_, publication_, schema, table);
  if (!shape.ok()) return shape.status();
  const v1::Change described = DescribeTable(schema, table, *shape);
  if (absl::Status s = handler->BeginTable(described); !s.ok()) return s;
  const std::string where =
      shape->row_filter.empty() ? "" : absl::StrCat(" WHERE (", shape->row_filter, ")");
  absl::StatusOr<QueryRows> declared = conn_->Query(
      absl::StrCat("DECLARE walfeed_snapshot NO SCROLL CURSOR FOR SELECT ", shape->select_list,
                   " FROM ", shape->partitioned ? "" : "ONLY ", shape->qualified, where));
  if (!declared.ok()) return declared.status();
  uint64_t table_rows = 0;
  for (;;) {
    if (stop_->HasBeenNotified()) return absl::CancelledError("snapshot stopped");
    absl::StatusOr<QueryRows> batch =
        conn_->Query(absl::StrCat("FETCH FORWARD ", kRowsPerFetch, " FROM walfeed_snapshot"));
    if (!batch.ok()) return batch.status();
    if (batch->rows.empty()) break;
    for (size_t r = 0; r < batch->rows.size(); ++r) {
      if (absl::Status s = handler->Row(ReadRowAsChange(*batch, r, *shape, *types_, described));
          !s.ok()) {
        return s;
      }
    }
    table_rows += batch->rows.size();
    progress_.rows_copied += batch->rows.size();
    on_progress_(progress_);
  }
  if (absl::Status closed = conn_->Query("CLOSE walfeed_snapshot").status(); !closed.ok()) {
    return closed;
  }
  if (absl::Status s = handler->EndTable(described); !s.ok()) return s;
  spdlog::info("event=snapshot_table_copied table=\"{}\" rows={} total_rows={}",
               EscapeForLog(FormatTableName(schema, table)), table_rows, progress_.rows_copied);
  return absl::OkStatus();
}

}  // namespace walfeed
