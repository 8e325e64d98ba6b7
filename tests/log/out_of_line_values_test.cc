// Values too large for one stream message leave the change for chunks under a reference, come
// back byte for byte, and go when their change goes.
#include "server/log/out_of_line_values.h"

#include <google/protobuf/util/message_differencer.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/error_reason.h"
#include "server/log/change_log.h"
#include "tests/support/memory_value_store.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_log_test.h"

namespace walfeed {
namespace {

using google::protobuf::util::MessageDifferencer;
using test::MemoryValueStore;

constexpr Position kAt{0x5000, 2};

v1::Column TextColumn(const std::string& name, std::string text) {
  v1::Column column;
  column.set_name(name);
  column.set_type("text");
  column.set_type_oid(25);
  column.set_text(std::move(text));
  return column;
}

v1::Column IntColumn(const std::string& name, int64_t value) {
  v1::Column column;
  column.set_name(name);
  column.set_type("int8");
  column.set_type_oid(20);
  column.set_int_(value);
  return column;
}

// A pseudo-random printable text (compressible values would hide size mistakes in RocksDB).
std::string Text(size_t size, uint32_t seed) {
  std::string text(size, ' ');
  for (size_t i = 0; i < size; ++i) {
    seed = seed * 1103515245 + 12345;
    text[i] = static_cast<char>('a' + (seed >> 16) % 26);
  }
  return text;
}

v1::Change Row(int64_t id, std::vector<v1::Column> values,
               v1::Change::KeyKind kind = v1::Change::PRIMARY_KEY) {
  v1::Change change;
  change.set_lsn(kAt.lsn);
  change.set_seq(kAt.seq);
  change.set_op(v1::Change::INSERT);
  change.set_schema("public");
  change.set_table("docs");
  change.set_relation_id(16400);
  change.set_key_kind(kind);
  *change.add_key() = IntColumn("id", id);
  *change.add_after() = IntColumn("id", id);
  for (v1::Column& column : values) *change.add_after() = std::move(column);
  return change;
}

TEST(OutOfLineValues, ASmallChangeStaysAsItIs) {
  const v1::Change original = Row(1, {TextColumn("doc", Text(1000, 1))});
  EXPECT_FALSE(MayMoveOutOfLine(original, OutOfLineLimits()));
  v1::Change change = original;
  MemoryValueStore store;
  ASSERT_OK(MoveOutOfLine(OutOfLineLimits(), kAt, &change, &store));
  EXPECT_TRUE(MessageDifferencer::Equals(change, original));
  EXPECT_EQ(store.chunk_count(), 0u);
}

TEST(OutOfLineValues, EveryValueOverTheLimitLeavesAndComesBackExactly) {
  v1::Column bytes;
  bytes.set_name("blob");
  bytes.set_type("bytea");
  bytes.set_type_oid(17);
  bytes.set_bytes(std::string(300 << 10, '\0') + "\xff\xfe");
  v1::Column raw;
  raw.set_name("latin");
  raw.set_type("text");
  raw.set_raw_text(std::string(270 << 10, '\xe9'));
  raw.set_raw_text_encoding("SQL_ASCII");
  const v1::Change original = Row(1, {TextColumn("doc", Text(600 << 10, 2)), bytes, raw});
  v1::Change change = original;
  MemoryValueStore store;
  ASSERT_TRUE(MayMoveOutOfLine(change, OutOfLineLimits()));
  ASSERT_OK(MoveOutOfLine(OutOfLineLimits(), kAt, &change, &store));
  EXPECT_LT(change.ByteSizeLong(), 1024u);
  ASSERT_EQ(change.after(1).value_case(), v1::Column::kLarge);
  EXPECT_EQ(change.after(1).large().ref(), "0/5000:2/after/1");
  EXPECT_EQ(change.after(1).large().size(), 600u << 10);
  EXPECT_EQ(change.after(1).large().kind(), v1::LargeValue::TEXT);
  EXPECT_EQ(change.after(1).name(), "doc");
  EXPECT_EQ(change.after(2).large().kind(), v1::LargeValue::BYTES);
  EXPECT_EQ(change.after(3).large().kind(), v1::LargeValue::RAW_TEXT);
  EXPECT_EQ(change.after(3).raw_text_encoding(), "SQL_ASCII");
  EXPECT_TRUE(HasOutOfLineValues(change));
  EXPECT_EQ(OutOfLineBytes(change), (600u << 10) + (300u << 10) + 2 + (270u << 10));
  store.Restore(&change);
  EXPECT_TRUE(MessageDifferencer::Equals(change, original));
}

TEST(OutOfLineValues, AChangeStillTooLargeLosesItsLongestValuesFirst) {
  std::vector<v1::Column> values;
  for (int i = 0; i < 8; ++i) {
    values.push_back(TextColumn("c" + std::to_string(i), Text((200 << 10) + i * 1000, i)));
  }
  const v1::Change original = Row(1, values);
  v1::Change change = original;
  MemoryValueStore store;
  ASSERT_OK(MoveOutOfLine(OutOfLineLimits(), kAt, &change, &store));
  EXPECT_LE(change.ByteSizeLong(), size_t{1} << 20);
  // 1.6 MB to bring under 1 MiB: the three longest (the last three columns) left.
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(change.after(1 + i).value_case() == v1::Column::kLarge, i >= 5) << i;
  }
  store.Restore(&change);
  EXPECT_TRUE(MessageDifferencer::Equals(change, original));
}

TEST(OutOfLineValues, KeysOfMergedRowsStayAndFullRowKeysMayLeave) {
  v1::Change merged = Row(1, {});
  *merged.mutable_key(0) = TextColumn("id", Text(300 << 10, 3));
  MemoryValueStore store;
  ASSERT_OK(MoveOutOfLine(OutOfLineLimits(), kAt, &merged, &store));
  EXPECT_EQ(merged.key(0).value_case(), v1::Column::kText) << "the index reads row keys";
  // The old key of an UPDATE that changed it: the index reads it from `before`.
  v1::Change moved_key = Row(1, {TextColumn("doc", Text(300 << 10, 4))});
  moved_key.set_op(v1::Change::UPDATE);
  *moved_key.mutable_key(0) = TextColumn("id", Text(300 << 10, 5));
  *moved_key.add_before() = TextColumn("id", Text(300 << 10, 6));
  ASSERT_OK(MoveOutOfLine(OutOfLineLimits(), kAt, &moved_key, &store));
  EXPECT_EQ(moved_key.before(0).value_case(), v1::Column::kText);
  EXPECT_EQ(moved_key.after(1).value_case(), v1::Column::kLarge) << "other values still leave";

  v1::Change full = Row(1, {}, v1::Change::FULL_ROW);
  *full.mutable_key(0) = TextColumn("id", Text(300 << 10, 3));
  ASSERT_OK(MoveOutOfLine(OutOfLineLimits(), kAt, &full, &store));
  EXPECT_EQ(full.key(0).large().ref(), "0/5000:2/key/0");
}

TEST(OutOfLineValues, AMessagesLargeContentLeaves) {
  v1::Change original;
  original.set_op(v1::Change::MESSAGE);
  original.mutable_message()->set_prefix("big");
  original.mutable_message()->set_content(Text(2 << 20, 4));
  v1::Change change = original;
  MemoryValueStore store;
  ASSERT_OK(MoveOutOfLine(OutOfLineLimits(), kAt, &change, &store));
  EXPECT_TRUE(change.message().content().empty());
  EXPECT_EQ(change.message().large_content().ref(), "0/5000:2/message/0");
  EXPECT_EQ(change.message().large_content().size(), 2u << 20);
  store.Restore(&change);
  EXPECT_TRUE(MessageDifferencer::Equals(change, original));
}

TEST(OutOfLineValues, AReferenceToAnOlderChangeIsCopiedOrElseMarked) {
  MemoryValueStore store;
  v1::Change older = Row(1, {TextColumn("doc", Text(400 << 10, 5))});
  const Position older_at{0x4000, 0};
  ASSERT_OK(MoveOutOfLine(OutOfLineLimits(), older_at, &older, &store));

  // The TOAST filler took the older image's column as it is stored: a reference.
  v1::Change filled = Row(1, {older.after(1)});
  ASSERT_TRUE(MayMoveOutOfLine(filled, OutOfLineLimits()));
  ASSERT_OK(MoveOutOfLine(OutOfLineLimits(), kAt, &filled, &store));
  EXPECT_EQ(filled.after(1).large().ref(), "0/5000:2/after/1") << "its own copy";
  EXPECT_EQ(store.Value("0/5000:2/after/1"), Text(400 << 10, 5));

  // A reference whose chunks are gone: the marker, never a guess.
  v1::Change dangling = Row(1, {older.after(1)});
  dangling.mutable_after(1)->mutable_large()->set_ref("0/3000:0/after/1");
  ASSERT_OK(MoveOutOfLine(OutOfLineLimits(), kAt, &dangling, &store));
  EXPECT_TRUE(dangling.after(1).unchanged_toast());
}

class ChangeLogOutOfLine : public test::TempLogTest {
 protected:
  // Appends `change` alone in a transaction at the next LSN; returns its position.
  Position Append(v1::Change change) {
    next_lsn_ += 0x100;
    change.set_lsn(next_lsn_);
    change.set_seq(0);
    Transaction txn;
    txn.commit_lsn = next_lsn_;
    txn.end_lsn = next_lsn_ + 0x30;
    txn.changes.push_back(std::move(change));
    EXPECT_OK(log_->Append({txn}, next_lsn_ + 0x30));
    return Position{next_lsn_, 0};
  }

  v1::Change Stored(const Position& position) {
    std::vector<LogRecord> records;
    EXPECT_OK(log_->Read(position, 1, size_t{1} << 30, &records));
    v1::Change change;
    EXPECT_TRUE(!records.empty() && change.ParseFromString(records[0].change));
    return change;
  }

  // The whole value at `ref`, read in chunks as ReadValue does.
  std::string ReadWhole(const std::string& ref_text) {
    const ValueRef ref = *ParseValueRef(ref_text);
    std::string value;
    for (;;) {
      absl::StatusOr<std::string> chunk = log_->ReadLargeValue(ref, value.size(), 100000);
      EXPECT_OK(chunk);
      if (!chunk.ok() || chunk->empty()) return value;
      EXPECT_LE(chunk->size(), 100000u);
      value += *chunk;
    }
  }

  uint64_t next_lsn_ = 0x1000;
};

TEST_F(ChangeLogOutOfLine, AppendStoresLargeValuesApartAndReadsThemBackInChunks) {
  const std::string doc = Text(3 << 20, 6);
  const Position at = Append(Row(1, {TextColumn("doc", doc)}));
  std::vector<LogRecord> records;
  ASSERT_OK(log_->Read({}, 10, size_t{1} << 30, &records));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_LT(records[0].change.size(), 1024u);
  const v1::Change stored = Stored(at);
  ASSERT_EQ(stored.after(1).value_case(), v1::Column::kLarge);
  const std::string ref = stored.after(1).large().ref();

  absl::StatusOr<v1::LargeValue> found = log_->FindLargeValue(*ParseValueRef(ref));
  ASSERT_OK(found);
  EXPECT_EQ(found->size(), doc.size());
  EXPECT_EQ(ReadWhole(ref), doc);
  // From the middle of a chunk on.
  absl::StatusOr<std::string> tail =
      log_->ReadLargeValue(*ParseValueRef(ref), doc.size() - 10, 1 << 20);
  ASSERT_OK(tail);
  EXPECT_EQ(*tail, doc.substr(doc.size() - 10));

  for (const char* missing : {"0/1100:0/after/0", "0/1100:0/before/1", "0/1100:0/message/0",
                              "0/1100:1/after/1", "0/9900:0/after/1"}) {
    absl::StatusOr<v1::LargeValue> none = log_->FindLargeValue(*ParseValueRef(missing));
    EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound) << missing;
    EXPECT_EQ(ReasonOf(none.status()), reason::kValueNotFound);
  }
}

TEST_F(ChangeLogOutOfLine, CompactionRemovesTheValuesWithTheirChange) {
  const std::string doc = Text(1 << 20, 7);
  const Position first = Append(Row(1, {TextColumn("doc", doc)}));
  const std::string ref = Stored(first).after(1).large().ref();
  Append(Row(1, {TextColumn("doc", "short")}));  // supersedes it
  CompactionPolicy policy;
  policy.lag = absl::ZeroDuration();
  ASSERT_OK(log_->Compact(policy, absl::Now() + absl::Hours(1)));
  EXPECT_EQ(log_->FindLargeValue(*ParseValueRef(ref)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadWhole(ref), "") << "its chunks went with it";
}

TEST_F(ChangeLogOutOfLine, DiscardedStagedChangesTakeTheirValuesAlong) {
  v1::Change staged = Row(1, {TextColumn("doc", Text(1 << 20, 8))});
  staged.set_lsn(0x9000);
  staged.set_op(v1::Change::READ);
  ASSERT_OK(log_->StageChanges({staged}));
  EXPECT_EQ(log_->FindLargeValue(*ParseValueRef("0/9000:2/after/1")).status().code(),
            absl::StatusCode::kNotFound)
      << "staged changes are invisible";
  ASSERT_OK(log_->DiscardStaged());
  EXPECT_EQ(ReadWhole("0/9000:2/after/1"), "");
}

TEST_F(ChangeLogOutOfLine, AFilledValueGetsItsOwnCopyThatOutlivesTheImage) {
  const std::string doc = Text(2 << 20, 9);
  Append(Row(1, {IntColumn("version", 0), TextColumn("doc", doc)}));
  v1::Change update = Row(1, {IntColumn("version", 1), TextColumn("doc", "")});
  update.set_op(v1::Change::UPDATE);
  update.mutable_after(2)->set_unchanged_toast(true);
  const Position updated = Append(update);
  const v1::Change stored = Stored(updated);
  ASSERT_EQ(stored.after(2).value_case(), v1::Column::kLarge) << stored.DebugString();
  const std::string ref = stored.after(2).large().ref();
  EXPECT_EQ(ref, FormatValueRef({updated, ValuePart::kAfter, 2}));
  CompactionPolicy policy;
  policy.lag = absl::ZeroDuration();
  ASSERT_OK(log_->Compact(policy, absl::Now() + absl::Hours(1)));
  EXPECT_EQ(ReadWhole(ref), doc) << "the insert is gone, the update's copy is not";
}

}  // namespace
}  // namespace walfeed
