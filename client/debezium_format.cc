#include "client/debezium_format.h"

#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/core/proto_time.h"

namespace walfeed {
namespace {

// A JSON string literal: quotes, backslashes and control characters escaped; other bytes as
// they are (walfeed's text is UTF-8).
std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

std::string Value(const v1::Column& column) {
  switch (column.value_case()) {
    case v1::Column::kNull:
    case v1::Column::VALUE_NOT_SET:
      return "null";
    case v1::Column::kUnchangedToast:
      return JsonString("__debezium_unavailable_value");
    case v1::Column::kInt:
      return absl::StrCat(column.int_());
    case v1::Column::kFloat:
      if (std::isnan(column.float_())) return JsonString("NaN");
      if (std::isinf(column.float_())) {
        return JsonString(column.float_() > 0 ? "Infinity" : "-Infinity");
      }
      return absl::StrFormat("%.17g", column.float_());
    case v1::Column::kBool:
      return column.bool_() ? "true" : "false";
    case v1::Column::kNumeric:
      return JsonString(column.numeric());
    case v1::Column::kBytes:
      return JsonString(absl::Base64Escape(column.bytes()));
    case v1::Column::kJson:
      return JsonString(column.json());
    case v1::Column::kTimestamp: {
      const absl::Time time = FromProtoTimestamp(column.timestamp());
      if (column.type() == "timestamp") {
        return absl::StrCat(absl::ToUnixMicros(time));  // io.debezium.time.MicroTimestamp
      }
      return JsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone()));
    }
    case v1::Column::kDate: {
      absl::CivilDay day;
      if (absl::ParseCivilTime(column.date(), &day)) {
        return absl::StrCat(day - absl::CivilDay(1970, 1, 1));  // io.debezium.time.Date
      }
      return JsonString(column.date());
    }
    case v1::Column::kUuid:
      return JsonString(column.uuid());
    case v1::Column::kText:
      return JsonString(column.text());
    case v1::Column::kRawText:
      // JSON holds only UTF-8: bytes that are not travel base64-encoded, as bytea does.
      return JsonString(absl::Base64Escape(column.raw_text()));
    case v1::Column::kLarge:
      // Not fetched (walfeedctl --large-values ref): like Debezium's unavailable-value
      // placeholder, a string that names the value's reference.
      return JsonString(absl::StrCat("__walfeed_large_value:", column.large().ref()));
  }
  return "null";
}

std::string Row(const google::protobuf::RepeatedPtrField<v1::Column>& columns) {
  std::string out = "{";
  for (int i = 0; i < columns.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", JsonString(columns[i].name()), ":", Value(columns[i]));
  }
  return out + "}";
}

const char* OpCode(v1::Change::Op op) {
  switch (op) {
    case v1::Change::INSERT:
      return "c";
    case v1::Change::UPDATE:
      return "u";
    case v1::Change::DELETE:
      return "d";
    case v1::Change::READ:
      return "r";
    case v1::Change::TRUNCATE:
      return "t";
    case v1::Change::MESSAGE:
      return "m";
    default:
      return "?";
  }
}

}  // namespace

std::string FormatChangeAsDebezium(const v1::Change& change, const DebeziumSource& source,
                                   absl::Time now) {
  std::string before = "null";
  if (!change.before().empty()) {
    before = Row(change.before());
  } else if (change.op() == v1::Change::DELETE && !change.key().empty()) {
    before = Row(change.key());  // REPLICA IDENTITY DEFAULT: the old key is all there is
  }
  const bool has_after = change.op() == v1::Change::INSERT || change.op() == v1::Change::UPDATE ||
                         change.op() == v1::Change::READ;
  const std::string after = has_after ? Row(change.after()) : "null";
  std::string out = absl::StrCat(
      "{\"before\":", before, ",\"after\":", after, ",\"source\":{\"version\":\"walfeed\",",
      "\"connector\":\"postgresql\",\"name\":", JsonString(source.server_name),
      ",\"ts_ms\":", absl::ToUnixMillis(FromProtoTimestamp(change.commit_time())),
      ",\"snapshot\":", change.op() == v1::Change::READ ? "\"true\"" : "\"false\"",
      ",\"db\":", JsonString(source.database), ",\"schema\":", JsonString(change.schema()),
      ",\"table\":", JsonString(change.table()), ",\"txId\":", change.xid(),
      ",\"lsn\":", change.lsn(), ",\"xmin\":null", change.resync() ? ",\"resync\":true" : "",
      "},\"op\":\"", OpCode(change.op()), "\"");
  if (change.op() == v1::Change::MESSAGE) {
    absl::StrAppend(&out, ",\"message\":{\"prefix\":", JsonString(change.message().prefix()),
                    ",\"content\":", JsonString(absl::Base64Escape(change.message().content())),
                    "}");
  }
  absl::StrAppend(&out, ",\"ts_ms\":", absl::ToUnixMillis(now), ",\"transaction\":null}");
  return out;
}

}  // namespace walfeed
