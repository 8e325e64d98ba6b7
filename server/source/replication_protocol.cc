#include "server/source/replication_protocol.h"

#include <chrono>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/source/byte_reader.h"

namespace walfeed {
namespace {

constexpr int64_t kPgEpochUnixMicros = 946684800LL * 1000000;

void PutU64(uint64_t value, std::string* out) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

}  // namespace

absl::StatusOr<ReplicationFrame> ParseReplicationFrame(absl::string_view bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("empty CopyData message");
  ReplicationFrame frame;
  ByteReader in(bytes.substr(1));
  switch (bytes[0]) {
    case 'w':
      frame.kind = ReplicationFrame::Kind::kXLogData;
      if (in.ReadU64("XLogData dataStart", &frame.wal_start) &&
          in.ReadU64("XLogData walEnd", &frame.wal_end) &&
          in.ReadI64("XLogData sendTime", &frame.send_time)) {
        frame.payload = bytes.substr(1 + 24);
        return frame;
      }
      break;
    case 'k': {
      frame.kind = ReplicationFrame::Kind::kKeepalive;
      uint8_t reply;
      if (in.ReadU64("keepalive walEnd", &frame.wal_end) &&
          in.ReadI64("keepalive sendTime", &frame.send_time) &&
          in.ReadU8("keepalive replyRequested", &reply)) {
        frame.reply_requested = reply != 0;
        return frame;
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrFormat("unknown CopyData message type 0x%02x (expected 'w' or 'k')",
                          static_cast<uint8_t>(bytes[0])));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("malformed CopyData message: ", in.status().message()));
}

std::string EncodeStandbyStatus(uint64_t flushed, int64_t now_pg_micros, bool reply_requested) {
  std::string out;
  out.reserve(34);
  out.push_back('r');
  PutU64(flushed, &out);  // written
  PutU64(flushed, &out);  // flushed
  PutU64(flushed, &out);  // applied
  PutU64(static_cast<uint64_t>(now_pg_micros), &out);
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

int64_t PgNowMicros() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::microseconds>(now).count() - kPgEpochUnixMicros;
}

}  // namespace walfeed
