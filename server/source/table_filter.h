// TableFilter: which tables and columns reach the log, decided at the source so that excluded
// data is never stored.
//
// Tables are named "schema.table" (a bare name means "public.name") and may use the glob
// wildcards * and ?. A table is captured when it matches an include pattern (or there are
// none) and no exclude pattern. Excluded columns are named "schema.table.column" (or
// "table.column" for public) and are dropped from every change of that table: row images,
// key and the snapshot's SELECT alike. Immutable after Create(); thread-compatible.
#ifndef WALFEED_SERVER_SOURCE_TABLE_FILTER_H_
#define WALFEED_SERVER_SOURCE_TABLE_FILTER_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

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
  std::vector<std::string> include_;
  std::vector<std::string> exclude_;
  absl::flat_hash_set<std::string> excluded_columns_;  // "schema.table.column"
};

// Glob match of `text` against `pattern` with * (any run) and ? (any one byte).
bool GlobMatch(absl::string_view pattern, absl::string_view text);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_TABLE_FILTER_H_
