#include "client/debezium_format.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "gtest/gtest.h"

namespace walfeed {
namespace {

v1::Column Int(const std::string& name, int64_t value) {
  v1::Column column;
  column.set_name(name);
  column.set_type("int8");
  column.set_int_(value);
  return column;
}

v1::Column Text(const std::string& name, const std::string& value) {
  v1::Column column;
  column.set_name(name);
  column.set_type("text");
  column.set_text(value);
  return column;
}

v1::Change Change(v1::Change::Op op) {
  v1::Change change;
  change.set_op(op);
  change.set_lsn(0x1506BA8);
  change.set_schema("public");
  change.set_table("orders");
  change.set_xid(771);
  change.mutable_commit_time()->set_seconds(1'700'000'000);
  change.mutable_commit_time()->set_nanos(123'000'000);
  *change.add_key() = Int("id", 1);
  return change;
}

// Parses the envelope as JSON (fails the test when it is not).
google::protobuf::Struct Parse(const std::string& json) {
  google::protobuf::Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  return parsed;
}

std::string Format(const v1::Change& change) {
  return FormatChangeAsDebezium(change, DebeziumSource{"walfeed", "shop"},
                                absl::FromUnixMillis(1'700'000'001'000));
}

TEST(DebeziumFormat, InsertHasAfterSourceAndOpC) {
  v1::Change change = Change(v1::Change::INSERT);
  *change.add_after() = Int("id", 1);
  *change.add_after() = Text("note", "say \"hi\"\n");
  const std::string json = Format(change);
  EXPECT_EQ(json.find('\n'), std::string::npos) << "one line";
  google::protobuf::Struct event = Parse(json);
  EXPECT_EQ(event.fields().at("op").string_value(), "c");
  EXPECT_TRUE(event.fields().at("before").has_null_value());
  const auto& after = event.fields().at("after").struct_value().fields();
  EXPECT_EQ(after.at("id").number_value(), 1);
  EXPECT_EQ(after.at("note").string_value(), "say \"hi\"\n");
  const auto& source = event.fields().at("source").struct_value().fields();
  EXPECT_EQ(source.at("connector").string_value(), "postgresql");
  EXPECT_EQ(source.at("db").string_value(), "shop");
  EXPECT_EQ(source.at("schema").string_value(), "public");
  EXPECT_EQ(source.at("table").string_value(), "orders");
  EXPECT_EQ(source.at("txId").number_value(), 771);
  EXPECT_EQ(source.at("lsn").number_value(), 0x1506BA8);
  EXPECT_EQ(source.at("ts_ms").number_value(), 1'700'000'000'123.0);
  EXPECT_EQ(source.at("snapshot").string_value(), "false");
  EXPECT_FALSE(source.contains("resync"));
  EXPECT_EQ(event.fields().at("ts_ms").number_value(), 1'700'000'001'000.0);

  change.set_resync(true);  // from a resynchronisation after a lost slot
  const auto resynced = Parse(Format(change)).fields().at("source").struct_value().fields();
  EXPECT_TRUE(resynced.at("resync").bool_value());
}

TEST(DebeziumFormat, OpCodesAndRowsPerOperation) {
  v1::Change update = Change(v1::Change::UPDATE);
  *update.add_after() = Int("id", 1);
  EXPECT_EQ(Parse(Format(update)).fields().at("op").string_value(), "u");
  EXPECT_TRUE(Parse(Format(update)).fields().at("before").has_null_value())
      << "REPLICA IDENTITY DEFAULT sends no old row";

  v1::Change full_update = update;
  *full_update.add_before() = Int("id", 0);
  EXPECT_EQ(Parse(Format(full_update))
                .fields()
                .at("before")
                .struct_value()
                .fields()
                .at("id")
                .number_value(),
            0);

  google::protobuf::Struct deleted = Parse(Format(Change(v1::Change::DELETE)));
  EXPECT_EQ(deleted.fields().at("op").string_value(), "d");
  EXPECT_TRUE(deleted.fields().at("after").has_null_value());
  EXPECT_EQ(deleted.fields().at("before").struct_value().fields().at("id").number_value(), 1)
      << "the old key";

  v1::Change read = Change(v1::Change::READ);
  *read.add_after() = Int("id", 1);
  google::protobuf::Struct snapshot = Parse(Format(read));
  EXPECT_EQ(snapshot.fields().at("op").string_value(), "r");
  EXPECT_EQ(snapshot.fields().at("source").struct_value().fields().at("snapshot").string_value(),
            "true");

  google::protobuf::Struct truncated = Parse(Format(Change(v1::Change::TRUNCATE)));
  EXPECT_EQ(truncated.fields().at("op").string_value(), "t");
  EXPECT_TRUE(truncated.fields().at("before").has_null_value());
  EXPECT_TRUE(truncated.fields().at("after").has_null_value());

  v1::Change message = Change(v1::Change::MESSAGE);
  message.mutable_message()->set_prefix("app");
  message.mutable_message()->set_content("hi");
  google::protobuf::Struct logical = Parse(Format(message));
  EXPECT_EQ(logical.fields().at("op").string_value(), "m");
  EXPECT_EQ(logical.fields().at("message").struct_value().fields().at("content").string_value(),
            "aGk=");
}

TEST(DebeziumFormat, ValuesFollowTheConnectorsDefaults) {
  v1::Change change = Change(v1::Change::INSERT);
  auto add = [&](const std::string& name, const std::string& type) {
    v1::Column* column = change.add_after();
    column->set_name(name);
    column->set_type(type);
    return column;
  };
  add("amount", "numeric")->set_numeric("12.50");
  add("payload", "bytea")->set_bytes(std::string("\x00\xff", 2));
  add("doc", "jsonb")->set_json(R"({"a": 1})");
  google::protobuf::Timestamp* at = add("at", "timestamptz")->mutable_timestamp();
  at->set_seconds(1'700'000'000);
  at->set_nanos(5'000);
  add("local", "timestamp")->mutable_timestamp()->set_seconds(2);
  add("day", "date")->set_date("1970-01-11");
  add("ratio", "float8")->set_float_(std::nan(""));
  add("flag", "bool")->set_bool_(true);
  add("gone", "text")->set_null(true);
  add("big", "text")->set_unchanged_toast(true);
  add("id2", "uuid")->set_uuid("0b8f6d1e-0000-4000-8000-000000000000");
  const google::protobuf::Struct event = Parse(Format(change));
  const auto& after = event.fields().at("after").struct_value().fields();
  EXPECT_EQ(after.at("amount").string_value(), "12.50");
  EXPECT_EQ(after.at("payload").string_value(), "AP8=");
  EXPECT_EQ(after.at("doc").string_value(), R"({"a": 1})");
  EXPECT_EQ(after.at("at").string_value(), "2023-11-14T22:13:20.000005Z");
  EXPECT_EQ(after.at("local").number_value(), 2'000'000);
  EXPECT_EQ(after.at("day").number_value(), 10);
  EXPECT_EQ(after.at("ratio").string_value(), "NaN");
  EXPECT_TRUE(after.at("flag").bool_value());
  EXPECT_TRUE(after.at("gone").has_null_value());
  EXPECT_EQ(after.at("big").string_value(), "__debezium_unavailable_value");
  EXPECT_EQ(after.at("id2").string_value(), "0b8f6d1e-0000-4000-8000-000000000000");
}

}  // namespace
}  // namespace walfeed
