// Debezium's JSON change-event envelope for walfeed changes (walfeedctl --format debezium), so
// consumers written for Debezium's PostgreSQL connector (JSON converter, schemas disabled) read
// walfeed's feed unchanged. One change is one single-line JSON object:
//
//   {"before": {...} | null, "after": {...} | null,
//    "source": {"version", "connector": "postgresql", "name", "ts_ms", "snapshot", "db",
//               "schema", "table", "txId", "lsn", "xmin": null},
//    "op": "c" | "u" | "d" | "r" | "t" | "m", "ts_ms", "transaction": null}
//
// Values follow the connector's defaults where JSON allows: integers and floats as numbers
// (NaN and infinities as strings), numeric as a decimal string (decimal.handling.mode=string),
// bytea as base64, json/jsonb as their text, timestamptz as an ISO-8601 string in UTC
// (ZonedTimestamp), timestamp without time zone as microseconds since the epoch
// (MicroTimestamp), date as days since the epoch (Date), an unchanged TOASTed value as
// "__debezium_unavailable_value". README's "Debezium format" section has the whole mapping.
#ifndef WALFEED_CLIENT_DEBEZIUM_FORMAT_H_
#define WALFEED_CLIENT_DEBEZIUM_FORMAT_H_

#include <string>

#include "absl/time/time.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

struct DebeziumSource {
  std::string server_name = "walfeed";  // source.name: Debezium's topic prefix
  std::string database;                 // source.db
};

// The envelope for `change`, processed at `now` (the envelope's ts_ms).
std::string FormatChangeAsDebezium(const v1::Change& change, const DebeziumSource& source,
                                   absl::Time now);

}  // namespace walfeed

#endif  // WALFEED_CLIENT_DEBEZIUM_FORMAT_H_
