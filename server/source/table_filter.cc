#include "server/source/table_filter.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace walfeed {
namespace {

// "schema.table" from a pattern or name, adding "public." to a bare name.
absl::StatusOr<std::string> QualifiedTable(absl::string_view flag, absl::string_view entry) {
  const std::vector<absl::string_view> parts = absl::StrSplit(entry, '.');
  if (entry.empty() || parts.size() > 2 || parts.front().empty() || parts.back().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " entry '", entry,
                     "' must be 'schema.table' or 'table' (wildcards * and ? allowed)"));
  }
  return parts.size() == 1 ? absl::StrCat("public.", entry) : std::string(entry);
}

}  // namespace

bool GlobMatch(absl::string_view pattern, absl::string_view text) {
  size_t p = 0, t = 0;
  size_t star = absl::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

absl::StatusOr<TableFilter> TableFilter::Create(const std::vector<std::string>& include_tables,
                                                const std::vector<std::string>& exclude_tables,
                                                const std::vector<std::string>& exclude_columns) {
  TableFilter filter;
  for (const std::string& entry : include_tables) {
    absl::StatusOr<std::string> pattern = QualifiedTable("--tables", entry);
    if (!pattern.ok()) return pattern.status();
    filter.include_.push_back(*pattern);
  }
  for (const std::string& entry : exclude_tables) {
    absl::StatusOr<std::string> pattern = QualifiedTable("--exclude-tables", entry);
    if (!pattern.ok()) return pattern.status();
    filter.exclude_.push_back(*pattern);
  }
  for (const std::string& entry : exclude_columns) {
    std::vector<std::string> parts = absl::StrSplit(entry, '.');
    if (parts.size() == 2) parts.insert(parts.begin(), "public");
    if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty() ||
        entry.find_first_of("*?") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--exclude-columns entry '", entry,
                       "' must be 'schema.table.column' or 'table.column', without wildcards"));
    }
    filter.excluded_columns_.insert(absl::StrCat(parts[0], ".", parts[1], ".", parts[2]));
  }
  return filter;
}

bool TableFilter::IncludesTable(absl::string_view schema, absl::string_view table) const {
  const std::string name = absl::StrCat(schema, ".", table);
  bool included = include_.empty();
  for (const std::string& pattern : include_) {
    if (GlobMatch(pattern, name)) {
      included = true;
      break;
    }
  }
  if (!included) return false;
  for (const std::string& pattern : exclude_) {
    if (GlobMatch(pattern, name)) return false;
  }
  return true;
}

bool TableFilter::ExcludesColumn(absl::string_view schema, absl::string_view table,
                                 absl::string_view column) const {
  return !excluded_columns_.empty() &&
         excluded_columns_.contains(absl::StrCat(schema, ".", table, ".", column));
}

std::vector<std::vector<std::string>> TableFilter::ExcludedColumns() const {
  std::vector<std::vector<std::string>> out;
  for (const std::string& entry : excluded_columns_) out.push_back(absl::StrSplit(entry, '.'));
  return out;
}

std::vector<std::string> TableFilter::ExcludedColumnsOf(absl::string_view schema,
                                                        absl::string_view table) const {
  std::vector<std::string> out;
  const std::string prefix = absl::StrCat(schema, ".", table, ".");
  for (const std::string& entry : excluded_columns_) {
    if (absl::StartsWith(entry, prefix)) out.push_back(entry.substr(prefix.size()));
  }
  return out;
}

}  // namespace walfeed
