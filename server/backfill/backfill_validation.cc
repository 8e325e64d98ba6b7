#include "server/backfill/backfill_validation.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/table_name.h"
#include "server/source/replication_setup.h"

namespace walfeed {
namespace {

absl::Status CheckCaptured(PgConnection& conn, const TableFilter& filter,
                           const std::string& publication, const TableName& name) {
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> published =
      PublishedRelations(conn, publication);
  if (!published.ok()) return published.status();
  const std::string shown = FormatTableName(name);
  if (std::find(published->begin(), published->end(), std::make_pair(name.schema, name.table)) ==
      published->end()) {
    return absl::NotFoundError(absl::StrCat("table ", shown, " is not in the publication \"",
                                            publication, "\": walfeed does not capture it"));
  }
  if (!filter.IncludesTable(name.schema, name.table)) {
    return absl::NotFoundError(
        absl::StrCat("table ", shown,
                     " is left out by --include-tables / --exclude-tables: walfeed does not "
                     "capture it"));
  }
  return absl::OkStatus();
}

// PostgreSQL plans the chunk query once, read-only: a condition it refuses, or a key value that
// is no value of its column's type, fails here rather than in the running backfill.
absl::Status CheckCondition(PgConnection& conn, const ResolvedBackfill& backfill) {
  if (absl::Status s = conn.Query("BEGIN READ ONLY").status(); !s.ok()) return s;
  absl::StatusOr<QueryRows> planned = conn.Query(absl::StrCat(
      "EXPLAIN SELECT ", backfill.shape.select_list.empty() ? "1" : backfill.shape.select_list,
      " FROM ", backfill.shape.qualified, " WHERE ",
      BackfillCondition(conn, backfill.shape, backfill.range, {})));
  const absl::Status ended = conn.Query("ROLLBACK").status();
  if (!planned.ok()) {
    if (absl::IsUnavailable(planned.status())) return planned.status();
    return absl::InvalidArgumentError(absl::StrCat(
        "PostgreSQL refuses the backfill's range or condition: ", planned.status().message()));
  }
  return ended;
}

// A condition is one expression: a ';' would end the statement it is put in. Refused even inside
// a string literal (chr(59) spells one), since telling literals apart takes PostgreSQL's lexer
// (E'' strings, dollar quoting).
absl::Status CheckOneExpression(const std::string& where) {
  const size_t semicolon = where.find(';');
  if (semicolon == std::string::npos) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the backfill's condition holds a ';' (at character ", semicolon + 1,
      "): it must be one SQL expression, e.g. \"region = 'eu' AND amount > 100\" (write a ';' "
      "inside a string as chr(59))"));
}

}  // namespace

absl::StatusOr<ResolvedBackfill> ResolveBackfill(PgConnection& conn, const TableFilter& filter,
                                                 const std::string& publication,
                                                 const v1::BackfillRequest& request) {
  if (request.table().empty()) {
    return absl::InvalidArgumentError("a backfill needs a table (\"schema.table\")");
  }
  absl::StatusOr<TableName> name = ParseTableName("backfill table", request.table());
  if (!name.ok()) return absl::InvalidArgumentError(name.status().message());
  if (request.chunk_rows() > kMaxBackfillChunkRows) {
    return absl::InvalidArgumentError(absl::StrCat("chunk_rows ", request.chunk_rows(),
                                                   " is above the most, ", kMaxBackfillChunkRows));
  }
  if (absl::Status s = CheckOneExpression(request.where()); !s.ok()) return s;
  if (absl::Status s = CheckCaptured(conn, filter, publication, *name); !s.ok()) return s;
  ResolvedBackfill backfill;
  backfill.schema = name->schema;
  backfill.table = name->table;
  backfill.chunk_rows =
      request.chunk_rows() == 0 ? kDefaultBackfillChunkRows : request.chunk_rows();
  absl::StatusOr<TableShape> shape =
      ReadTableShape(conn, filter, publication, name->schema, name->table);
  if (!shape.ok()) return shape.status();
  backfill.shape = *std::move(shape);
  const std::string shown = FormatTableName(*name);
  if ((backfill.shape.key_kind != v1::Change::PRIMARY_KEY &&
       backfill.shape.key_kind != v1::Change::UNIQUE_INDEX) ||
      backfill.shape.key_order.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "table ", shown,
        " has no primary key or replica identity index among the columns walfeed reads: a "
        "backfill reads rows in key order and places each by its key"));
  }
  for (size_t index : backfill.shape.key_order) {
    backfill.key_columns.push_back(backfill.shape.columns[index]);
  }
  const size_t width = backfill.key_columns.size();
  for (const auto* bound : {&request.from_key(), &request.to_key()}) {
    if (static_cast<size_t>(bound->size()) > width) {
      return absl::InvalidArgumentError(absl::StrCat("a key bound gives ", bound->size(),
                                                     " values but the key of ", shown, " has ",
                                                     width, " column", width == 1 ? "" : "s"));
    }
  }
  backfill.range.from_key.assign(request.from_key().begin(), request.from_key().end());
  backfill.range.to_key.assign(request.to_key().begin(), request.to_key().end());
  backfill.range.where = request.where();
  if (absl::Status s = CheckCondition(conn, backfill); !s.ok()) return s;
  return backfill;
}

}  // namespace walfeed
