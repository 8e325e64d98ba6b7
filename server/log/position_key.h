// The RocksDB key of a change: its Position as 12 big-endian bytes (8 for lsn, 4 for seq), so
// RocksDB's bytewise key order is feed order.
#ifndef WALFEED_SERVER_LOG_POSITION_KEY_H_
#define WALFEED_SERVER_LOG_POSITION_KEY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/position.h"

namespace walfeed {

inline constexpr size_t kPositionKeySize = 12;

std::string EncodePositionKey(const Position& position);
// The same into `out`, which has room for kPositionKeySize bytes (no allocation).
void EncodePositionKeyTo(const Position& position, char* out);

// Fails unless `key` is exactly kPositionKeySize bytes.
absl::StatusOr<Position> DecodePositionKey(absl::string_view key);

// 8 big-endian bytes; used for LSN-valued metadata.
std::string EncodeUint64(uint64_t value);
absl::StatusOr<uint64_t> DecodeUint64(absl::string_view bytes);

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_POSITION_KEY_H_
