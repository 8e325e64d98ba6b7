// Out-of-line values: how a change too large for one stream message is stored (internal to
// server/log/, and to its fuzz target).
//
// Promises, for MoveOutOfLine():
// - Every movable value (text, numeric, bytes, json, raw text; a message's content) longer than
//   `value_bytes` leaves the change (one under 64 bytes never does: a reference is as long); then,
//   while the change is still longer than `change_bytes`, its longest remaining movable values do,
//   longest first. A change ends up about `change_bytes` long at most (1,600 columns of references
//   and small values stay far below gRPC's 4 MiB message limit).
// - A value that leaves is written to the store in chunks of `chunk_bytes`, under its ValueRef
//   (this change's position, its part, its column index), and its column holds a
//   walfeed.v1.LargeValue instead: that ref, its size and which field it came from. Concatenated,
//   the chunks are the value byte for byte.
// - Key columns of a row whose changes compaction merges (PRIMARY_KEY, UNIQUE_INDEX) never
//   leave, nor their old values in `before`: the per-key index reads them from the stored change
//   (PostgreSQL's btree limit keeps them small anyway).
// - A reference the change already holds that names another position (a value the TOAST filler
//   took from an older image) is copied to this change's own ref, chunk by chunk, so that the
//   older change can be compacted away on its own. When its chunks are missing or do not add up,
//   the column becomes unchanged_toast: the marker, never a guess.
#ifndef WALFEED_SERVER_LOG_OUT_OF_LINE_VALUES_H_
#define WALFEED_SERVER_LOG_OUT_OF_LINE_VALUES_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/core/position.h"
#include "server/core/value_ref.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

struct OutOfLineLimits {
  size_t value_bytes = 256 << 10;
  size_t change_bytes = 1 << 20;
  size_t chunk_bytes = 256 << 10;
};

// Where the chunks of out-of-line values go, and where existing ones are read from.
class ValueChunkStore {
 public:
  virtual ~ValueChunkStore() = default;
  // Stores `data` as the chunk of `ref`'s value that starts at `offset`.
  virtual absl::Status Put(const ValueRef& ref, uint64_t offset, absl::string_view data) = 0;
  using ChunkVisitor = std::function<absl::Status(uint64_t offset, absl::string_view data)>;
  // Hands `visit` the stored chunks of `ref`'s value in order (none when it has none).
  virtual absl::Status Visit(const ValueRef& ref, const ChunkVisitor& visit) const = 0;
};

// Whether MoveOutOfLine() has anything to do for `change` judging by its values alone (a
// reference to copy, a movable value over `value_bytes`, movable values adding up past
// `change_bytes`): a cheap test, without serializing, for the append path. When false, the change
// still needs moving only if its serialized form is over `change_bytes` (names and small values
// of very many columns).
bool MayMoveOutOfLine(const v1::Change& change, const OutOfLineLimits& limits);

// Moves the values of `change`, stored at `position`, out of line into `store` (see above).
absl::Status MoveOutOfLine(const OutOfLineLimits& limits, const Position& position,
                           v1::Change* change, ValueChunkStore* store);

// Whether any value of `change` is stored out of line.
bool HasOutOfLineValues(const v1::Change& change);

// The references to `change`'s values stored out of line.
std::vector<v1::LargeValue> OutOfLineValues(const v1::Change& change);

// The bytes of `change`'s values stored out of line.
uint64_t OutOfLineBytes(const v1::Change& change);

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_OUT_OF_LINE_VALUES_H_
