// TableShape: what walfeed reads of one captured table when it reads rows itself (the initial
// snapshot, a resynchronisation, a backfill) rather than from the stream: the columns pgoutput
// sends (no dropped or generated columns, none the filter excludes, only the publication's column
// list), the publication's row filter, which columns are the key (primary key, replica identity
// index, or every column under REPLICA IDENTITY FULL) and in what order the key's index holds
// them, so that a row read here is named exactly as the stream names it (ReadRowAsChange).
#ifndef WALFEED_SERVER_SOURCE_TABLE_SHAPE_H_
#define WALFEED_SERVER_SOURCE_TABLE_SHAPE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/source/pg_connection.h"
#include "server/source/table_filter.h"
#include "server/source/type_catalog.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

struct TableShape {
  std::vector<std::string> columns;
  std::vector<uint32_t> types;  // declared type OIDs (a domain, not its base type)
  std::vector<bool> is_key;
  // Indexes into `columns` of the key columns in the order of the key's index (empty under
  // REPLICA IDENTITY FULL or NOTHING).
  std::vector<size_t> key_order;
  // The key columns' types as SQL (format_type), in key order: for casting text key values.
  std::vector<std::string> key_sql_types;
  bool partitioned = false;  // published through its root: read with its partitions
  std::string row_filter;    // the publication's row filter, "" when none
  char replica_identity = 'd';
  v1::Change::KeyKind key_kind = v1::Change::NONE;
  uint32_t relation_id = 0;  // pg_class.oid

  // "schema"."table", quoted for SQL, and the select list of `columns`.
  std::string qualified;
  std::string select_list;
};

// Reads the shape of `schema`.`table` as published by `publication`. NotFound when it is gone.
absl::StatusOr<TableShape> ReadTableShape(PgConnection& conn, const TableFilter& filter,
                                          const std::string& publication, const std::string& schema,
                                          const std::string& table);

// The change that names the table (names, relation_id, key_kind; no op, no row).
v1::Change DescribeTable(const std::string& schema, const std::string& table,
                         const TableShape& shape);

// Row `r` of `rows` (a SELECT of shape.select_list) as a READ change of `described`'s table,
// its key columns copied into `key`. Moves the row's values out of `rows`.
v1::Change ReadRowAsChange(QueryRows& rows, size_t r, const TableShape& shape,
                           const TypeCatalog& types, const v1::Change& described);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_TABLE_SHAPE_H_
