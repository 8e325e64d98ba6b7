// ChangeLog as LoggedRows: the newest live image of each row (deleted and truncated rows are not
// live), the rows a resynchronisation has not seen, tables whose rows the log stopped following by
// key, and values stored out of line compared with inline ones.
#include <set>

#include "gtest/gtest.h"
#include "server/log/change_log.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_log_test.h"
#include "tests/support/transactions.h"

namespace walfeed::test {
namespace {

constexpr uint32_t kRelation = 42;

class LoggedRowsTest : public TempLogTest {
 protected:
  // Appends `txn` with every change in relation kRelation.
  void Append(Transaction txn) {
    for (v1::Change& change : txn.changes) change.set_relation_id(kRelation);
    ASSERT_OK(log_->Append({txn}, txn.end_lsn));
  }

  // A READ of row `id`, as a resynchronisation reads it.
  static v1::Change Row(int64_t id) {
    Transaction txn = MakeTransaction(1, 1, "t", v1::Change::READ, id);
    txn.changes[0].set_relation_id(kRelation);
    return txn.changes[0];
  }

  std::set<int64_t> Unseen() {
    std::set<int64_t> ids;
    absl::Status visited = log_->VisitUnseenLiveRows(Row(0), [&](v1::Change newest) {
      ids.insert(newest.key(0).int_());
      return absl::OkStatus();
    });
    EXPECT_OK(visited);
    return ids;
  }

  bool Live(int64_t id) {
    absl::StatusOr<std::optional<v1::Change>> row = log_->LiveRow(Row(id));
    EXPECT_OK(row);
    return row.ok() && row->has_value();
  }
};

TEST_F(LoggedRowsTest, DeletedAndTruncatedRowsAreNotLive) {
  Append(MakeTransaction(0x100, 5, "t", v1::Change::INSERT, 0));
  Append(MakeTransaction(0x200, 1, "t", v1::Change::DELETE, 1));
  Transaction update = MakeTransaction(0x300, 1, "t", v1::Change::UPDATE, 2);
  update.changes[0].mutable_after(0)->set_name("id");
  v1::Column* v = update.changes[0].add_after();
  v->set_name("v");
  v->set_text("changed");
  Append(update);
  ASSERT_OK(log_->CatchUpRows());

  EXPECT_TRUE(Live(0));
  EXPECT_FALSE(Live(1)) << "deleted";
  EXPECT_FALSE(Live(9)) << "never there";
  absl::StatusOr<std::optional<v1::Change>> two = log_->LiveRow(Row(2));
  ASSERT_TRUE(two.ok() && two->has_value());
  EXPECT_EQ((*two)->op(), v1::Change::UPDATE) << "the newest change";
  EXPECT_EQ((*two)->after(1).text(), "changed");
  EXPECT_EQ(Unseen(), (std::set<int64_t>{0, 2, 3, 4}));

  Append(MakeTransaction(0x400, 1, "t", v1::Change::TRUNCATE));
  Append(MakeTransaction(0x500, 1, "t", v1::Change::INSERT, 7));
  ASSERT_OK(log_->CatchUpRows());
  EXPECT_FALSE(Live(0)) << "truncated since";
  EXPECT_TRUE(Live(7)) << "inserted after the truncate";
  EXPECT_EQ(Unseen(), (std::set<int64_t>{7}));
}

TEST_F(LoggedRowsTest, SeenRowsAreLeftOutUntilForgotten) {
  constexpr int kRows = 30000;  // the seen rows take more than one write
  Append(MakeTransaction(0x100, kRows, "t", v1::Change::INSERT, 0));
  ASSERT_OK(log_->CatchUpRows());
  for (int64_t id = 0; id < kRows; ++id) {
    if (id % 1000 == 0) continue;
    ASSERT_OK(log_->NoteSeenRow(Row(id)));
  }
  std::set<int64_t> expected;
  for (int64_t id = 0; id < kRows; id += 1000) expected.insert(id);
  EXPECT_EQ(Unseen(), expected);
  ASSERT_OK(log_->ForgetSeenRows());
  EXPECT_EQ(Unseen().size(), static_cast<size_t>(kRows));
}

TEST_F(LoggedRowsTest, AChangeTheLogNeverMergesStopsFollowingByKeyUntilATruncate) {
  Append(MakeTransaction(0x100, 2, "t", v1::Change::INSERT, 0));
  ASSERT_OK(log_->CatchUpRows());
  absl::StatusOr<bool> followed = log_->RowsFollowedByKey(Row(0));
  ASSERT_OK(followed);
  EXPECT_TRUE(*followed);

  Transaction full = MakeTransaction(0x200, 1, "t", v1::Change::UPDATE, 0);
  full.changes[0].set_key_kind(v1::Change::FULL_ROW);  // REPLICA IDENTITY FULL for a while
  Append(full);
  ASSERT_OK(log_->CatchUpRows());
  followed = log_->RowsFollowedByKey(Row(0));
  ASSERT_OK(followed);
  EXPECT_FALSE(*followed);

  Append(MakeTransaction(0x300, 1, "t", v1::Change::TRUNCATE));
  ASSERT_OK(log_->CatchUpRows());
  followed = log_->RowsFollowedByKey(Row(0));
  ASSERT_OK(followed);
  EXPECT_TRUE(*followed);
}

TEST_F(LoggedRowsTest, ValuesStoredOutOfLineCompareByContent) {
  constexpr size_t kSize = 600 << 10;  // past the 256 KiB out-of-line threshold
  Append(MakeTransaction(0x100, 1, "t", v1::Change::INSERT, 0, kSize));
  ASSERT_OK(log_->CatchUpRows());
  absl::StatusOr<std::optional<v1::Change>> stored = log_->LiveRow(Row(0));
  ASSERT_TRUE(stored.ok() && stored->has_value());
  const v1::Column& payload = (*stored)->after(1);
  ASSERT_EQ(payload.value_case(), v1::Column::kLarge);

  v1::Column same;
  same.set_text(std::string(kSize, 'x'));
  v1::Column one_byte_off = same;
  (*one_byte_off.mutable_text())[kSize - 1] = 'y';
  v1::Column shorter;
  shorter.set_text(std::string(kSize - 1, 'x'));
  v1::Column as_bytes;
  as_bytes.set_bytes(std::string(kSize, 'x'));
  for (const auto& [column, equal] : {std::pair<const v1::Column*, bool>{&same, true},
                                      {&one_byte_off, false},
                                      {&shorter, false},
                                      {&as_bytes, false}}) {
    absl::StatusOr<bool> compared = log_->LargeValueEquals(payload.large(), *column);
    ASSERT_OK(compared);
    EXPECT_EQ(*compared, equal);
  }
}

}  // namespace
}  // namespace walfeed::test
