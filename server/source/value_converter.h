// Converts one column value from pgoutput's text form into a typed walfeed.v1.Column value.
//
// Exact for the types it maps (integers, bool, floats, numeric, text types, bytea, json/jsonb,
// date, timestamp/timestamptz, uuid); everything else, and any value of a mapped type that does
// not parse (infinity, BC dates, years past 9999), travels as PostgreSQL's own text form, so
// nothing is ever lost or rounded. Expects the session settings the source connects with:
// DateStyle ISO, TimeZone UTC, bytea_output hex, extra_float_digits 3, client_encoding UTF8.
// Text that is still not valid UTF-8 (a SQL_ASCII database passes bytes through unconverted)
// goes into `raw_text` byte for byte, never into a proto3 string that clients would reject.
#ifndef WALFEED_SERVER_SOURCE_VALUE_CONVERTER_H_
#define WALFEED_SERVER_SOURCE_VALUE_CONVERTER_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/source/pgoutput_messages.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

// Well-known type OIDs (pg_type.dat).
namespace pg_oid {
inline constexpr uint32_t kBool = 16, kBytea = 17, kChar = 18, kName = 19, kInt8 = 20, kInt2 = 21,
                          kInt4 = 23, kText = 25, kOid = 26, kJson = 114, kFloat4 = 700,
                          kFloat8 = 701, kBpchar = 1042, kVarchar = 1043, kDate = 1082,
                          kTimestamp = 1114, kTimestamptz = 1184, kNumeric = 1700, kUuid = 2950,
                          kJsonb = 3802;
}  // namespace pg_oid

// Sets the value oneof of `column` from `value` of a column of type `type_oid`. Takes `value`
// by value so a caller done with it can move it in and spare a copy of the data.
void SetColumnValue(uint32_t type_oid, pgoutput::TupleColumn value, v1::Column* column);

// Parses "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]]" into seconds and nanoseconds since the
// Unix epoch. False for anything else (including infinity and BC dates).
bool ParsePgTimestamp(absl::string_view text, int64_t* seconds, int32_t* nanos);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_VALUE_CONVERTER_H_
