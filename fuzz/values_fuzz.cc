// Fuzzes the conversion of PostgreSQL's text forms into typed values: the first byte picks a
// built-in type, the rest is the text PostgreSQL would have sent for it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/source/value_converter.h"

namespace {

// int2, int4, int8, oid, float4, float8, numeric, bool, text, bytea, json, jsonb, timestamp,
// timestamptz, date, uuid, money, interval, int4[].
constexpr uint32_t kTypes[] = {21,  23,   20,   26,   700,  701,  1700, 16,   25,  17,
                               114, 3802, 1114, 1184, 1082, 2950, 790,  1186, 1007};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  walfeed::pgoutput::TupleColumn value;
  value.kind = walfeed::pgoutput::TupleColumn::Kind::kText;
  value.data.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  walfeed::v1::Column column;
  walfeed::SetColumnValue(kTypes[data[0] % (sizeof(kTypes) / sizeof(kTypes[0]))], std::move(value),
                          &column);
  std::string serialized;
  column.SerializeToString(&serialized);
  return 0;
}
