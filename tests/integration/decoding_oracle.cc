#include "tests/integration/decoding_oracle.h"

#include "absl/strings/str_cat.h"
#include "server/core/table_name.h"

namespace walfeed::test {
namespace {

// Reads one identifier of test_decoding's quote_qualified_identifier output at `*at`.
std::string ReadIdentifier(const std::string& line, size_t* at) {
  std::string out;
  if (line[*at] == '"') {
    for (++*at; *at < line.size(); ++*at) {
      if (line[*at] == '"') {
        if (*at + 1 < line.size() && line[*at + 1] == '"') {
          out.push_back('"');
          ++*at;
          continue;
        }
        ++*at;
        break;
      }
      out.push_back(line[*at]);
    }
    return out;
  }
  while (*at < line.size() && line[*at] != '.' && line[*at] != ':') out.push_back(line[(*at)++]);
  return out;
}

}  // namespace

std::vector<std::string> DecodedOrder(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::string> order;
  for (const auto& row : rows) {
    const std::string& line = row[0];
    if (line.rfind("table ", 0) == 0) {
      size_t at = 6;
      const std::string schema = ReadIdentifier(line, &at);
      ++at;  // '.'
      const std::string table = ReadIdentifier(line, &at);
      at += 2;  // ": "
      const std::string op = line.substr(at, line.find(':', at) - at);
      order.push_back(absl::StrCat(op, " ", FormatTableName(schema, table)));
    } else if (line.rfind("message:", 0) == 0) {
      const size_t prefix = line.find("prefix: ") + 8;
      order.push_back(
          absl::StrCat("MESSAGE ", line.substr(prefix, line.find(',', prefix) - prefix)));
    }
  }
  return order;
}

std::vector<std::string> FeedOrder(const std::vector<v1::Change>& feed) {
  std::vector<std::string> order;
  for (const v1::Change& change : feed) {
    if (change.op() == v1::Change::READ) continue;
    if (change.op() == v1::Change::MESSAGE) {
      order.push_back(absl::StrCat("MESSAGE ", change.message().prefix()));
    } else {
      order.push_back(absl::StrCat(v1::Change::Op_Name(change.op()), " ",
                                   FormatTableName(change.schema(), change.table())));
    }
  }
  return order;
}

}  // namespace walfeed::test
