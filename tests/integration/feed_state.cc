#include "tests/integration/feed_state.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "server/core/table_name.h"

namespace walfeed::test {
namespace {

// The row's "id": from the key, or (a table without one) from the row itself.
const v1::Column* IdColumn(const google::protobuf::RepeatedPtrField<v1::Column>& columns) {
  for (const v1::Column& column : columns) {
    if (column.name() == "id") return &column;
  }
  return nullptr;
}

std::string IdOf(const v1::Change& change) {
  for (const auto* columns : {&change.key(), &change.after(), &change.before()}) {
    if (const v1::Column* id = IdColumn(*columns)) return TextForm(*id);
  }
  return "<no id>";
}

}  // namespace

std::string TextForm(const v1::Column& column) {
  switch (column.value_case()) {
    case v1::Column::kNull:
      return "<null>";
    case v1::Column::kInt:
      return absl::StrCat(column.int_());
    case v1::Column::kBool:
      return column.bool_() ? "true" : "false";
    case v1::Column::kNumeric:
      return column.numeric();
    case v1::Column::kBytes:
      return absl::StrCat("\\x", absl::BytesToHexString(column.bytes()));
    case v1::Column::kJson:
      return column.json();
    case v1::Column::kText:
      return column.text();
    case v1::Column::kUnchangedToast:
      return "<unchanged toast value walfeed did not fill>";
    default:
      return absl::StrCat("<", column.type(), " value case ", column.value_case(), ">");
  }
}

void ApplyChange(const v1::Change& change, State* state) {
  if (change.op() == v1::Change::MESSAGE) return;
  TableState& table = (*state)[change.relation_id()];
  if (change.op() == v1::Change::TRUNCATE) {
    table.clear();
    return;
  }
  const std::string id = IdOf(change);
  if (change.op() == v1::Change::DELETE) {
    table.erase(id);
    return;
  }
  Row row;
  const v1::Column* old_id = IdColumn(change.before());
  if (change.op() == v1::Change::UPDATE && old_id != nullptr) {
    if (auto old = table.find(TextForm(*old_id)); old != table.end()) {
      row = old->second;
      table.erase(old);
    }
  } else if (auto it = table.find(id); it != table.end()) {
    row = it->second;
  }
  Row next;
  for (const v1::Column& column : change.after()) {
    if (column.value_case() == v1::Column::kUnchangedToast && row.count(column.name())) {
      next[column.name()] = row[column.name()];
    } else {
      next[column.name()] = TextForm(column);
    }
  }
  table[id] = std::move(next);
}

std::string QuoteIdentifier(const std::string& identifier) {
  return absl::StrCat("\"", absl::StrReplaceAll(identifier, {{"\"", "\"\""}}), "\"");
}

std::string QuoteLiteral(const std::string& text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "''"}}), "'");
}

void ExpectFeedMatchesSelect(const std::vector<v1::Change>& feed, const QueryFunction& query) {
  State state;
  for (const v1::Change& change : feed) ApplyChange(change, &state);
  const auto tables = query(
      "SELECT n.nspname, c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = "
      "c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', "
      "'information_schema')");
  for (const auto& table : tables) {
    const std::string qualified =
        absl::StrCat(QuoteIdentifier(table[0]), ".", QuoteIdentifier(table[1]));
    SCOPED_TRACE(FormatTableName(table[0], table[1]));
    const auto columns = query(
        absl::StrCat("SELECT attname FROM pg_attribute WHERE attrelid = ", QuoteLiteral(qualified),
                     "::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"));
    std::vector<std::string> casts;
    for (const auto& column : columns)
      casts.push_back(absl::StrCat(QuoteIdentifier(column[0]), "::text"));
    TableState expected;
    for (const auto& row :
         query(absl::StrCat("SELECT ", absl::StrJoin(casts, ", "), " FROM ", qualified))) {
      Row values;
      for (size_t c = 0; c < columns.size(); ++c) values[columns[c][0]] = row[c];
      expected[values["id"]] = std::move(values);
    }
    TableState& actual = state[static_cast<uint32_t>(std::stoul(table[2]))];
    // A column added later never reached rows no change touched since: it is NULL there.
    for (auto& [id, row] : actual) {
      for (const auto& column : columns) row.emplace(column[0], "<null>");
      for (auto it = row.begin(); it != row.end();) {
        const bool current = std::any_of(columns.begin(), columns.end(),
                                         [&](const auto& c) { return c[0] == it->first; });
        it = current ? std::next(it) : row.erase(it);
      }
    }
    ASSERT_EQ(actual.size(), expected.size()) << "rows";
    for (const auto& [id, row] : expected) {
      ASSERT_TRUE(actual.count(id)) << "row id " << id << " is missing from the feed's state";
      for (const auto& [column, value] : row) {
        ASSERT_EQ(actual[id][column], value) << "row id " << id << " column " << column;
      }
    }
  }
}

}  // namespace walfeed::test
