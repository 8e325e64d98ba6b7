#include "server/source/captured_tables.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace walfeed {
namespace {

constexpr absl::string_view kVersion2 = "tables-v2:";

// Takes one "<n>:<bytes>" field off the front of `*in`.
bool TakeField(absl::string_view* in, std::string* out) {
  const size_t colon = in->find(':');
  size_t length;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(in->substr(0, colon), &length) ||
      in->size() - colon - 1 < length) {
    return false;
  }
  *out = std::string(in->substr(colon + 1, length));
  in->remove_prefix(colon + 1 + length);
  return true;
}

}  // namespace

absl::StatusOr<CapturedTables> CapturedTables::Parse(absl::string_view stored,
                                                     const std::vector<TableName>& published) {
  CapturedTables tables;
  if (stored.empty()) return tables;
  tables.never_recorded_ = false;
  if (!absl::ConsumePrefix(&stored, kVersion2)) {
    // The older form: dotted names, one per line. Matched against the dotted form of what is
    // published now (that form was all it kept).
    absl::flat_hash_set<std::string> dotted;
    for (absl::string_view line : absl::StrSplit(stored, '\n', absl::SkipEmpty())) {
      dotted.insert(std::string(line));
    }
    for (const TableName& name : published) {
      if (dotted.contains(absl::StrCat(name.schema, ".", name.table))) tables.insert(name);
    }
    return tables;
  }
  while (!stored.empty()) {
    TableName name;
    if (!TakeField(&stored, &name.schema) || !TakeField(&stored, &name.table)) {
      return absl::DataLossError(
          "the stored list of captured tables is corrupt; start over with a new --data-dir");
    }
    tables.insert(name);
  }
  return tables;
}

bool CapturedTables::insert(const TableName& name) { return tables_.insert(name).second; }

std::string CapturedTables::Encode() const {
  std::vector<TableName> sorted(tables_.begin(), tables_.end());
  std::sort(sorted.begin(), sorted.end());
  std::string out(kVersion2);
  for (const TableName& name : sorted) {
    absl::StrAppend(&out, name.schema.size(), ":", name.schema, name.table.size(), ":", name.table);
  }
  return out;
}

}  // namespace walfeed
