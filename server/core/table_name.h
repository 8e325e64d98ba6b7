// TableName: a table's (schema, table) pair, and the one text form walfeed reads and writes for it.
//
// PostgreSQL identifiers may hold dots, quotes, spaces, newlines and any Unicode, so walfeed never
// carries a qualified name as one dotted string: inside the process a table is this pair. Where a
// person writes or reads a name (flags, Subscribe filters, FeedInfo, errors) it uses PostgreSQL's
// own notation: parts separated by '.', a part in double quotes taken literally with "" standing
// for one quote. Unlike PostgreSQL, an unquoted part keeps its case (it is matched as written), so
// `public.Orders` and `public."Orders"` name the same table. FormatTableName() quotes a part
// whenever it holds anything but lower-case ASCII letters, digits, '_' and '$' (or starts with a
// digit), so its output parses back to the same pair and two pairs never format the same.
// Value types and free functions; thread-compatible.
#ifndef WALFEED_SERVER_CORE_TABLE_NAME_H_
#define WALFEED_SERVER_CORE_TABLE_NAME_H_

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace walfeed {

struct TableName {
  std::string schema;
  std::string table;

  friend bool operator==(const TableName& a, const TableName& b) {
    return a.schema == b.schema && a.table == b.table;
  }
  friend bool operator!=(const TableName& a, const TableName& b) { return !(a == b); }
  friend bool operator<(const TableName& a, const TableName& b) {
    return std::tie(a.schema, a.table) < std::tie(b.schema, b.table);
  }
  template <typename H>
  friend H AbslHashValue(H h, const TableName& name) {
    return H::combine(std::move(h), name.schema, name.table);
  }
};

// One part of a written name: its text, and whether it was double-quoted (a quoted part is
// literal: wildcards in it are plain characters).
struct NamePart {
  std::string text;
  bool quoted = false;
};

// Splits `text` at the dots outside double quotes into 1 to `max_parts` parts, unquoting quoted
// ones. Fails on an empty part, an unclosed quote, a quote inside an unquoted part, or too many
// parts, with a sentence naming `what` and the text.
absl::StatusOr<std::vector<NamePart>> SplitQualifiedName(absl::string_view what,
                                                         absl::string_view text, size_t max_parts);

// "schema.table" or "table" (schema public), in the notation above.
absl::StatusOr<TableName> ParseTableName(absl::string_view what, absl::string_view text);

// The part as PostgreSQL would need it written: bare when safe, else quoted.
std::string QuoteIdentifierIfNeeded(absl::string_view identifier);
std::string FormatTableName(const TableName& name);
inline std::string FormatTableName(absl::string_view schema, absl::string_view table) {
  return FormatTableName(TableName{std::string(schema), std::string(table)});
}

// An unambiguous lookup key for the pair (PostgreSQL identifiers never hold NUL), built without
// quoting: for hash sets on hot paths.
std::string TableKey(absl::string_view schema, absl::string_view table);

// Escapes `text` for a key=value log line: quotes, backslashes and control characters become
// escapes, so a name cannot forge a line or a field.
std::string EscapeForLog(absl::string_view text);

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_TABLE_NAME_H_
