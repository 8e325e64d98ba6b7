#include "server/log/position_key.h"

#include <random>

#include "gtest/gtest.h"

namespace walfeed {
namespace {

TEST(PositionKey, RoundTrips) {
  const Position p{0x0123456789ABCDEFull, 0xFEDCBA98u};
  const std::string key = EncodePositionKey(p);
  EXPECT_EQ(key.size(), kPositionKeySize);
  EXPECT_EQ(*DecodePositionKey(key), p);
}

TEST(PositionKey, ByteOrderIsFeedOrder) {
  std::mt19937_64 random(42);
  for (int i = 0; i < 10000; ++i) {
    const Position a{random() >> (random() % 64),
                     static_cast<uint32_t>(random() >> (random() % 64))};
    const Position b{random() >> (random() % 64),
                     static_cast<uint32_t>(random() >> (random() % 64))};
    EXPECT_EQ(a < b, EncodePositionKey(a) < EncodePositionKey(b));
  }
}

TEST(PositionKey, RejectsKeysOfTheWrongSize) {
  EXPECT_EQ(DecodePositionKey("short").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace walfeed
