#include "server/core/table_name.h"

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace walfeed {
namespace {

bool IsBareChar(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || c == '_') return true;
  return !first && ((c >= '0' && c <= '9') || c == '$');
}

}  // namespace

absl::StatusOr<std::vector<NamePart>> SplitQualifiedName(absl::string_view what,
                                                         absl::string_view text, size_t max_parts) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", absl::CHexEscape(text), "' is malformed: ", why,
        ". Write schema.table, double-quoting any part that holds a dot, a quote or other "
        "special characters, with \"\" for a quote inside: public.\"my.table\""));
  };
  std::vector<NamePart> parts;
  size_t i = 0;
  for (;;) {
    NamePart part;
    if (i < text.size() && text[i] == '"') {
      part.quoted = true;
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            part.text.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        part.text.push_back(text[i++]);
      }
      if (!closed) return bad("a double quote is not closed");
      if (i < text.size() && text[i] != '.') return bad("a quoted part must end at a dot");
    } else {
      while (i < text.size() && text[i] != '.') {
        if (text[i] == '"') return bad("a double quote appears inside an unquoted part");
        part.text.push_back(text[i++]);
      }
    }
    if (part.text.empty()) return bad("a part is empty");
    parts.push_back(std::move(part));
    if (parts.size() > max_parts) {
      return bad(absl::StrCat("it has more than ", max_parts, " dot-separated parts"));
    }
    if (i == text.size()) break;
    ++i;  // the dot
    if (i == text.size()) return bad("a part is empty");
  }
  return parts;
}

absl::StatusOr<TableName> ParseTableName(absl::string_view what, absl::string_view text) {
  absl::StatusOr<std::vector<NamePart>> parts = SplitQualifiedName(what, text, 2);
  if (!parts.ok()) return parts.status();
  if (parts->size() == 1) return TableName{"public", std::move((*parts)[0].text)};
  return TableName{std::move((*parts)[0].text), std::move((*parts)[1].text)};
}

std::string QuoteIdentifierIfNeeded(absl::string_view identifier) {
  bool bare = !identifier.empty();
  for (size_t i = 0; i < identifier.size() && bare; ++i) bare = IsBareChar(identifier[i], i == 0);
  if (bare) return std::string(identifier);
  std::string out = "\"";
  for (char c : identifier) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string FormatTableName(const TableName& name) {
  return absl::StrCat(QuoteIdentifierIfNeeded(name.schema), ".",
                      QuoteIdentifierIfNeeded(name.table));
}

std::string TableKey(absl::string_view schema, absl::string_view table) {
  std::string key;
  key.reserve(schema.size() + table.size() + 1);
  key.append(schema.data(), schema.size());
  key.push_back('\0');
  key.append(table.data(), table.size());
  return key;
}

std::string EscapeForLog(absl::string_view text) { return absl::CHexEscape(text); }

}  // namespace walfeed
