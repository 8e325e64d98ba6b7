// TableCapture (server/source/table_capture.h) against an in-memory sink: which tables are added,
// when the record is written, and when a streamed change of a new table ends the session.
#include "server/source/table_capture.h"

#include "gtest/gtest.h"
#include "server/core/metadata_keys.h"
#include "tests/support/recording_sink.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

const TableName kOrders{"public", "orders"};
const TableName kItems{"public", "items"};
const TableName kOdd{"sch.ema", "ta\nble"};

TEST(TableCapture, AFirstRecordTakesEveryTableAsItIsAndIsWrittenOnce) {
  RecordingSink sink;
  TableCapture capture(&sink, SnapshotMode::kInitial);
  ASSERT_OK(capture.Load({kOrders, kOdd}, /*snapshot_pending=*/false));
  EXPECT_TRUE(capture.added().empty());
  EXPECT_EQ(sink.metadata_writes(), 1);
  EXPECT_FALSE(sink.Metadata(kCapturedTablesKey).empty());
  // A reconnect with the same tables writes nothing (say, to a full disk).
  TableCapture again(&sink, SnapshotMode::kInitial);
  ASSERT_OK(again.Load({kOrders, kOdd}, false));
  EXPECT_TRUE(again.added().empty());
  EXPECT_EQ(sink.metadata_writes(), 1);
}

TEST(TableCapture, ATableMissingFromTheRecordIsAddedUntilItsRowsAreRead) {
  RecordingSink sink;
  TableCapture first(&sink, SnapshotMode::kInitial);
  ASSERT_OK(first.Load({kOrders}, false));
  TableCapture capture(&sink, SnapshotMode::kInitial);
  ASSERT_OK(capture.Load({kOrders, kItems, kOdd}, false));
  EXPECT_EQ(capture.added(),
            (TableCapture::TableList{{"public", "items"}, {"sch.ema", "ta\nble"}}));
  capture.MarkCaptured(capture.added());
  EXPECT_TRUE(capture.added().empty());
  ASSERT_OK(capture.Store());
  TableCapture after(&sink, SnapshotMode::kInitial);
  ASSERT_OK(after.Load({kOrders, kItems, kOdd}, false));
  EXPECT_TRUE(after.added().empty());
}

TEST(TableCapture, UnderSnapshotNeverNewTablesAreTakenAsTheyAre) {
  RecordingSink sink;
  TableCapture first(&sink, SnapshotMode::kNever);
  ASSERT_OK(first.Load({kOrders}, false));
  TableCapture capture(&sink, SnapshotMode::kNever);
  ASSERT_OK(capture.Load({kOrders, kItems}, false));
  EXPECT_TRUE(capture.added().empty());
  EXPECT_OK(capture.CheckStreamed(kOdd));
  EXPECT_FALSE(capture.TakeTableAdded());
}

TEST(TableCapture, APendingSnapshotLeavesTheRecordToTheSnapshot) {
  RecordingSink sink;
  TableCapture capture(&sink, SnapshotMode::kInitial);
  ASSERT_OK(capture.Load({kOrders, kItems}, /*snapshot_pending=*/true));
  EXPECT_TRUE(capture.added().empty());
  EXPECT_EQ(sink.metadata_writes(), 0);
}

TEST(TableCapture, ANewTableWhileStreamingEndsTheSessionOnceThenStreams) {
  RecordingSink sink;
  TableCapture capture(&sink, SnapshotMode::kInitial);
  ASSERT_OK(capture.Load({kOrders}, false));
  EXPECT_OK(capture.CheckStreamed(kOrders));
  absl::Status added = capture.CheckStreamed(kItems);
  EXPECT_EQ(added.code(), absl::StatusCode::kAborted);
  EXPECT_NE(added.message().find("public.items"), absl::string_view::npos) << added;
  EXPECT_TRUE(capture.TakeTableAdded());
  EXPECT_FALSE(capture.TakeTableAdded());
  // The publication does not list it (a second session saw it again): streamed as it is, and
  // recorded, so that no third session stops for it.
  EXPECT_OK(capture.CheckStreamed(kItems));
  EXPECT_FALSE(capture.TakeTableAdded());
  TableCapture after(&sink, SnapshotMode::kInitial);
  ASSERT_OK(after.Load({kOrders, kItems}, false));
  EXPECT_TRUE(after.added().empty());
}

TEST(TableCapture, ACorruptRecordIsAnErrorNamingIt) {
  RecordingSink sink;
  ASSERT_OK(sink.SetMetadata(kCapturedTablesKey, "tables-v2:99:x"));
  TableCapture capture(&sink, SnapshotMode::kInitial);
  absl::Status loaded = capture.Load({kOrders}, false);
  EXPECT_FALSE(loaded.ok());
}

}  // namespace
}  // namespace walfeed::test
