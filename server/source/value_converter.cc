#include "server/source/value_converter.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "server/core/utf8.h"

namespace walfeed {
namespace {

bool ParseDigits(absl::string_view text, size_t count, int* out) {
  if (text.size() < count) return false;
  int value = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!absl::ascii_isdigit(text[i])) return false;
    value = value * 10 + (text[i] - '0');
  }
  *out = value;
  return true;
}

// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const unsigned year_of_era = static_cast<unsigned>(year - era * 400);
  const unsigned day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + static_cast<int64_t>(day_of_era) - 719468;
}

// "YYYY-MM-DD" with a four-digit year, at the start of `text`.
bool ParseIsoDate(absl::string_view text, int* year, int* month, int* day) {
  return text.size() >= 10 && ParseDigits(text, 4, year) && text[4] == '-' &&
         ParseDigits(text.substr(5), 2, month) && text[7] == '-' &&
         ParseDigits(text.substr(8), 2, day) && *year >= 1 && *month >= 1 && *month <= 12 &&
         *day >= 1 && *day <= 31;
}

bool DecodeHexBytea(absl::string_view text, std::string* out) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return false;
  out->clear();
  out->reserve((text.size() - 2) / 2);
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 2; i < text.size(); i += 2) {
    const int high = nibble(text[i]);
    const int low = nibble(text[i + 1]);
    if (high < 0 || low < 0) return false;
    out->push_back(static_cast<char>(high * 16 + low));
  }
  return true;
}

bool ParsePgFloat(absl::string_view text, double* out) {
  // PostgreSQL spells the special values NaN, Infinity and -Infinity; SimpleAtod takes them all.
  return absl::SimpleAtod(text, out);
}

}  // namespace

bool ParsePgTimestamp(absl::string_view text, int64_t* seconds, int32_t* nanos) {
  int year, month, day, hour, minute, second;
  if (!ParseIsoDate(text, &year, &month, &day) || text.size() < 19 || text[10] != ' ' ||
      !ParseDigits(text.substr(11), 2, &hour) || text[13] != ':' ||
      !ParseDigits(text.substr(14), 2, &minute) || text[16] != ':' ||
      !ParseDigits(text.substr(17), 2, &second) || hour > 24 || minute > 59 || second > 60) {
    return false;
  }
  absl::string_view rest = text.substr(19);
  int32_t micros = 0;
  if (!rest.empty() && rest[0] == '.') {
    size_t digits = 1;
    while (digits < rest.size() && absl::ascii_isdigit(rest[digits])) ++digits;
    const size_t count = digits - 1;
    if (count == 0 || count > 6) return false;
    int fraction;
    ParseDigits(rest.substr(1), count, &fraction);
    for (size_t i = count; i < 6; ++i) fraction *= 10;
    micros = fraction;
    rest.remove_prefix(digits);
  }
  int64_t offset_seconds = 0;
  if (!rest.empty()) {
    if (rest[0] != '+' && rest[0] != '-') return false;
    const int sign = rest[0] == '+' ? 1 : -1;
    int oh = 0, om = 0, os = 0;
    if (!ParseDigits(rest.substr(1), 2, &oh)) return false;
    rest.remove_prefix(3);
    if (!rest.empty()) {
      if (rest[0] != ':' || !ParseDigits(rest.substr(1), 2, &om)) return false;
      rest.remove_prefix(3);
    }
    if (!rest.empty()) {
      if (rest[0] != ':' || !ParseDigits(rest.substr(1), 2, &os)) return false;
      rest.remove_prefix(3);
    }
    if (!rest.empty()) return false;
    offset_seconds = sign * (oh * 3600 + om * 60 + os);
  }
  *seconds =
      DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  *nanos = micros * 1000;
  return true;
}

namespace {

// Text that is not UTF-8 goes into `raw_text`, never into a proto3 string.
void SetTextOrRaw(std::string text, std::string* (v1::Column::*mutable_field)(),
                  v1::Column* column) {
  if (IsValidUtf8(text)) {
    *(column->*mutable_field)() = std::move(text);
    return;
  }
  column->set_raw_text(std::move(text));
  column->set_raw_text_encoding("SQL_ASCII");
}

}  // namespace

void SetColumnValue(uint32_t type_oid, pgoutput::TupleColumn value, v1::Column* column) {
  using Kind = pgoutput::TupleColumn::Kind;
  switch (value.kind) {
    case Kind::kNull:
      column->set_null(true);
      return;
    case Kind::kUnchangedToast:
      column->set_unchanged_toast(true);
      return;
    case Kind::kBinary:
      // walfeed asks for text form; binary would only come from a misconfigured stream.
      column->set_bytes(std::move(value.data));
      return;
    case Kind::kText:
      break;
  }
  std::string& text = value.data;
  switch (type_oid) {
    case pg_oid::kInt2:
    case pg_oid::kInt4:
    case pg_oid::kInt8:
    case pg_oid::kOid: {
      int64_t number;
      if (absl::SimpleAtoi(text, &number)) {
        column->set_int_(number);
        return;
      }
      break;
    }
    case pg_oid::kBool:
      if (text == "t" || text == "f") {
        column->set_bool_(text == "t");
        return;
      }
      break;
    case pg_oid::kFloat4:
    case pg_oid::kFloat8: {
      double number;
      if (ParsePgFloat(text, &number)) {
        column->set_float_(number);
        return;
      }
      break;
    }
    case pg_oid::kNumeric:
      column->set_numeric(std::move(text));
      return;
    case pg_oid::kBytea: {
      std::string bytes;
      if (DecodeHexBytea(text, &bytes)) {
        column->set_bytes(std::move(bytes));
        return;
      }
      break;
    }
    case pg_oid::kJson:
    case pg_oid::kJsonb:
      SetTextOrRaw(std::move(text), &v1::Column::mutable_json, column);
      return;
    case pg_oid::kUuid:
      column->set_uuid(std::move(text));
      return;
    case pg_oid::kDate: {
      int year, month, day;
      if (text.size() == 10 && ParseIsoDate(text, &year, &month, &day)) {
        column->set_date(std::move(text));
        return;
      }
      break;
    }
    case pg_oid::kTimestamp:
    case pg_oid::kTimestamptz: {
      int64_t seconds;
      int32_t nanos;
      if (ParsePgTimestamp(text, &seconds, &nanos)) {
        column->mutable_timestamp()->set_seconds(seconds);
        column->mutable_timestamp()->set_nanos(nanos);
        return;
      }
      break;
    }
    default:
      break;
  }
  SetTextOrRaw(std::move(text), &v1::Column::mutable_text, column);
}

}  // namespace walfeed
