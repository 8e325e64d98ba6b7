#include "client/change_text_format.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "server/core/proto_time.h"

namespace walfeed {
namespace {

std::string Quoted(const std::string& text) {
  return absl::StrCat("\"", absl::CEscape(text), "\"");
}

std::string Columns(const google::protobuf::RepeatedPtrField<v1::Column>& columns) {
  return absl::StrJoin(columns, " ", [](std::string* out, const v1::Column& column) {
    absl::StrAppend(out, column.name(), "=", FormatValueAsText(column));
  });
}

}  // namespace

std::string FormatValueAsText(const v1::Column& column) {
  switch (column.value_case()) {
    case v1::Column::kNull:
      return "NULL";
    case v1::Column::kUnchangedToast:
      return "<unchanged>";
    case v1::Column::kInt:
      return absl::StrCat(column.int_());
    case v1::Column::kFloat:
      return absl::StrFormat("%.17g", column.float_());
    case v1::Column::kBool:
      return column.bool_() ? "true" : "false";
    case v1::Column::kNumeric:
      return column.numeric();
    case v1::Column::kBytes:
      return absl::StrCat("\\x", absl::BytesToHexString(column.bytes()));
    case v1::Column::kJson:
      return column.json();
    case v1::Column::kTimestamp: {
      const absl::Time time = FromProtoTimestamp(column.timestamp());
      return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
    }
    case v1::Column::kDate:
      return column.date();
    case v1::Column::kUuid:
      return column.uuid();
    case v1::Column::kText:
      return Quoted(column.text());
    case v1::Column::kRawText:
      // Not UTF-8: the bytes, escaped, so the line stays printable and exact.
      return absl::StrCat("raw\"", absl::CHexEscape(column.raw_text()), "\"");
    case v1::Column::kLarge:
      return absl::StrCat("<large ", column.large().size(), " bytes at ", column.large().ref(),
                          ">");
    case v1::Column::VALUE_NOT_SET:
      break;
  }
  return "?";
}

std::string FormatChangeAsText(const v1::Change& change) {
  std::string line = absl::StrCat(change.cursor(), " ", v1::Change::Op_Name(change.op()),
                                  change.resync() ? " (resync)" : "");
  if (change.op() == v1::Change::MESSAGE) {
    absl::StrAppend(&line, " prefix=", Quoted(change.message().prefix()), " content=",
                    change.message().has_large_content()
                        ? absl::StrCat("<large ", change.message().large_content().size(),
                                       " bytes at ", change.message().large_content().ref(), ">")
                        : Quoted(change.message().content()));
    return line;
  }
  absl::StrAppend(&line, " ", change.schema(), ".", change.table());
  if (change.key_size() > 0) absl::StrAppend(&line, " [", Columns(change.key()), "]");
  if (change.after_size() > 0) absl::StrAppend(&line, " ", Columns(change.after()));
  return line;
}

}  // namespace walfeed
