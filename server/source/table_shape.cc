#include "server/source/table_shape.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/utf8.h"
#include "server/source/key_kind.h"
#include "server/source/pgoutput_messages.h"
#include "server/source/value_converter.h"

namespace walfeed {
namespace {

// The key's columns in its index's order: the replica identity index, or the primary key; none
// when one of them is not read.
absl::Status ReadKeyOrder(PgConnection& conn, const std::string& relation, TableShape* shape) {
  if (shape->replica_identity != 'd' && shape->replica_identity != 'i') return absl::OkStatus();
  absl::StatusOr<QueryRows> rows =
      conn.Query(absl::StrCat("SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
                              "FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid "
                              "  AND ((c.relreplident = 'i' AND i.indisreplident) OR "
                              "       (c.relreplident = 'd' AND i.indisprimary)) "
                              "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
                              "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
                              "WHERE c.oid = ",
                              relation, "::regclass ORDER BY k.n"));
  if (!rows.ok()) return rows.status();
  absl::flat_hash_map<std::string, size_t> index_of;
  for (size_t c = 0; c < shape->columns.size(); ++c) index_of[shape->columns[c]] = c;
  for (const std::vector<std::string>& row : rows->rows) {
    auto it = index_of.find(row[0]);
    if (it == index_of.end()) {
      // The publication's column list leaves a key column out: rows cannot be read in key order.
      shape->key_order.clear();
      shape->key_sql_types.clear();
      return absl::OkStatus();
    }
    shape->key_order.push_back(it->second);
    shape->key_sql_types.push_back(row[1]);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TableShape> ReadTableShape(PgConnection& conn, const TableFilter& filter,
                                          const std::string& publication, const std::string& schema,
                                          const std::string& table) {
  const std::string relation = conn.QuoteLiteral(
      absl::StrCat(conn.QuoteIdentifier(schema), ".", conn.QuoteIdentifier(table)));
  // The columns pgoutput sends, in order, and which of them it marks as key: the replica
  // identity index (the primary key by default), or every column under REPLICA IDENTITY FULL.
  absl::StatusOr<QueryRows> rows = conn.Query(absl::StrCat(
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
  absl::StatusOr<QueryRows> publication_rows = conn.Query(
      absl::StrCat("SELECT c.relkind, current_setting('server_version_num')::int >= 150000, "
                   "c.oid "
                   "FROM pg_class c WHERE c.oid = ",
                   relation, "::regclass"));
  if (!publication_rows.ok()) return publication_rows.status();
  if (publication_rows->rows.empty()) {
    return absl::NotFoundError(absl::StrCat("table ", relation, " is gone"));
  }
  const std::vector<std::string>& described = publication_rows->rows[0];
  shape.partitioned = described[0] == "p";
  if (!absl::SimpleAtoi(described[2], &shape.relation_id)) {
    return absl::InternalError(absl::StrCat("pg_class gave oid '", described[2], "'"));
  }
  if (described[1] == "t") {
    const std::string which =
        absl::StrCat(" FROM pg_publication_tables WHERE pubname = ", conn.QuoteLiteral(publication),
                     " AND schemaname = ", conn.QuoteLiteral(schema),
                     " AND tablename = ", conn.QuoteLiteral(table));
    absl::StatusOr<QueryRows> columns = conn.Query(absl::StrCat("SELECT unnest(attnames)", which));
    if (!columns.ok()) return columns.status();
    for (const std::vector<std::string>& row : columns->rows) published_columns.insert(row[0]);
    absl::StatusOr<QueryRows> row_filter = conn.Query(absl::StrCat("SELECT rowfilter", which));
    if (!row_filter.ok()) return row_filter.status();
    if (!row_filter->rows.empty() && !row_filter->nulls[0][0]) {
      shape.row_filter = row_filter->rows[0][0];
    }
  }
  for (const std::vector<std::string>& row : rows->rows) {
    uint32_t type_oid = 0;
    if (!absl::SimpleAtoi(row[1], &type_oid)) {
      return absl::InternalError(absl::StrCat("pg_attribute gave type '", row[1], "'"));
    }
    if (filter.ExcludesColumn(schema, table, row[0])) continue;  // never read, never stored
    if (!published_columns.empty() && !published_columns.contains(row[0])) continue;
    shape.columns.push_back(row[0]);
    shape.types.push_back(type_oid);
    shape.is_key.push_back(row[2] == "t");
    shape.replica_identity = row[3].empty() ? 'd' : row[3][0];
  }
  const bool has_key_columns =
      std::find(shape.is_key.begin(), shape.is_key.end(), true) != shape.is_key.end();
  shape.key_kind = KeyKindOf(shape.replica_identity, has_key_columns);
  if (has_key_columns) {
    if (absl::Status s = ReadKeyOrder(conn, relation, &shape); !s.ok()) return s;
  }
  shape.qualified = absl::StrCat(conn.QuoteIdentifier(schema), ".", conn.QuoteIdentifier(table));
  std::vector<std::string> quoted;
  for (const std::string& column : shape.columns) quoted.push_back(conn.QuoteIdentifier(column));
  shape.select_list = absl::StrJoin(quoted, ", ");
  return shape;
}

v1::Change DescribeTable(const std::string& schema, const std::string& table,
                         const TableShape& shape) {
  v1::Change described;
  SetName(schema, described.mutable_schema(), described.mutable_raw_schema());
  SetName(table, described.mutable_table(), described.mutable_raw_table());
  described.set_key_kind(shape.key_kind);
  described.set_relation_id(shape.relation_id);
  return described;
}

v1::Change ReadRowAsChange(QueryRows& rows, size_t r, const TableShape& shape,
                           const TypeCatalog& types, const v1::Change& described) {
  v1::Change change = described;
  change.set_op(v1::Change::READ);
  for (size_t c = 0; c < rows.column_names.size(); ++c) {
    pgoutput::TupleColumn value;
    value.kind =
        rows.nulls[r][c] ? pgoutput::TupleColumn::Kind::kNull : pgoutput::TupleColumn::Kind::kText;
    value.data = std::move(rows.rows[r][c]);
    // The declared type, as pgoutput reports it: the result's own type would be a domain's base
    // type.
    const uint32_t oid = c < shape.types.size() ? shape.types[c] : rows.column_types[c];
    v1::Column* column = change.add_after();
    SetName(rows.column_names[c], column->mutable_name(), column->mutable_raw_name());
    column->set_type(types.NameOf(oid));
    column->set_type_oid(oid);
    SetColumnValue(types.BaseOf(oid), std::move(value), column);
    if (c < shape.is_key.size() && shape.is_key[c]) *change.add_key() = *column;
  }
  return change;
}

}  // namespace walfeed
