#include "server/source/pgoutput_decoder.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/source/wire_bytes.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

using test::FromHex;
using test::WireBytes;
using ::testing::HasSubstr;

template <typename T>
T DecodeAs(const std::string& bytes) {
  absl::StatusOr<pgoutput::Message> message = DecodePgOutputMessage(bytes);
  EXPECT_OK(message);
  EXPECT_TRUE(message.ok() && std::holds_alternative<T>(*message));
  return message.ok() && std::holds_alternative<T>(*message) ? std::get<T>(*message) : T{};
}

// The bytes PostgreSQL 15 sent for INSERT INTO t VALUES (1, 'one', 10) (see
// POSTGRES-REPLICATION.md), as captured on this machine.
TEST(PgOutputDecoder, DecodesRecordedBeginInsertCommit) {
  const auto begin =
      DecodeAs<pgoutput::Begin>(FromHex("42 0000000001528780 000303f9e130b6e2 000002d6"));
  EXPECT_EQ(begin.final_lsn, 0x1528780u);
  EXPECT_EQ(begin.commit_time, 0x000303f9e130b6e2);
  EXPECT_EQ(begin.xid, 0x2d6u);

  const auto insert = DecodeAs<pgoutput::Insert>(
      FromHex("49 00004000 4e 0003 74 00000001 31 74 00000003 6f6e65 74 00000002 3130"));
  EXPECT_EQ(insert.relation_id, 0x4000u);
  ASSERT_EQ(insert.new_tuple.size(), 3u);
  EXPECT_EQ(insert.new_tuple[0].kind, pgoutput::TupleColumn::Kind::kText);
  EXPECT_EQ(insert.new_tuple[0].data, "1");
  EXPECT_EQ(insert.new_tuple[1].data, "one");
  EXPECT_EQ(insert.new_tuple[2].data, "10");

  const auto commit = DecodeAs<pgoutput::Commit>(
      FromHex("43 00 0000000001528780 00000000015287b0 000303f9e130b6e2"));
  EXPECT_EQ(commit.commit_lsn, 0x1528780u);
  EXPECT_EQ(commit.end_lsn, 0x15287b0u);
  EXPECT_EQ(commit.commit_time, 0x000303f9e130b6e2);
}

TEST(PgOutputDecoder, DecodesRelation) {
  WireBytes b;
  b.Char('R').U32(16384).CString("public").CString("orders").U8('d').U16(2);
  b.U8(1).CString("id").U32(20).U32(0xFFFFFFFF);
  b.U8(0).CString("note").U32(25).U32(0xFFFFFFFF);
  const auto relation = DecodeAs<pgoutput::Relation>(b.str());
  EXPECT_EQ(relation.relation_id, 16384u);
  EXPECT_EQ(relation.schema, "public");
  EXPECT_EQ(relation.name, "orders");
  EXPECT_EQ(relation.replica_identity, 'd');
  ASSERT_EQ(relation.columns.size(), 2u);
  EXPECT_TRUE(relation.columns[0].is_key);
  EXPECT_EQ(relation.columns[0].name, "id");
  EXPECT_EQ(relation.columns[0].type_oid, 20u);
  EXPECT_EQ(relation.columns[0].type_modifier, -1);
  EXPECT_FALSE(relation.columns[1].is_key);
}

TEST(PgOutputDecoder, DecodesType) {
  WireBytes b;
  b.Char('Y').U32(50000).CString("app").CString("mood");
  const auto type = DecodeAs<pgoutput::Type>(b.str());
  EXPECT_EQ(type.type_oid, 50000u);
  EXPECT_EQ(type.schema, "app");
  EXPECT_EQ(type.name, "mood");
}

TEST(PgOutputDecoder, DecodesUpdateWithAndWithoutOldTuple) {
  WireBytes plain;
  plain.Char('U').U32(7).Char('N').U16(2).Text("1").Char('u');
  const auto update = DecodeAs<pgoutput::Update>(plain.str());
  EXPECT_EQ(update.old_kind, 0);
  ASSERT_EQ(update.new_tuple.size(), 2u);
  EXPECT_EQ(update.new_tuple[1].kind, pgoutput::TupleColumn::Kind::kUnchangedToast);

  WireBytes keyed;
  keyed.Char('U').U32(7).Char('K').U16(2).Text("1").Char('n').Char('N').U16(2).Text("2").Text("x");
  const auto key_update = DecodeAs<pgoutput::Update>(keyed.str());
  EXPECT_EQ(key_update.old_kind, 'K');
  EXPECT_EQ(key_update.old_tuple[0].data, "1");
  EXPECT_EQ(key_update.old_tuple[1].kind, pgoutput::TupleColumn::Kind::kNull);
  EXPECT_EQ(key_update.new_tuple[0].data, "2");

  WireBytes full;
  full.Char('U').U32(7).Char('O').U16(1).Text("a").Char('N').U16(1).Text("b");
  EXPECT_EQ(DecodeAs<pgoutput::Update>(full.str()).old_kind, 'O');
}

TEST(PgOutputDecoder, DecodesDelete) {
  WireBytes b;
  b.Char('D').U32(7).Char('O').U16(2).Text("1").Char('n');
  const auto del = DecodeAs<pgoutput::Delete>(b.str());
  EXPECT_EQ(del.relation_id, 7u);
  EXPECT_EQ(del.old_kind, 'O');
  EXPECT_EQ(del.old_tuple.size(), 2u);
}

TEST(PgOutputDecoder, DecodesTruncate) {
  WireBytes b;
  b.Char('T').U32(2).U8(3).U32(10).U32(11);
  const auto truncate = DecodeAs<pgoutput::Truncate>(b.str());
  EXPECT_TRUE(truncate.cascade);
  EXPECT_TRUE(truncate.restart_identity);
  EXPECT_EQ(truncate.relation_ids, (std::vector<uint32_t>{10, 11}));
}

TEST(PgOutputDecoder, DecodesLogicalMessageAndOrigin) {
  WireBytes m;
  m.Char('M').U8(1).U64(0x1234).CString("outbox").U32(5).Bytes(std::string("he\0lo", 5));
  const auto message = DecodeAs<pgoutput::LogicalMessage>(m.str());
  EXPECT_TRUE(message.transactional);
  EXPECT_EQ(message.lsn, 0x1234u);
  EXPECT_EQ(message.prefix, "outbox");
  EXPECT_EQ(message.content, std::string("he\0lo", 5));

  WireBytes o;
  o.Char('O').U64(0x99).CString("upstream");
  EXPECT_EQ(DecodeAs<pgoutput::Origin>(o.str()).name, "upstream");
}

TEST(PgOutputDecoder, DecodesBinaryAndNullColumns) {
  WireBytes b;
  b.Char('I').U32(1).Char('N').U16(2).Char('b').U32(2).Bytes("\x01\x02").Char('n');
  const auto insert = DecodeAs<pgoutput::Insert>(b.str());
  EXPECT_EQ(insert.new_tuple[0].kind, pgoutput::TupleColumn::Kind::kBinary);
  EXPECT_EQ(insert.new_tuple[0].data, "\x01\x02");
  EXPECT_EQ(insert.new_tuple[1].kind, pgoutput::TupleColumn::Kind::kNull);
}

TEST(PgOutputDecoder, RejectsEveryTruncationOfAValidMessage) {
  WireBytes b;
  b.Char('U').U32(7).Char('K').U16(2).Text("1").Char('n').Char('N').U16(2).Text("2").Text("xyz");
  const std::string whole = b.str();
  for (size_t length = 0; length < whole.size(); ++length) {
    absl::StatusOr<pgoutput::Message> message = DecodePgOutputMessage(whole.substr(0, length));
    EXPECT_FALSE(message.ok()) << "length " << length;
    EXPECT_EQ(message.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(PgOutputDecoder, RejectsMalformedMessagesWithAReason) {
  struct Case {
    std::string bytes;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {"Z", "unknown message type 0x5a"},
      {WireBytes().Char('I').U32(1).Char('X').str(), "expected new tuple marker N"},
      {WireBytes().Char('I').U32(1).Char('N').U16(1).Char('q').str(), "column kind 0x71"},
      {WireBytes().Char('I').U32(1).Char('N').U16(1).Char('t').U32(0xFFFFFFF0).str(),
       "TupleData value"},
      {WireBytes().Char('I').U32(1).Char('N').U16(60000).str(), "more than PostgreSQL allows"},
      {WireBytes().Char('R').U32(1).CString("s").Bytes("no-nul").str(), "no terminating NUL"},
      {WireBytes().Char('R').U32(1).CString("s").CString("t").U8('z').U16(0).str(),
       "replica identity"},
      {WireBytes().Char('T').U32(1000000).U8(0).U32(1).str(), "room for"},
      {WireBytes().Char('B').U64(1).U64(2).U32(3).U8(0).str(), "unexpected bytes"},
      {WireBytes().Char('D').U32(1).Char('N').str(), "old tuple marker"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<pgoutput::Message> message = DecodePgOutputMessage(c.bytes);
    ASSERT_FALSE(message.ok()) << c.reason;
    EXPECT_THAT(message.status().message(), HasSubstr(c.reason));
  }
}

}  // namespace
}  // namespace walfeed
