// Hand-written protobuf wire format, for the paths that pass stored changes on without parsing
// them: the log stores each change as a serialized walfeed.v1.Change, and a message whose
// repeated Change field is those same bytes, length-prefixed, is a valid serialized message
// (SubscribeResponse, LogSegment). SummarizeChange() reads only what such a path needs to filter
// or cut a change (op, schema, table, last_in_transaction) straight from the bytes, allocating
// nothing.
#ifndef WALFEED_SERVER_CORE_CHANGE_WIRE_FORMAT_H_
#define WALFEED_SERVER_CORE_CHANGE_WIRE_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace walfeed {

struct ChangeSummary {
  uint64_t lsn = 0;
  uint32_t seq = 0;
  int op = 0;  // a v1::Change::Op value
  absl::string_view schema;
  absl::string_view table;
  bool last_in_transaction = false;
};

// Fills `out` from a serialized walfeed.v1.Change; false when the bytes are not well-formed
// protobuf (the views point into `stored`).
bool SummarizeChange(absl::string_view stored, ChangeSummary* out);

// Hands `visit` each field of a serialized message in order: its number and, for a varint, its
// value, for a length-delimited field, its bytes (a view into `message`); fixed-width fields are
// skipped. `visit` returns false to stop. False when the bytes are not well-formed protobuf.
bool VisitFields(
    absl::string_view message,
    absl::FunctionRef<bool(uint32_t field, uint64_t varint, absl::string_view bytes)> visit);

// Appends a base-128 varint.
void WriteVarint(uint64_t value, std::string* out);
// Appends field `field` as a varint (wire type 0); nothing for 0 (proto3's default).
void WriteVarintField(uint32_t field, uint64_t value, std::string* out);
// Appends field `field` as length-delimited bytes (wire type 2): a string, bytes, or an
// embedded message's serialized form.
void WriteLengthDelimited(uint32_t field, absl::string_view bytes, std::string* out);

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_CHANGE_WIRE_FORMAT_H_
