#include "server/core/change_wire_format.h"

namespace walfeed {
namespace {

// Field numbers of walfeed.v1.Change (see the .proto; they never change).
constexpr uint32_t kChangeLsn = 1;
constexpr uint32_t kChangeSeq = 2;
constexpr uint32_t kChangeOp = 4;
constexpr uint32_t kChangeSchema = 5;
constexpr uint32_t kChangeTable = 6;
constexpr uint32_t kChangeLastInTransaction = 12;

constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kFixed32 = 5;

bool ReadVarint(absl::string_view* in, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in->empty()) return false;
    const uint8_t byte = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

void WriteVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void WriteVarintField(uint32_t field, uint64_t value, std::string* out) {
  if (value == 0) return;
  WriteVarint((field << 3) | kVarint, out);
  WriteVarint(value, out);
}

void WriteLengthDelimited(uint32_t field, absl::string_view bytes, std::string* out) {
  WriteVarint((field << 3) | kLengthDelimited, out);
  WriteVarint(bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}

bool VisitFields(
    absl::string_view message,
    absl::FunctionRef<bool(uint32_t field, uint64_t varint, absl::string_view bytes)> visit) {
  absl::string_view in = message;
  while (!in.empty()) {
    uint64_t tag;
    if (!ReadVarint(&in, &tag)) return false;
    const uint32_t field = static_cast<uint32_t>(tag >> 3);
    switch (tag & 7) {
      case kVarint: {
        uint64_t value;
        if (!ReadVarint(&in, &value)) return false;
        if (!visit(field, value, absl::string_view())) return true;
        break;
      }
      case kFixed64:
        if (in.size() < 8) return false;
        in.remove_prefix(8);
        break;
      case kFixed32:
        if (in.size() < 4) return false;
        in.remove_prefix(4);
        break;
      case kLengthDelimited: {
        uint64_t length;
        if (!ReadVarint(&in, &length) || length > in.size()) return false;
        const absl::string_view value = in.substr(0, length);
        in.remove_prefix(length);
        if (!visit(field, 0, value)) return true;
        break;
      }
      default:  // groups (never written by walfeed) or garbage
        return false;
    }
  }
  return true;
}

bool SummarizeChange(absl::string_view stored, ChangeSummary* out) {
  *out = ChangeSummary();
  return VisitFields(stored, [out](uint32_t field, uint64_t varint, absl::string_view bytes) {
    switch (field) {
      case kChangeLsn:
        out->lsn = varint;
        break;
      case kChangeSeq:
        out->seq = static_cast<uint32_t>(varint);
        break;
      case kChangeOp:
        out->op = static_cast<int>(varint);
        break;
      case kChangeLastInTransaction:
        out->last_in_transaction = varint != 0;
        break;
      case kChangeSchema:
        out->schema = bytes;
        break;
      case kChangeTable:
        out->table = bytes;
        break;
    }
    return true;
  });
}

}  // namespace walfeed
