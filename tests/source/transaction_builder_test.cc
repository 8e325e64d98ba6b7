#include "server/source/transaction_builder.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/source/value_converter.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;
using Kind = pgoutput::TupleColumn::Kind;

pgoutput::TupleColumn Text(const std::string& text) { return {Kind::kText, text}; }
pgoutput::TupleColumn Null() { return {Kind::kNull, ""}; }

pgoutput::Relation Orders() {
  pgoutput::Relation r;
  r.relation_id = 16384;
  r.schema = "shop";
  r.name = "orders";
  r.columns = {{true, "id", pg_oid::kInt8, -1}, {false, "note", pg_oid::kText, -1}};
  return r;
}

class TransactionBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    builder_.types().Add(pg_oid::kInt8, "pg_catalog", "int8");
    builder_.types().Add(pg_oid::kText, "pg_catalog", "text");
    Feed(Orders());
  }

  std::optional<Transaction> Feed(pgoutput::Message message) {
    absl::StatusOr<std::optional<Transaction>> done = builder_.Consume(std::move(message), 0);
    EXPECT_OK(done);
    return done.ok() ? std::move(*done) : std::nullopt;
  }

  absl::Status FeedError(pgoutput::Message message) {
    return builder_.Consume(std::move(message), 0).status();
  }

  TransactionBuilder builder_;
};

TEST_F(TransactionBuilderTest, BuildsAWholeTransactionWithPositionsOnCommit) {
  Feed(pgoutput::Begin{0x5000, 1000000, 42});
  Feed(pgoutput::Insert{16384, {Text("1"), Text("hello")}});
  pgoutput::Update update;
  update.relation_id = 16384;
  update.old_kind = 'K';
  update.old_tuple = {Text("1"), Null()};
  update.new_tuple = {Text("2"), Text("moved")};
  Feed(update);
  Feed(pgoutput::Delete{16384, 'K', {Text("2"), Null()}});
  Feed(pgoutput::Truncate{true, false, {16384}});
  Feed(pgoutput::LogicalMessage{true, 0x4FF0, "outbox", "{}"});
  EXPECT_TRUE(builder_.in_transaction());
  std::optional<Transaction> txn = Feed(pgoutput::Commit{0, 0x5000, 0x5030, 1000000});
  ASSERT_TRUE(txn.has_value());
  EXPECT_FALSE(builder_.in_transaction());

  EXPECT_EQ(txn->commit_lsn, 0x5000u);
  EXPECT_EQ(txn->end_lsn, 0x5030u);
  ASSERT_EQ(txn->changes.size(), 5u);
  for (size_t i = 0; i < txn->changes.size(); ++i) {
    const v1::Change& change = txn->changes[i];
    EXPECT_EQ(change.lsn(), 0x5000u);
    EXPECT_EQ(change.seq(), i);
    EXPECT_EQ(change.cursor(), absl::StrCat("0/5000:", i));
    EXPECT_EQ(change.lsn_text(), "0/5000");
    EXPECT_EQ(change.xid(), 42u);
    EXPECT_EQ(change.commit_time().seconds(), 946684801);  // 1 s after 2000-01-01
    EXPECT_EQ(change.last_in_transaction(), i == 4);
  }
  const v1::Change& insert = txn->changes[0];
  EXPECT_EQ(insert.op(), v1::Change::INSERT);
  EXPECT_EQ(insert.schema(), "shop");
  EXPECT_EQ(insert.table(), "orders");
  ASSERT_EQ(insert.key_size(), 1);
  EXPECT_EQ(insert.key(0).name(), "id");
  EXPECT_EQ(insert.key(0).type(), "int8");
  EXPECT_EQ(insert.key(0).int_(), 1);
  ASSERT_EQ(insert.after_size(), 2);
  EXPECT_EQ(insert.after(1).text(), "hello");
  EXPECT_EQ(insert.before_size(), 0);

  const v1::Change& updated = txn->changes[1];
  EXPECT_EQ(updated.op(), v1::Change::UPDATE);
  ASSERT_EQ(updated.before_size(), 1) << "an old key carries only the key columns";
  EXPECT_EQ(updated.before(0).int_(), 1);
  EXPECT_EQ(updated.key(0).int_(), 2);
  EXPECT_EQ(updated.after(1).text(), "moved");

  const v1::Change& deleted = txn->changes[2];
  EXPECT_EQ(deleted.op(), v1::Change::DELETE);
  EXPECT_EQ(deleted.key(0).int_(), 2);
  EXPECT_EQ(deleted.after_size(), 0);

  EXPECT_EQ(txn->changes[3].op(), v1::Change::TRUNCATE);
  EXPECT_TRUE(txn->changes[3].truncate().cascade());
  EXPECT_EQ(txn->changes[4].op(), v1::Change::MESSAGE);
  EXPECT_EQ(txn->changes[4].message().prefix(), "outbox");
  EXPECT_TRUE(txn->changes[4].message().transactional());
}

TEST_F(TransactionBuilderTest, FullReplicaIdentityKeepsTheWholeOldRow) {
  Feed(pgoutput::Begin{0x6000, 0, 1});
  Feed(pgoutput::Delete{16384, 'O', {Text("7"), Text("old note")}});
  std::optional<Transaction> txn = Feed(pgoutput::Commit{0, 0x6000, 0x6030, 0});
  ASSERT_TRUE(txn.has_value());
  ASSERT_EQ(txn->changes[0].before_size(), 2);
  EXPECT_EQ(txn->changes[0].before(1).text(), "old note");
}

TEST_F(TransactionBuilderTest, NonTransactionalMessageIsATransactionOfItsOwn) {
  // pgoutput gives the LSN where the message record ends: the next record may start there.
  std::optional<Transaction> txn = Feed(pgoutput::LogicalMessage{false, 0x7000, "audit", "x"});
  ASSERT_TRUE(txn.has_value());
  EXPECT_EQ(txn->commit_lsn, 0x6FFFu);
  EXPECT_EQ(txn->end_lsn, 0x7000u);
  EXPECT_EQ(txn->changes[0].cursor(), "0/6FFF:0");
  ASSERT_EQ(txn->changes.size(), 1u);
  EXPECT_EQ(txn->changes[0].op(), v1::Change::MESSAGE);
  EXPECT_FALSE(txn->changes[0].message().transactional());
  EXPECT_TRUE(txn->changes[0].last_in_transaction());
}

TEST_F(TransactionBuilderTest, MessageAndATransactionCommittingRightAfterItKeepDistinctPositions) {
  std::optional<Transaction> message = Feed(pgoutput::LogicalMessage{false, 0x7000, "audit", "x"});
  Feed(pgoutput::Begin{0x7000, 0, 9});
  Feed(pgoutput::Insert{16384, {Text("1"), Null()}});
  std::optional<Transaction> txn = Feed(pgoutput::Commit{0, 0x7000, 0x7030, 0});
  ASSERT_TRUE(message.has_value() && txn.has_value());
  EXPECT_LT(message->commit_lsn, txn->commit_lsn);
  EXPECT_LE(message->end_lsn, txn->commit_lsn) << "confirming the message must not skip the commit";
}

TEST_F(TransactionBuilderTest, UnknownTypeIsNamedByItsOid) {
  pgoutput::Relation r;
  r.relation_id = 1;
  r.schema = "public";
  r.name = "odd";
  r.columns = {{false, "v", 99999, -1}};
  Feed(r);
  Feed(pgoutput::Begin{0x8000, 0, 1});
  Feed(pgoutput::Insert{1, {Text("x")}});
  std::optional<Transaction> txn = Feed(pgoutput::Commit{0, 0x8000, 0x8030, 0});
  EXPECT_EQ(txn->changes[0].after(0).type(), "oid:99999");
  EXPECT_EQ(txn->changes[0].after(0).text(), "x");
}

TEST_F(TransactionBuilderTest, ProtocolViolationsAreErrors) {
  EXPECT_THAT(FeedError(pgoutput::Insert{16384, {Text("1"), Null()}}).message(),
              HasSubstr("outside a transaction"));
  EXPECT_THAT(FeedError(pgoutput::Commit{0, 1, 2, 0}).message(),
              HasSubstr("outside a transaction"));
  Feed(pgoutput::Begin{0x9000, 0, 1});
  EXPECT_THAT(FeedError(pgoutput::Insert{777, {Text("1")}}).message(),
              HasSubstr("relation id 777"));
  EXPECT_THAT(FeedError(pgoutput::Begin{0x9100, 0, 2}).message(),
              HasSubstr("inside the transaction"));
  EXPECT_THAT(FeedError(pgoutput::Commit{0, 0x9999, 0x9A00, 0}).message(),
              HasSubstr("does not match"));
}

TEST_F(TransactionBuilderTest, LargeTransactionHandsOutItsChangesInPartsWithFinalPositions) {
  Feed(pgoutput::Begin{0xB000, 0, 1});
  EXPECT_TRUE(builder_.TakeOpenChanges().empty());
  for (int i = 0; i < 5; ++i) Feed(pgoutput::Insert{16384, {Text(std::to_string(i)), Null()}});
  EXPECT_EQ(builder_.open_commit_lsn(), 0xB000u);
  std::vector<v1::Change> first = builder_.TakeOpenChanges();
  ASSERT_EQ(first.size(), 4u) << "the newest change stays";
  EXPECT_EQ(first[3].seq(), 3u);
  EXPECT_FALSE(first[3].last_in_transaction());
  Feed(pgoutput::Insert{16384, {Text("5"), Null()}});
  std::optional<Transaction> txn = Feed(pgoutput::Commit{0, 0xB000, 0xB030, 0});
  ASSERT_TRUE(txn.has_value());
  ASSERT_EQ(txn->changes.size(), 2u);
  EXPECT_EQ(txn->changes[0].seq(), 4u);
  EXPECT_EQ(txn->changes[1].seq(), 5u);
  EXPECT_EQ(txn->changes[1].cursor(), "0/B000:5");
  EXPECT_TRUE(txn->changes[1].last_in_transaction());
}

TEST_F(TransactionBuilderTest, FirstChangeAfterARelationMessageIsMarkedRedescribed) {
  Feed(pgoutput::Begin{0x5000, 1000000, 42});
  Feed(pgoutput::Insert{16384, {Text("1"), Text("a")}});
  Feed(pgoutput::Insert{16384, {Text("2"), Text("b")}});
  Feed(Orders());  // described again (DDL, a rewrite, an invalidation) mid-stream
  Feed(pgoutput::Insert{16384, {Text("3"), Text("c")}});
  Feed(pgoutput::Insert{16384, {Text("4"), Text("d")}});
  std::optional<Transaction> txn = Feed(pgoutput::Commit{0, 0x5000, 0x5030, 1000000});
  ASSERT_TRUE(txn.has_value());
  ASSERT_EQ(txn->changes.size(), 4u);
  EXPECT_TRUE(txn->changes[0].relation_redescribed());
  EXPECT_FALSE(txn->changes[1].relation_redescribed());
  EXPECT_TRUE(txn->changes[2].relation_redescribed());
  EXPECT_FALSE(txn->changes[3].relation_redescribed());
  for (const v1::Change& change : txn->changes) EXPECT_EQ(change.relation_id(), 16384u);
}

}  // namespace
}  // namespace walfeed
