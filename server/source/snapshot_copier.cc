#include "server/source/snapshot_copier.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/log_format.h"
#include "server/core/utf8.h"
#include "server/source/key_kind.h"
#include "server/source/replication_protocol.h"
#include "server/source/transaction_builder.h"
#include "server/source/value_converter.h"
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

absl::StatusOr<SnapshotCopier::TableShape> SnapshotCopier::ShapeOf(const std::string& schema,
                                                                   const std::string& table) {
  const std::string relation = conn_->QuoteLiteral(
      absl::StrCat(conn_->QuoteIdentifier(schema), ".", conn_->QuoteIdentifier(table)));
  // The columns pgoutput sends, in order, and which of them it marks as key: the replica
  // identity index (the primary key by default), or every column under REPLICA IDENTITY FULL.
  absl::StatusOr<QueryRows> rows = conn_->Query(absl::StrCat(
      "SELECT a.attname, a.atttypid, "
      "  c.relreplident = 'f' OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
      "    AND a.attnum = ANY (i.indkey) AND ((c.relreplident = 'i' AND i.indisreplident) OR "
      "    (c.relreplident = 'd' AND i.indisprimary))), c.relreplident "
      "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
      "WHERE c.oid = ",
      relation,
      "::regclass AND a.attnum > 0 AND NOT a.attisdropped "
      "  AND a.attgenerated = '' ORDER BY a.attnum"));
  if (!rows.ok()) return rows.status();
  TableShape shape;
  // What the publication sends of this table (PostgreSQL 15+): its column list and row filter.
  // A partitioned table published through its root is read whole, partitions included.
  absl::flat_hash_set<std::string> published_columns;
  absl::StatusOr<QueryRows> publication = conn_->Query(
      absl::StrCat("SELECT c.relkind, current_setting('server_version_num')::int >= 150000, "
                   "c.oid "
                   "FROM pg_class c WHERE c.oid = ",
                   relation, "::regclass"));
  if (!publication.ok()) return publication.status();
  if (publication->rows.empty())
    return absl::NotFoundError(absl::StrCat("table ", relation, " is gone"));
  shape.partitioned = publication->rows[0][0] == "p";
  if (!absl::SimpleAtoi(publication->rows[0][2], &shape.relation_id)) {
    return absl::InternalError(absl::StrCat("pg_class gave oid '", publication->rows[0][2], "'"));
  }
  if (publication->rows[0][1] == "t") {
    const std::string which = absl::StrCat(
        " FROM pg_publication_tables WHERE pubname = ", conn_->QuoteLiteral(publication_),
        " AND schemaname = ", conn_->QuoteLiteral(schema),
        " AND tablename = ", conn_->QuoteLiteral(table));
    absl::StatusOr<QueryRows> columns =
        conn_->Query(absl::StrCat("SELECT unnest(attnames)", which));
    if (!columns.ok()) return columns.status();
    for (const std::vector<std::string>& row : columns->rows) published_columns.insert(row[0]);
    absl::StatusOr<QueryRows> filter = conn_->Query(absl::StrCat("SELECT rowfilter", which));
    if (!filter.ok()) return filter.status();
    if (!filter->rows.empty() && !filter->nulls[0][0]) shape.row_filter = filter->rows[0][0];
  }
  for (const std::vector<std::string>& row : rows->rows) {
    uint32_t type_oid = 0;
    if (!absl::SimpleAtoi(row[1], &type_oid)) {
      return absl::InternalError(absl::StrCat("pg_attribute gave type '", row[1], "'"));
    }
    if (filter_->ExcludesColumn(schema, table, row[0])) continue;  // never read, never stored
    if (!published_columns.empty() && !published_columns.contains(row[0])) continue;
    shape.columns.push_back(row[0]);
    shape.types.push_back(type_oid);
    shape.is_key.push_back(row[2] == "t");
    shape.replica_identity = row[3].empty() ? 'd' : row[3][0];
  }
  const bool has_key_columns =
      std::find(shape.is_key.begin(), shape.is_key.end(), true) != shape.is_key.end();
  shape.key_kind = KeyKindOf(shape.replica_identity, has_key_columns);
  return shape;
}

absl::Status SnapshotCopier::CopyTable(const std::string& schema, const std::string& table,
                                       CopiedRowHandler* handler) {
  absl::StatusOr<TableShape> shape = ShapeOf(schema, table);
  if (!shape.ok()) return shape.status();
  v1::Change described;
  SetName(schema, described.mutable_schema(), described.mutable_raw_schema());
  SetName(table, described.mutable_table(), described.mutable_raw_table());
  described.set_key_kind(shape->key_kind);
  described.set_relation_id(shape->relation_id);
  if (absl::Status s = handler->BeginTable(described); !s.ok()) return s;
  const std::string qualified =
      absl::StrCat(conn_->QuoteIdentifier(schema), ".", conn_->QuoteIdentifier(table));
  std::vector<std::string> quoted;
  for (const std::string& column : shape->columns) quoted.push_back(conn_->QuoteIdentifier(column));
  const std::string select_list = quoted.empty() ? "" : absl::StrJoin(quoted, ", ");
  const std::string where =
      shape->row_filter.empty() ? "" : absl::StrCat(" WHERE (", shape->row_filter, ")");
  absl::StatusOr<QueryRows> declared = conn_->Query(
      absl::StrCat("DECLARE walfeed_snapshot NO SCROLL CURSOR FOR SELECT ", select_list, " FROM ",
                   shape->partitioned ? "" : "ONLY ", qualified, where));
  if (!declared.ok()) return declared.status();
  uint64_t table_rows = 0;
  for (;;) {
    if (stop_->HasBeenNotified()) return absl::CancelledError("snapshot stopped");
    absl::StatusOr<QueryRows> batch =
        conn_->Query(absl::StrCat("FETCH FORWARD ", kRowsPerFetch, " FROM walfeed_snapshot"));
    if (!batch.ok()) return batch.status();
    if (batch->rows.empty()) break;
    for (size_t r = 0; r < batch->rows.size(); ++r) {
      v1::Change change = described;
      change.set_op(v1::Change::READ);
      for (size_t c = 0; c < batch->column_names.size(); ++c) {
        pgoutput::TupleColumn value;
        value.kind = batch->nulls[r][c] ? pgoutput::TupleColumn::Kind::kNull
                                        : pgoutput::TupleColumn::Kind::kText;
        value.data = std::move(batch->rows[r][c]);
        // The declared type, as pgoutput reports it: the result's own type would be a
        // domain's base type.
        const uint32_t oid = c < shape->types.size() ? shape->types[c] : batch->column_types[c];
        v1::Column* column = change.add_after();
        SetName(batch->column_names[c], column->mutable_name(), column->mutable_raw_name());
        column->set_type(types_->NameOf(oid));
        column->set_type_oid(oid);
        SetColumnValue(types_->BaseOf(oid), std::move(value), column);
        if (c < shape->is_key.size() && shape->is_key[c]) *change.add_key() = *column;
      }
      if (absl::Status s = handler->Row(std::move(change)); !s.ok()) return s;
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
