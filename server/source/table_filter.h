// TableFilter: which tables and columns reach the log, decided at the source so that excluded
// data is never stored.
//
// Tables are named "schema.table" (a bare name means "public.name") in PostgreSQL's notation (see
// table_name.h: a part in double quotes may hold dots and is taken literally), and unquoted parts
// may use the glob wildcards * and ?. Schema and table are matched each on its own, so a dot in a
// name never shifts where the schema ends. A table is captured when it matches an include pattern
// (or there are none) and no exclude pattern. Excluded columns are named "schema.table.column" (or
// "table.column" for public), quoted the same way, and are dropped from every change of that
// table: row images, key and the snapshot's SELECT alike. Immutable after Create();
// thread-compatible.
#ifndef WALFEED_SERVER_SOURCE_TABLE_FILTER_H_
#define WALFEED_SERVER_SOURCE_TABLE_FILTER_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/table_name.h"

namespace walfeed {

class TableFilter {
 public:
  // Everything passes.
  TableFilter() = default;

  // Fails with InvalidArgument naming the bad entry.
  static absl::StatusOr<TableFilter> Create(const std::vector<std::string>& include_tables,
                                            const std::vector<std::string>& exclude_tables,
                                            const std::vector<std::string>& exclude_columns);

  bool IncludesTable(absl::string_view schema, absl::string_view table) const;
  bool ExcludesColumn(absl::string_view schema, absl::string_view table,
                      absl::string_view column) const;
  bool excludes_columns() const { return !excluded_columns_.empty(); }

  // The excluded columns as (schema, table, column), for checking that they exist.
  std::vector<std::vector<std::string>> ExcludedColumns() const;
  // The excluded column names of one table.
  std::vector<std::string> ExcludedColumnsOf(absl::string_view schema,
                                             absl::string_view table) const;

 private:
  struct TablePattern {
    NamePart schema;
    NamePart table;
    bool Matches(absl::string_view schema_name, absl::string_view table_name) const;
  };
  std::vector<TablePattern> include_;
  std::vector<TablePattern> exclude_;
  // TableKey(schema, table) + '\0' + column: unambiguous, as no identifier holds NUL.
  absl::flat_hash_set<std::string> excluded_columns_;
  std::vector<std::vector<std::string>> excluded_column_list_;  // (schema, table, column)
};

// Glob match of `text` against `pattern` with * (any run) and ? (any one byte).
bool GlobMatch(absl::string_view pattern, absl::string_view text);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_TABLE_FILTER_H_
