// ChangeLog::AppendReads, a backfill's append: each row is judged by its newest change in the log
// (or its table's newer TRUNCATE), the rows left are appended right after the head as one
// transaction, indexed, and the metadata is written with them, also when every row was left out.
#include <map>
#include <vector>

#include "gtest/gtest.h"
#include "server/log/change_log.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_log_test.h"
#include "tests/support/transactions.h"

namespace walfeed::test {
namespace {

constexpr uint32_t kRelation = 42;

class ReadRowsAppendTest : public TempLogTest {
 protected:
  // Appends `txn` with every change in relation kRelation and carrying the transaction's xid.
  void Append(Transaction txn) {
    for (v1::Change& change : txn.changes) {
      change.set_relation_id(kRelation);
      change.set_xid(txn.xid);
    }
    ASSERT_OK(log_->Append({txn}, txn.end_lsn));
  }

  // A READ of row `id` as a backfill reads it: no position.
  static v1::Change Row(int64_t id) {
    v1::Change row = MakeTransaction(1, 1, "t", v1::Change::READ, id).changes[0];
    row.set_relation_id(kRelation);
    row.clear_lsn();
    row.clear_seq();
    row.clear_cursor();
    row.set_last_in_transaction(false);
    return row;
  }

  // Appends rows `ids`, judging every newest change by `invisible_xids` (superseding) and noting
  // what the judge was shown.
  ChangeLog::ReadsAppended AppendRows(const std::vector<int64_t>& ids,
                                      const std::vector<uint32_t>& invisible_xids,
                                      const std::string& progress = "p") {
    std::vector<v1::Change> rows;
    for (int64_t id : ids) rows.push_back(Row(id));
    judged_.clear();
    absl::StatusOr<ChangeLog::ReadsAppended> appended = log_->AppendReads(
        std::move(rows),
        [&](const Position& position, const v1::Change* newest) {
          judged_.push_back(position);
          if (newest == nullptr) return true;
          for (uint32_t xid : invisible_xids) {
            if (newest->xid() == xid) return true;
          }
          return false;
        },
        [&](const ChangeLog::ReadsAppended& outcome) {
          outcome_seen_ = outcome;
          return ChangeLog::MetadataUpdates{{"progress", progress}};
        });
    EXPECT_OK(appended);
    return appended.ok() ? *appended : ChangeLog::ReadsAppended();
  }

  std::vector<Position> judged_;
  ChangeLog::ReadsAppended outcome_seen_;
};

TEST_F(ReadRowsAppendTest, RowsWhoseNewestChangeTheSnapshotDidNotSeeAreLeftOut) {
  Append(MakeTransaction(0x100, 4, "t", v1::Change::INSERT, 1));  // rows 1-4, xid 0x100
  Append(MakeTransaction(0x200, 1, "t", v1::Change::UPDATE, 2));  // row 2, xid 0x200
  Append(MakeTransaction(0x300, 1, "t", v1::Change::DELETE, 3));  // row 3, xid 0x300
  const Position head = log_->Head();

  // The chunk's snapshot saw 0x100 and 0x200 but not 0x300: row 3's delete is newer than its
  // row; row 9 has no change in the log.
  ChangeLog::ReadsAppended appended = AppendRows({1, 2, 3, 9}, {0x300});
  EXPECT_EQ(appended.appended, 3u);
  EXPECT_EQ(appended.superseded, 1u);
  EXPECT_EQ(judged_.size(), 3u) << "rows 1, 2 and 3 have a newest change; row 9 none";
  EXPECT_EQ(outcome_seen_.appended, 3u) << "the metadata was built from the outcome";
  EXPECT_EQ(log_->Metadata("progress"), "p");

  // Right after the head, one transaction, in the order given.
  EXPECT_EQ(appended.first, (Position{head.lsn + 1, 0}));
  EXPECT_EQ(appended.last, (Position{head.lsn + 1, 2}));
  EXPECT_EQ(log_->Head(), appended.last);
  EXPECT_EQ(log_->ResumeLsn(), 0x330u) << "the resume point stays";
  std::vector<LogRecord> records;
  ASSERT_OK(log_->Read(appended.first, 10, 1 << 20, &records));
  ASSERT_EQ(records.size(), 3u);
  std::vector<int64_t> ids;
  for (const LogRecord& record : records) {
    v1::Change change;
    ASSERT_TRUE(change.ParseFromString(record.change));
    EXPECT_EQ(change.op(), v1::Change::READ);
    EXPECT_EQ(change.xid(), 0u);
    EXPECT_EQ(change.cursor(), FormatCursor(record.position));
    EXPECT_EQ(change.last_in_transaction(), record.position == appended.last);
    ids.push_back(change.key(0).int_());
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 9}));

  // Indexed at once: the READs are now the rows' newest changes.
  absl::StatusOr<std::optional<v1::Change>> nine = log_->LiveRow(Row(9));
  ASSERT_OK(nine);
  ASSERT_TRUE(nine->has_value());
  EXPECT_EQ((*nine)->op(), v1::Change::READ);

  // A stream commit continues after them.
  Append(MakeTransaction(0x330, 1, "t", v1::Change::UPDATE, 1));
}

TEST_F(ReadRowsAppendTest, ALaterTruncateOfTheTableJudgesTheRow) {
  Append(MakeTransaction(0x100, 2, "t", v1::Change::INSERT, 1));
  Append(MakeTransaction(0x200, 1, "t", v1::Change::TRUNCATE));
  ChangeLog::ReadsAppended appended = AppendRows({1, 2}, {0x200});
  EXPECT_EQ(appended.appended, 0u) << "the snapshot did not see the truncate: both rows are older";
  EXPECT_EQ(appended.superseded, 2u);
  EXPECT_EQ(appended.first, Position());
  EXPECT_EQ(log_->Metadata("progress"), "p") << "written though nothing was appended";
}

TEST_F(ReadRowsAppendTest, ChunksWithNoStreamedCommitBetweenThemStillFindPositions) {
  Append(MakeTransaction(0x100, 1, "t", v1::Change::INSERT, 1));
  // The gap between the head (0x100) and the resume point (0x130) holds 0x2F positions' worth
  // of LSNs; more chunks than that continue at the last one's LSN.
  Position previous = log_->Head();
  for (int chunk = 0; chunk < 60; ++chunk) {
    ChangeLog::ReadsAppended appended =
        AppendRows({chunk * 10 + 100, chunk * 10 + 101}, {}, std::to_string(chunk));
    ASSERT_EQ(appended.appended, 2u) << "chunk " << chunk;
    EXPECT_GT(appended.first, previous) << "chunk " << chunk;
    EXPECT_LT(appended.last.lsn, 0x130u) << "below the resume point";
    previous = appended.last;
  }
  EXPECT_EQ(log_->Metadata("progress"), "59");
  Append(MakeTransaction(0x130, 1, "t", v1::Change::INSERT, 2));
}

TEST_F(ReadRowsAppendTest, RowsWaitWhileChangesAreStagedAboveTheHead) {
  Append(MakeTransaction(0x100, 1, "t", v1::Change::INSERT, 1));
  // An added table's snapshot staged at the positions right after the head, not committed yet.
  Transaction staged = MakeTransaction(0x101, 2, "t", v1::Change::READ, 50);
  for (v1::Change& change : staged.changes) change.set_relation_id(kRelation);
  ASSERT_OK(log_->StageChanges(staged.changes));
  std::vector<v1::Change> rows = {Row(7)};
  const auto never = [](const Position&, const v1::Change*) { return false; };
  const auto none = [](const ChangeLog::ReadsAppended&) { return ChangeLog::MetadataUpdates(); };
  absl::StatusOr<ChangeLog::ReadsAppended> refused = log_->AppendReads(rows, never, none);
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_EQ(log_->Head(), (Position{0x100, 0})) << "nothing appended among the staged changes";

  ASSERT_OK(log_->CommitStaged({0x101, 1}, 0x130, {}));
  absl::StatusOr<ChangeLog::ReadsAppended> appended = log_->AppendReads(rows, never, none);
  ASSERT_OK(appended);
  EXPECT_EQ(appended->first, (Position{0x102, 0}));
}

}  // namespace
}  // namespace walfeed::test
