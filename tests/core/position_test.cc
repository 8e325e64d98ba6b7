#include "server/core/position.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;

TEST(Lsn, FormatsInPostgresForm) {
  EXPECT_EQ(FormatLsn(0), "0/0");
  EXPECT_EQ(FormatLsn(0x16B3748), "0/16B3748");
  EXPECT_EQ(FormatLsn((uint64_t{0xA} << 32) | 0xFF), "A/FF");
}

TEST(Lsn, ParsesPostgresFormAndDecimal) {
  EXPECT_EQ(*ParseLsn("0/16B3748"), 0x16B3748u);
  EXPECT_EQ(*ParseLsn("a/ff"), (uint64_t{0xA} << 32) | 0xFF);
  EXPECT_EQ(*ParseLsn("23803720"), 23803720u);
  EXPECT_EQ(*ParseLsn("FFFFFFFF/FFFFFFFF"), std::numeric_limits<uint64_t>::max());
}

TEST(Lsn, RejectsMalformedTextWithTheValueInTheMessage) {
  for (const char* bad : {"", "/", "0/", "/1", "0/1G", "1/2/3", "-5", "123456789/0", "12x"}) {
    absl::StatusOr<uint64_t> lsn = ParseLsn(bad);
    ASSERT_FALSE(lsn.ok()) << bad;
    EXPECT_EQ(lsn.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(lsn.status().message(), HasSubstr(absl::StrCat("'", bad, "'")));
  }
}

TEST(Cursor, RoundTripsEveryPosition) {
  for (const Position p :
       {Position{0, 0}, Position{0x16B3748, 3},
        Position{std::numeric_limits<uint64_t>::max(), std::numeric_limits<uint32_t>::max()}}) {
    absl::StatusOr<Position> parsed = ParseCursor(FormatCursor(p));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_EQ(FormatCursor({0x16B3748, 3}), "0/16B3748:3");
}

TEST(Cursor, RejectsMalformedCursorsNamingTheExpectedForm) {
  for (const char* bad : {"", "0/1G:3", "0/16B3748", "0/16B3748:", "0/16B3748:x", "16B3748:3",
                          "0/16B3748:-1", "0/16B3748:99999999999", ":3"}) {
    absl::StatusOr<Position> cursor = ParseCursor(bad);
    ASSERT_FALSE(cursor.ok()) << bad;
    EXPECT_EQ(cursor.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(cursor.status().message(), HasSubstr("X/Y:seq"));
  }
}

TEST(Position, OrdersByLsnThenSeq) {
  EXPECT_LT((Position{1, 5}), (Position{2, 0}));
  EXPECT_LT((Position{2, 0}), (Position{2, 1}));
  EXPECT_EQ((Position{2, 1}), (Position{2, 1}));
}

TEST(Position, SuccessorIsTheNextPositionEvenAtTheEndOfASequence) {
  EXPECT_EQ((Position{7, 2}.Successor()), (Position{7, 3}));
  EXPECT_EQ((Position{7, std::numeric_limits<uint32_t>::max()}.Successor()), (Position{8, 0}));
}

// The commit after a non-transactional message can start at the message's end, one past the
// message's position: synthetic rows must not take that LSN (it halted ingest for good).
TEST(SyntheticPosition, AfterAMessageAtResumeMinusOneContinuesTheHeadsSequence) {
  const uint64_t resume = 0x1528780;
  absl::StatusOr<Position> first = FirstSyntheticPosition(Position{resume - 1, 0}, resume);
  ASSERT_OK(first);
  EXPECT_EQ(*first, (Position{resume - 1, 1}));
  EXPECT_LT(*first, (Position{resume, 0}));
}

TEST(SyntheticPosition, AfterACommitTakesTheNextLsnBelowTheResumePoint) {
  absl::StatusOr<Position> first = FirstSyntheticPosition(Position{0x1000, 7}, 0x1030);
  ASSERT_OK(first);
  EXPECT_EQ(*first, (Position{0x1001, 0}));
}

TEST(SyntheticPosition, EveryAnswerLiesStrictlyBetweenTheHeadAndTheResumePoint) {
  for (uint64_t resume : {uint64_t{2}, uint64_t{3}, uint64_t{0x100}, uint64_t{1} << 40}) {
    for (uint64_t gap : {uint64_t{1}, uint64_t{2}, uint64_t{24}}) {
      if (gap > resume - 1) continue;
      for (uint32_t seq : {0u, 5u}) {
        const Position head{resume - gap, seq};
        absl::StatusOr<Position> first = FirstSyntheticPosition(head, resume);
        ASSERT_OK(first);
        EXPECT_GT(*first, head);
        EXPECT_LT(*first, (Position{resume, 0}));
      }
    }
  }
  absl::StatusOr<Position> empty = FirstSyntheticPosition(Position{}, 0x500);
  ASSERT_OK(empty);
  EXPECT_EQ(*empty, (Position{0x4FF, 0}));
}

TEST(SyntheticPosition, RefusesWhenNoPositionIsFree) {
  EXPECT_FALSE(FirstSyntheticPosition(Position{0x10, 0}, 0x10).ok());
  EXPECT_FALSE(
      FirstSyntheticPosition(Position{0x10, std::numeric_limits<uint32_t>::max()}, 0x11).ok());
}

}  // namespace
}  // namespace walfeed
