// The read path's wire handling agrees with protobuf: summaries match the parsed change, and a
// built response parses as the SubscribeResponse it stands for.
#include "server/feed/change_wire.h"

#include "gtest/gtest.h"
#include "tests/support/status_assertions.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {
namespace {

v1::Change SampleChange() {
  v1::Change change;
  change.set_lsn(0x16B3748);
  change.set_seq(3);
  change.set_cursor("0/16B3748:3");
  change.set_op(v1::Change::UPDATE);
  change.set_schema("shop");
  change.set_table("orders");
  v1::Column* column = change.add_after();
  column->set_name("note");
  column->set_text("caf\xc3\xa9");
  column = change.add_after();
  column->set_name("ratio");
  column->set_float_(0.5);  // a fixed64 field inside
  change.mutable_commit_time()->set_seconds(1'800'000'000);
  change.set_xid(742);
  change.set_last_in_transaction(true);
  change.set_key_kind(v1::Change::PRIMARY_KEY);
  return change;
}

TEST(ChangeWire, SummaryReadsOpTableAndLastFlagFromTheStoredBytes) {
  const std::string stored = SampleChange().SerializeAsString();
  ChangeSummary summary;
  ASSERT_TRUE(SummarizeChange(stored, &summary));
  EXPECT_EQ(summary.lsn, 0x16B3748u);
  EXPECT_EQ(summary.seq, 3u);
  EXPECT_EQ(summary.op, v1::Change::UPDATE);
  EXPECT_EQ(summary.schema, "shop");
  EXPECT_EQ(summary.table, "orders");
  EXPECT_TRUE(summary.last_in_transaction);

  v1::Change message;
  message.set_op(v1::Change::MESSAGE);
  ASSERT_TRUE(SummarizeChange(message.SerializeAsString(), &summary));
  EXPECT_EQ(summary.op, v1::Change::MESSAGE);
  EXPECT_TRUE(summary.table.empty());
  EXPECT_FALSE(summary.last_in_transaction);
}

TEST(ChangeWire, MalformedBytesAreRejectedNotOverread) {
  const std::string stored = SampleChange().SerializeAsString();
  ChangeSummary summary;
  for (size_t cut = 1; cut < stored.size(); ++cut) {
    // Every strict prefix either fails or stops at a field boundary; none reads past the end.
    (void)SummarizeChange(absl::string_view(stored).substr(0, cut), &summary);
  }
  EXPECT_FALSE(SummarizeChange(std::string("\x2a\xff\xff\xff\xff\x0f", 6), &summary));
  EXPECT_FALSE(SummarizeChange(std::string("\x0b", 1), &summary)) << "a group tag";
}

TEST(ChangeWire, BuiltResponseParsesAsTheSubscribeResponse) {
  const v1::Change first = SampleChange();
  v1::Change second = SampleChange();
  second.set_seq(4);
  second.set_table(std::string(300, 't'));  // a length needing a two-byte varint
  ResponseBuilder builder;
  builder.AddChange(first.SerializeAsString());
  builder.AddChange(second.SerializeAsString());
  EXPECT_EQ(builder.changes(), 2u);
  grpc::ByteBuffer buffer = builder.Finish("0/16B3748:4", "0/16B3748:9", "log-a");
  EXPECT_EQ(builder.changes(), 0u);
  std::vector<grpc::Slice> slices;
  ASSERT_OK(buffer.Dump(&slices));
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  v1::SubscribeResponse response;
  ASSERT_TRUE(response.ParseFromString(bytes));
  ASSERT_EQ(response.changes_size(), 2);
  EXPECT_EQ(response.changes(0).SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(response.changes(1).table(), second.table());
  EXPECT_EQ(response.cursor(), "0/16B3748:4");
  EXPECT_EQ(response.head_cursor(), "0/16B3748:9");
  EXPECT_EQ(response.log_id(), "log-a");

  // A progress message: cursors only.
  grpc::ByteBuffer progress = builder.Finish("0/1:0", "0/2:0", "log-a");
  slices.clear();
  ASSERT_OK(progress.Dump(&slices));
  bytes.clear();
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  ASSERT_TRUE(response.ParseFromString(bytes));
  EXPECT_EQ(response.changes_size(), 0);
  EXPECT_EQ(response.cursor(), "0/1:0");
  EXPECT_EQ(response.log_id(), "log-a");
}

}  // namespace
}  // namespace walfeed
