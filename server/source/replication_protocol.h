// The CopyBoth framing of PostgreSQL's streaming replication protocol: parses the server's
// XLogData ('w') and primary keepalive ('k') messages and encodes the standby status update
// ('r'). Pure functions on bytes; malformed input is an error, never an out-of-bounds read.
#ifndef WALFEED_SERVER_SOURCE_REPLICATION_PROTOCOL_H_
#define WALFEED_SERVER_SOURCE_REPLICATION_PROTOCOL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace walfeed {

struct ReplicationFrame {
  enum class Kind { kXLogData, kKeepalive };
  Kind kind = Kind::kKeepalive;
  uint64_t wal_start = 0;        // XLogData: LSN of the data's start
  uint64_t wal_end = 0;          // the server's current end of WAL
  int64_t send_time = 0;         // microseconds since 2000-01-01
  bool reply_requested = false;  // keepalive: answer now or be disconnected
  absl::string_view payload;     // XLogData: one pgoutput message (points into the input)
};

absl::StatusOr<ReplicationFrame> ParseReplicationFrame(absl::string_view bytes);

// A standby status update reporting `flushed` as written, flushed and applied.
std::string EncodeStandbyStatus(uint64_t flushed, int64_t now_pg_micros, bool reply_requested);

// Now, in microseconds since 2000-01-01.
int64_t PgNowMicros();

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_REPLICATION_PROTOCOL_H_
