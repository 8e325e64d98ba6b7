// The RocksDB side of out-of-line values (internal to server/log/): the "values" column family
// holds each chunk under its value's ref and offset,
//   position key (12 bytes) | part (1) | column index (2, big-endian) | offset (8, big-endian),
// so that a value's chunks sort in order right after each other, and all the values of the
// change at position P sort between EncodePositionKey(P) and EncodePositionKey(P.Successor()):
// the change's own key range in the "changes" family, which removes them with it.
#ifndef WALFEED_SERVER_LOG_VALUE_CHUNKS_H_
#define WALFEED_SERVER_LOG_VALUE_CHUNKS_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "server/core/value_ref.h"
#include "server/log/out_of_line_values.h"

namespace walfeed {

std::string ValueChunkKey(const ValueRef& ref, uint64_t offset);

// Writes chunks into a WriteBatch (the append being built) and reads existing ones from the
// database (what is durable, not the batch).
class BatchValueStore final : public ValueChunkStore {
 public:
  BatchValueStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* values, rocksdb::WriteBatch* batch)
      : db_(db), values_(values), batch_(batch) {}

  absl::Status Put(const ValueRef& ref, uint64_t offset, absl::string_view data) override;
  absl::Status Visit(const ValueRef& ref, const ChunkVisitor& visit) const override;

 private:
  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const values_;
  rocksdb::WriteBatch* const batch_;
};

// The stored bytes of `ref`'s value from `offset` to the end of the chunk that holds it (up to
// `max_bytes` of them). Empty when `offset` is at or past the value's end, or no chunk is stored.
absl::StatusOr<std::string> ReadValueChunk(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* values,
                                           const ValueRef& ref, uint64_t offset, size_t max_bytes);

// Hands `visit` every stored chunk of the values of the changes at positions in [first, last],
// in key order: by position, then part, column index and offset; from the chunk `start_at` (a
// ref and an offset) on when given. `visit` returns false to stop.
using RangeChunkVisitor =
    std::function<bool(const ValueRef& ref, uint64_t offset, absl::string_view data)>;
absl::Status VisitValueChunks(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* values,
                              const Position& first, const Position& last,
                              const RangeChunkVisitor& visit,
                              const std::optional<std::pair<ValueRef, uint64_t>>& start_at);

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_VALUE_CHUNKS_H_
