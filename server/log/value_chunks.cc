#include "server/log/value_chunks.h"

#include <memory>

#include "server/log/change_log_state.h"
#include "server/log/position_key.h"

namespace walfeed {
namespace {

using log_internal::FromRocks;
using log_internal::KeyOf;
using log_internal::ToSlice;
using log_internal::ValueOf;

constexpr size_t kPrefixSize = kPositionKeySize + 1 + 2;
constexpr size_t kChunkKeySize = kPrefixSize + 8;

std::string ValuePrefix(const ValueRef& ref) {
  std::string key(kPrefixSize, '\0');
  EncodePositionKeyTo(ref.position, key.data());
  key[kPositionKeySize] = static_cast<char>(ref.part);
  key[kPositionKeySize + 1] = static_cast<char>(ref.index >> 8);
  key[kPositionKeySize + 2] = static_cast<char>(ref.index);
  return key;
}

uint64_t OffsetOf(absl::string_view key) {
  uint64_t offset = 0;
  for (unsigned char c : key.substr(kPrefixSize, 8)) offset = (offset << 8) | c;
  return offset;
}

}  // namespace

std::string ValueChunkKey(const ValueRef& ref, uint64_t offset) {
  std::string key = ValuePrefix(ref);
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(offset >> shift));
  return key;
}

absl::Status BatchValueStore::Put(const ValueRef& ref, uint64_t offset, absl::string_view data) {
  return FromRocks(batch_->Put(values_, ValueChunkKey(ref, offset), ToSlice(data)),
                   "cannot build the append batch");
}

absl::Status BatchValueStore::Visit(const ValueRef& ref, const ChunkVisitor& visit) const {
  const std::string prefix = ValuePrefix(ref);
  std::string upper = ValueChunkKey(ref, ~uint64_t{0});
  upper.push_back('\0');
  const rocksdb::Slice upper_bound(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_bound;
  options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, values_));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const absl::string_view key = KeyOf(*it);
    if (key.size() != kChunkKeySize) continue;
    if (absl::Status s = visit(OffsetOf(key), ValueOf(*it)); !s.ok()) return s;
  }
  return FromRocks(it->status(), "cannot read a stored value");
}

absl::StatusOr<std::string> ReadValueChunk(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* values,
                                           const ValueRef& ref, uint64_t offset, size_t max_bytes) {
  const std::string prefix = ValuePrefix(ref);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), values));
  // The chunk that holds `offset` is the last one starting at or before it.
  it->SeekForPrev(ValueChunkKey(ref, offset));
  if (!it->status().ok()) return FromRocks(it->status(), "cannot read a stored value");
  if (!it->Valid()) return std::string();
  const absl::string_view key = KeyOf(*it);
  if (key.size() != kChunkKeySize || key.substr(0, kPrefixSize) != prefix) return std::string();
  const uint64_t start = OffsetOf(key);
  const absl::string_view chunk = ValueOf(*it);
  if (offset - start >= chunk.size()) return std::string();
  return std::string(chunk.substr(offset - start, max_bytes));
}

absl::Status VisitValueChunks(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* values,
                              const Position& first, const Position& last,
                              const RangeChunkVisitor& visit,
                              const std::optional<std::pair<ValueRef, uint64_t>>& start_at) {
  const std::string upper = EncodePositionKey(last.Successor());
  const rocksdb::Slice upper_bound(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_bound;
  options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(options, values));
  const std::string start = start_at.has_value() ? ValueChunkKey(start_at->first, start_at->second)
                                                 : EncodePositionKey(first);
  for (it->Seek(start); it->Valid(); it->Next()) {
    const absl::string_view key = KeyOf(*it);
    if (key.size() != kChunkKeySize) continue;
    absl::StatusOr<Position> position = DecodePositionKey(key.substr(0, kPositionKeySize));
    if (!position.ok()) return position.status();
    ValueRef ref;
    ref.position = *position;
    ref.part = static_cast<ValuePart>(key[kPositionKeySize]);
    ref.index =
        (static_cast<uint32_t>(static_cast<unsigned char>(key[kPositionKeySize + 1])) << 8) |
        static_cast<unsigned char>(key[kPositionKeySize + 2]);
    if (!visit(ref, OffsetOf(key), ValueOf(*it))) return absl::OkStatus();
  }
  return FromRocks(it->status(), "cannot read a stored value");
}

}  // namespace walfeed
