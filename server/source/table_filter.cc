#include "server/source/table_filter.h"

#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace walfeed {
namespace {

constexpr absl::string_view kTablesForm =
    "'schema.table' or 'table' (wildcards * and ? allowed outside double quotes)";

absl::StatusOr<std::vector<NamePart>> SplitEntry(absl::string_view flag, absl::string_view entry,
                                                 size_t max_parts) {
  return SplitQualifiedName(absl::StrCat(flag, " entry"), entry, max_parts);
}

std::string ColumnKey(absl::string_view schema, absl::string_view table, absl::string_view column) {
  std::string key = TableKey(schema, table);
  key.push_back('\0');
  key.append(column.data(), column.size());
  return key;
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

bool TableFilter::TablePattern::Matches(absl::string_view schema_name,
                                        absl::string_view table_name) const {
  const auto part_matches = [](const NamePart& part, absl::string_view text) {
    return part.quoted ? part.text == text : GlobMatch(part.text, text);
  };
  return part_matches(schema, schema_name) && part_matches(table, table_name);
}

absl::StatusOr<TableFilter> TableFilter::Create(const std::vector<std::string>& include_tables,
                                                const std::vector<std::string>& exclude_tables,
                                                const std::vector<std::string>& exclude_columns) {
  TableFilter filter;
  for (const auto& [flag, entries, out] :
       {std::tuple{"--tables", &include_tables, &filter.include_},
        std::tuple{"--exclude-tables", &exclude_tables, &filter.exclude_}}) {
    for (const std::string& entry : *entries) {
      absl::StatusOr<std::vector<NamePart>> parts = SplitEntry(flag, entry, 2);
      if (!parts.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(parts.status().message(), "; each entry is ", kTablesForm));
      }
      if (parts->size() == 1) parts->insert(parts->begin(), NamePart{"public", true});
      out->push_back(TablePattern{(*parts)[0], (*parts)[1]});
    }
  }
  for (const std::string& entry : exclude_columns) {
    absl::StatusOr<std::vector<NamePart>> parts = SplitEntry("--exclude-columns", entry, 3);
    if (!parts.ok()) return parts.status();
    if (parts->size() == 2) parts->insert(parts->begin(), NamePart{"public", true});
    bool wildcard = false;
    for (const NamePart& part : *parts) {
      wildcard = wildcard || (!part.quoted && part.text.find_first_of("*?") != std::string::npos);
    }
    if (parts->size() != 3 || wildcard) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--exclude-columns entry '", entry,
          "' must be 'schema.table.column' or 'table.column', without wildcards (double-quote a "
          "part that holds a dot: public.t.\"a.b\")"));
    }
    filter.excluded_columns_.insert(
        ColumnKey((*parts)[0].text, (*parts)[1].text, (*parts)[2].text));
    filter.excluded_column_list_.push_back({(*parts)[0].text, (*parts)[1].text, (*parts)[2].text});
  }
  return filter;
}

bool TableFilter::IncludesTable(absl::string_view schema, absl::string_view table) const {
  bool included = include_.empty();
  for (const TablePattern& pattern : include_) {
    if (pattern.Matches(schema, table)) {
      included = true;
      break;
    }
  }
  if (!included) return false;
  for (const TablePattern& pattern : exclude_) {
    if (pattern.Matches(schema, table)) return false;
  }
  return true;
}

bool TableFilter::ExcludesColumn(absl::string_view schema, absl::string_view table,
                                 absl::string_view column) const {
  return !excluded_columns_.empty() && excluded_columns_.contains(ColumnKey(schema, table, column));
}

std::vector<std::vector<std::string>> TableFilter::ExcludedColumns() const {
  return excluded_column_list_;
}

std::vector<std::string> TableFilter::ExcludedColumnsOf(absl::string_view schema,
                                                        absl::string_view table) const {
  std::vector<std::string> out;
  for (const std::vector<std::string>& entry : excluded_column_list_) {
    if (entry[0] == schema && entry[1] == table) out.push_back(entry[2]);
  }
  return out;
}

}  // namespace walfeed
