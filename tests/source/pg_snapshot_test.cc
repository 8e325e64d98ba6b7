#include "server/source/pg_snapshot.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

TEST(PgSnapshotTest, SeesWhatCommittedBeforeItAndNothingInProgressOrLater) {
  absl::StatusOr<PgSnapshot> snapshot = PgSnapshot::Parse("100:110:102,105");
  ASSERT_OK(snapshot.status());
  EXPECT_TRUE(snapshot->Sees(5));
  EXPECT_TRUE(snapshot->Sees(99));
  EXPECT_TRUE(snapshot->Sees(100));
  EXPECT_TRUE(snapshot->Sees(101));
  EXPECT_FALSE(snapshot->Sees(102));
  EXPECT_TRUE(snapshot->Sees(104));
  EXPECT_FALSE(snapshot->Sees(105));
  EXPECT_TRUE(snapshot->Sees(109));
  EXPECT_FALSE(snapshot->Sees(110));
  EXPECT_FALSE(snapshot->Sees(110u + 0x7FFFFFFFu));  // within 2^31 after xmax: later
}

TEST(PgSnapshotTest, ComparesThirtyTwoBitIdsAcrossAnEpochLikePostgreSql) {
  // Epoch 1: xmax's low 32 bits are 10. Ids just below 2^32 are from before the wrap.
  const uint64_t epoch = uint64_t{1} << 32;
  absl::StatusOr<PgSnapshot> snapshot =
      PgSnapshot::Parse(absl::StrCat(epoch - 20, ":", epoch + 10, ":", epoch + 3));
  ASSERT_OK(snapshot.status());
  EXPECT_TRUE(snapshot->Sees(0xFFFFFFF0u));
  EXPECT_TRUE(snapshot->Sees(2));
  EXPECT_FALSE(snapshot->Sees(3));
  EXPECT_FALSE(snapshot->Sees(10));
  EXPECT_FALSE(snapshot->Sees(11));
}

TEST(PgSnapshotTest, RefusesWhatIsNotASnapshot) {
  for (const char* text : {"", "1:2", "a:2:", "5:3:", "1:5:7", "1:5:x", "1:2:3:4"}) {
    EXPECT_FALSE(PgSnapshot::Parse(text).ok()) << text;
  }
  absl::StatusOr<PgSnapshot> empty = PgSnapshot::Parse("7:7:");
  ASSERT_OK(empty.status());
  EXPECT_EQ(empty->ToString(), "7:7:");
}

}  // namespace
}  // namespace walfeed::test
