#include "server/feed/shared_batch_cache.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

grpc::ByteBuffer Bytes(const std::string& text) {
  grpc::Slice slice(text);
  return grpc::ByteBuffer(&slice, 1);
}

std::string Text(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_OK(buffer.Dump(&slices));
  std::string text;
  for (const grpc::Slice& slice : slices) {
    text.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return text;
}

SharedBatch Batch(uint64_t start_lsn, const std::string& bytes, Position purge_point = {}) {
  return SharedBatch{Position{start_lsn, 0},
                     500,
                     purge_point,
                     Position{start_lsn + 10, 0},
                     true,
                     10,
                     Bytes(bytes)};
}

TEST(SharedBatchCache, FindsABatchByStartBatchSizeAndPurgePoint) {
  SharedBatchCache cache;
  cache.Add(Batch(100, "first"));
  SharedBatch found;
  ASSERT_TRUE(cache.Find(Position{100, 0}, 500, Position{}, &found));
  EXPECT_EQ(Text(found.response), "first");
  EXPECT_EQ(found.next, (Position{110, 0}));
  EXPECT_TRUE(found.ends_transaction);

  EXPECT_FALSE(cache.Find(Position{100, 1}, 500, Position{}, &found)) << "another start";
  EXPECT_FALSE(cache.Find(Position{100, 0}, 100, Position{}, &found)) << "another batch size";
  EXPECT_FALSE(cache.Find(Position{100, 0}, 500, Position{50, 0}, &found))
      << "built before compaction moved the purge point";
}

TEST(SharedBatchCache, KeepsTheFirstOfTwoBatchesWithTheSameKey) {
  SharedBatchCache cache;
  cache.Add(Batch(100, "first"));
  cache.Add(Batch(100, "second"));
  SharedBatch found;
  ASSERT_TRUE(cache.Find(Position{100, 0}, 500, Position{}, &found));
  EXPECT_EQ(Text(found.response), "first");
}

TEST(SharedBatchCache, HoldsAtMostItsCapacityDroppingTheOldest) {
  SharedBatchCache cache;
  for (uint64_t i = 0; i <= SharedBatchCache::kCapacity; ++i) cache.Add(Batch(1000 + i, "b"));
  SharedBatch found;
  EXPECT_FALSE(cache.Find(Position{1000, 0}, 500, Position{}, &found)) << "the oldest is gone";
  EXPECT_TRUE(cache.Find(Position{1001, 0}, 500, Position{}, &found));
  EXPECT_TRUE(cache.Find(Position{1000 + SharedBatchCache::kCapacity, 0}, 500, Position{}, &found));
}

TEST(SharedBatchCache, CopiesShareTheBytesAndOutliveTheCache) {
  SharedBatch found;
  {
    SharedBatchCache cache;
    cache.Add(Batch(7, std::string(100000, 'x')));
    ASSERT_TRUE(cache.Find(Position{7, 0}, 500, Position{}, &found));
  }
  EXPECT_EQ(Text(found.response), std::string(100000, 'x'));
}

}  // namespace
}  // namespace walfeed
