#include "server/log/change_log.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/table_name.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"
#include "tests/support/transactions.h"

namespace walfeed {
namespace {

using test::MakeTransaction;
using ::testing::HasSubstr;

class ChangeLogTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::MakeTempDir("walfeed-log"); }
  void TearDown() override { test::RemoveTree(dir_); }

  std::unique_ptr<ChangeLog> Open() {
    ChangeLogOptions options;
    options.path = dir_;
    absl::StatusOr<std::unique_ptr<ChangeLog>> log = ChangeLog::Open(options);
    EXPECT_OK(log);
    return log.ok() ? std::move(*log) : nullptr;
  }

  static std::vector<LogRecord> ReadAll(const ChangeLog& log, Position from = {}) {
    std::vector<LogRecord> records;
    EXPECT_OK(log.Read(from, 1 << 20, size_t{1} << 40, &records));
    return records;
  }

  static std::vector<Position> Positions(const std::vector<LogRecord>& records) {
    std::vector<Position> out;
    for (const LogRecord& record : records) out.push_back(record.position);
    return out;
  }

  std::string dir_;
};

TEST_F(ChangeLogTest, EmptyLogHasZeroHeadAndResumePoint) {
  std::unique_ptr<ChangeLog> log = Open();
  EXPECT_TRUE(log->Head().IsZero());
  EXPECT_TRUE(log->Oldest().IsZero());
  EXPECT_EQ(log->ResumeLsn(), 0u);
  EXPECT_TRUE(ReadAll(*log).empty());
}

TEST_F(ChangeLogTest, ReadsBackEveryChangeInPositionOrder) {
  std::unique_ptr<ChangeLog> log = Open();
  std::vector<Transaction> batch = {MakeTransaction(100, 3), MakeTransaction(200, 2)};
  ASSERT_OK(log->Append(batch, 230));
  ASSERT_OK(log->Append({MakeTransaction(300, 1)}, 330));

  const std::vector<LogRecord> records = ReadAll(*log);
  EXPECT_EQ(Positions(records),
            (std::vector<Position>{{100, 0}, {100, 1}, {100, 2}, {200, 0}, {200, 1}, {300, 0}}));
  v1::Change change;
  ASSERT_TRUE(change.ParseFromString(records[4].change));
  EXPECT_EQ(change.cursor(), FormatCursor({200, 1}));
  EXPECT_EQ(change.after(0).int_(), 1);
  EXPECT_EQ(log->Head(), (Position{300, 0}));
  EXPECT_EQ(log->Oldest(), (Position{100, 0}));
  EXPECT_EQ(log->ResumeLsn(), 330u);
}

TEST_F(ChangeLogTest, ReadStartsAtTheGivenPositionInclusive) {
  std::unique_ptr<ChangeLog> log = Open();
  ASSERT_OK(log->Append({MakeTransaction(100, 3), MakeTransaction(200, 2)}, 230));
  EXPECT_EQ(Positions(ReadAll(*log, {100, 2})),
            (std::vector<Position>{{100, 2}, {200, 0}, {200, 1}}));
  EXPECT_EQ(Positions(ReadAll(*log, {150, 0})), (std::vector<Position>{{200, 0}, {200, 1}}));
  EXPECT_TRUE(ReadAll(*log, {200, 2}).empty());
}

TEST_F(ChangeLogTest, ReadStopsAtTheRecordAndByteLimits) {
  std::unique_ptr<ChangeLog> log = Open();
  ASSERT_OK(log->Append({MakeTransaction(100, 10, "t", v1::Change::INSERT, 0, 1000)}, 130));
  std::vector<LogRecord> records;
  ASSERT_OK(log->Read({}, 4, 1 << 20, &records));
  EXPECT_EQ(records.size(), 4u);
  records.clear();
  ASSERT_OK(log->Read({}, 100, 2500, &records));
  EXPECT_EQ(records.size(), 2u);  // a third record of ~1,050 bytes would cross 2,500
  records.clear();
  ASSERT_OK(log->Read({}, 100, 1, &records));
  EXPECT_EQ(records.size(), 1u);  // always at least one
}

TEST_F(ChangeLogTest, ReopenSeesEveryCommittedTransactionAndTheResumePoint) {
  {
    std::unique_ptr<ChangeLog> log = Open();
    ASSERT_OK(log->Append({MakeTransaction(100, 2), MakeTransaction(200, 1)}, 230));
  }
  std::unique_ptr<ChangeLog> log = Open();
  EXPECT_EQ(log->Head(), (Position{200, 0}));
  EXPECT_EQ(log->Oldest(), (Position{100, 0}));
  EXPECT_EQ(log->ResumeLsn(), 230u);
  EXPECT_EQ(ReadAll(*log).size(), 3u);
}

TEST_F(ChangeLogTest, BatchWithAnOutOfOrderTransactionStoresNothing) {
  std::unique_ptr<ChangeLog> log = Open();
  ASSERT_OK(log->Append({MakeTransaction(100, 1)}, 130));
  absl::Status bad = log->Append({MakeTransaction(200, 1), MakeTransaction(150, 1)}, 230);
  EXPECT_EQ(bad.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.message(), HasSubstr("nothing was appended"));
  EXPECT_EQ(ReadAll(*log).size(), 1u);
  EXPECT_EQ(log->Head(), (Position{100, 0}));
  EXPECT_EQ(log->ResumeLsn(), 130u);
}

TEST_F(ChangeLogTest, RejectsATransactionAtOrBeforeTheHead) {
  std::unique_ptr<ChangeLog> log = Open();
  ASSERT_OK(log->Append({MakeTransaction(100, 1)}, 130));
  EXPECT_FALSE(log->Append({MakeTransaction(100, 1)}, 130).ok());
  EXPECT_FALSE(log->Append({MakeTransaction(99, 1)}, 130).ok());
  EXPECT_EQ(ReadAll(*log).size(), 1u);
}

TEST_F(ChangeLogTest, RejectsChangesWhosePositionDoesNotMatchTheirTransaction) {
  std::unique_ptr<ChangeLog> log = Open();
  Transaction txn = MakeTransaction(100, 2);
  txn.changes[1].set_seq(5);
  EXPECT_EQ(log->Append({txn}, 130).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ReadAll(*log).empty());
}

TEST_F(ChangeLogTest, EmptyAppendStoresOnlyTheResumePoint) {
  std::unique_ptr<ChangeLog> log = Open();
  ASSERT_OK(log->Append({}, 500));
  EXPECT_EQ(log->ResumeLsn(), 500u);
  EXPECT_TRUE(log->Head().IsZero());
}

TEST_F(ChangeLogTest, HeadListenersHearEveryAppendThatMovesTheHeadAndItsTables) {
  std::unique_ptr<ChangeLog> log = Open();
  std::vector<Position> heard;
  std::vector<Position> previous;
  std::vector<std::vector<std::string>> tables;
  log->AddHeadListener([&](const HeadAdvance& advance) {
    heard.push_back(advance.head);
    previous.push_back(advance.previous);
    EXPECT_FALSE(advance.all_tables);
    tables.emplace_back(advance.tables.begin(), advance.tables.end());
  });
  ASSERT_OK(log->Append({MakeTransaction(100, 2)}, 130));
  ASSERT_OK(log->Append({}, 140));
  ASSERT_OK(log->Append(
      {MakeTransaction(200, 1, "a"), MakeTransaction(300, 3, "b"), MakeTransaction(400, 1, "a")},
      430));
  EXPECT_EQ(heard, (std::vector<Position>{{100, 1}, {400, 0}}));
  EXPECT_EQ(previous, (std::vector<Position>{{}, {100, 1}}));
  EXPECT_EQ(tables,
            (std::vector<std::vector<std::string>>{
                {TableKey("public", "t")}, {TableKey("public", "a"), TableKey("public", "b")}}));
}

TEST_F(ChangeLogTest, ReadersRunningDuringAppendsSeeOnlyWholeOrderedPrefixes) {
  std::unique_ptr<ChangeLog> log = Open();
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (uint64_t lsn = 1; lsn <= 300; ++lsn) {
      ASSERT_OK(log->Append({MakeTransaction(lsn * 100, 5)}, lsn * 100 + 50));
    }
    done = true;
  });
  while (!done) {
    const std::vector<LogRecord> records = ReadAll(*log);
    ASSERT_EQ(records.size() % 5, 0u) << "a reader saw part of a transaction";
    for (size_t i = 1; i < records.size(); ++i)
      ASSERT_LT(records[i - 1].position, records[i].position);
  }
  writer.join();
  EXPECT_EQ(ReadAll(*log).size(), 1500u);
}

TEST_F(ChangeLogTest, MetadataIsDurable) {
  {
    std::unique_ptr<ChangeLog> log = Open();
    EXPECT_EQ(log->Metadata("source/identity"), "");
    ASSERT_OK(log->SetMetadata("source/identity", "system 42, database shop"));
  }
  EXPECT_EQ(Open()->Metadata("source/identity"), "system 42, database shop");
}

TEST_F(ChangeLogTest, LogIdIsCreatedWithTheDirectoryAndNeverChanges) {
  std::string first_id;
  {
    std::unique_ptr<ChangeLog> log = Open();
    first_id = log->LogId();
    ASSERT_OK(log->Append({MakeTransaction(100, 2)}, 130));
  }
  EXPECT_THAT(first_id, ::testing::MatchesRegex(
                            "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_EQ(Open()->LogId(), first_id) << "after a reopen";

  // A new directory is a new log, even holding the same changes.
  const std::string other_dir = test::MakeTempDir("walfeed-log");
  ChangeLogOptions options;
  options.path = other_dir;
  absl::StatusOr<std::unique_ptr<ChangeLog>> other = ChangeLog::Open(options);
  ASSERT_OK(other);
  ASSERT_OK((*other)->Append({MakeTransaction(100, 2)}, 130));
  EXPECT_NE((*other)->LogId(), first_id);
  other->reset();
  test::RemoveTree(other_dir);
}

std::vector<v1::Change> Staged(uint64_t lsn, int count) {
  Transaction txn = MakeTransaction(lsn, count, "t", v1::Change::READ);
  return txn.changes;
}

TEST_F(ChangeLogTest, StagedChangesAreInvisibleUntilCommitted) {
  std::unique_ptr<ChangeLog> log = Open();
  std::vector<Position> heard;
  std::vector<bool> tables_told;
  log->AddHeadListener([&](const HeadAdvance& advance) {
    heard.push_back(advance.head);
    tables_told.push_back(!advance.all_tables);
  });
  ASSERT_OK(log->StageChanges(Staged(99, 3)));
  EXPECT_TRUE(ReadAll(*log).empty());
  EXPECT_TRUE(log->Head().IsZero());
  ASSERT_OK(log->CommitStaged({99, 2}, 100, {}));
  EXPECT_EQ(Positions(ReadAll(*log)), (std::vector<Position>{{99, 0}, {99, 1}, {99, 2}}));
  EXPECT_EQ(log->Head(), (Position{99, 2}));
  EXPECT_EQ(log->Oldest(), (Position{99, 0}));
  EXPECT_EQ(log->ResumeLsn(), 100u);
  EXPECT_EQ(heard, (std::vector<Position>{{99, 2}}));
  EXPECT_EQ(log->Stats().changes_appended, 3u);
  // Streaming continues after the committed stage.
  ASSERT_OK(log->Append({MakeTransaction(100, 1)}, 130));
  EXPECT_EQ(ReadAll(*log).size(), 4u);
  // A committed stage's tables are not told; an append's are.
  EXPECT_EQ(tables_told, (std::vector<bool>{false, true}));
}

TEST_F(ChangeLogTest, StagedChangesLeftByACrashAreDiscardedOnReopen) {
  {
    std::unique_ptr<ChangeLog> log = Open();
    ASSERT_OK(log->Append({MakeTransaction(50, 1)}, 60));
    ASSERT_OK(log->StageChanges(Staged(99, 5)));
  }
  std::unique_ptr<ChangeLog> log = Open();
  EXPECT_EQ(log->Head(), (Position{50, 0}));
  EXPECT_EQ(Positions(ReadAll(*log)), (std::vector<Position>{{50, 0}}));
  // Nothing above the head remains: committing now exposes no stale row.
  ASSERT_OK(log->StageChanges(Staged(99, 2)));
  ASSERT_OK(log->CommitStaged({99, 1}, 100, {}));
  EXPECT_EQ(ReadAll(*log).size(), 3u);
}

// One call stages more than one write holds (the log writes it in bounded batches): still
// invisible until committed, and all of it discarded by a crash.
TEST_F(ChangeLogTest, AStageLargerThanOneWriteIsStillAllOrNothing) {
  const std::vector<v1::Change> large =
      MakeTransaction(99, 3000, "t", v1::Change::READ, 0, /*payload_bytes=*/2000).changes;
  {
    std::unique_ptr<ChangeLog> log = Open();
    ASSERT_OK(log->Append({MakeTransaction(50, 1)}, 60));
    ASSERT_OK(log->StageChanges(large));
    EXPECT_EQ(ReadAll(*log).size(), 1u);
  }
  std::unique_ptr<ChangeLog> log = Open();
  EXPECT_EQ(Positions(ReadAll(*log)), (std::vector<Position>{{50, 0}}));
  ASSERT_OK(log->StageChanges(large));
  ASSERT_OK(log->CommitStaged({99, 2999}, 100, {}));
  const std::vector<LogRecord> all = ReadAll(*log);
  ASSERT_EQ(all.size(), 3001u);
  EXPECT_EQ(all.back().position, (Position{99, 2999}));
}

TEST_F(ChangeLogTest, NewLogWithOnlyStagedChangesReopensEmpty) {
  {
    std::unique_ptr<ChangeLog> log = Open();
    ASSERT_OK(log->StageChanges(Staged(99, 5)));
  }
  std::unique_ptr<ChangeLog> log = Open();
  EXPECT_TRUE(log->Head().IsZero());
  EXPECT_TRUE(ReadAll(*log).empty());
}

TEST_F(ChangeLogTest, DiscardStagedDropsOnlyWhatIsAboveTheHead) {
  std::unique_ptr<ChangeLog> log = Open();
  ASSERT_OK(log->Append({MakeTransaction(50, 2)}, 60));
  ASSERT_OK(log->StageChanges(Staged(99, 4)));
  ASSERT_OK(log->DiscardStaged());
  ASSERT_OK(log->CommitStaged({50, 1}, 60, {}));
  EXPECT_EQ(log->Stats().changes_appended, 2u) << "discarded changes were never appended";
  std::vector<LogRecord> everything;
  ASSERT_OK(log->Read({}, 100, 1 << 20, &everything));
  EXPECT_EQ(everything.size(), 2u);
}

TEST_F(ChangeLogTest, LargeTransactionStagedInPartsBecomesVisibleWithItsLastPart) {
  std::unique_ptr<ChangeLog> log = Open();
  ASSERT_OK(log->Append({MakeTransaction(100, 1)}, 130));
  Transaction large = MakeTransaction(200, 5);
  std::vector<v1::Change> early(large.changes.begin(), large.changes.begin() + 3);
  large.changes.erase(large.changes.begin(), large.changes.begin() + 3);
  ASSERT_OK(log->StageChanges(early));
  EXPECT_EQ(ReadAll(*log).size(), 1u) << "staged parts are invisible";
  ASSERT_OK(log->Append({large, MakeTransaction(300, 1)}, 330));
  EXPECT_EQ(Positions(ReadAll(*log)),
            (std::vector<Position>{
                {100, 0}, {200, 0}, {200, 1}, {200, 2}, {200, 3}, {200, 4}, {300, 0}}));
  EXPECT_EQ(log->Head(), (Position{300, 0}));
  EXPECT_EQ(log->Stats().changes_appended, 7u) << "the staged part counts with its last part";
}

TEST_F(ChangeLogTest, LastPartWithoutItsStagedPartIsRefused) {
  std::unique_ptr<ChangeLog> log = Open();
  Transaction large = MakeTransaction(200, 5);
  large.changes.erase(large.changes.begin(), large.changes.begin() + 3);
  EXPECT_EQ(log->Append({large}, 230).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ReadAll(*log).empty());
}

TEST_F(ChangeLogTest, StagingAtOrBelowTheHeadIsRefused) {
  std::unique_ptr<ChangeLog> log = Open();
  ASSERT_OK(log->Append({MakeTransaction(50, 2)}, 60));
  EXPECT_EQ(log->StageChanges(Staged(50, 1)).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ChangeLogTest, SecondOpenOfTheSameDirectoryFailsClearly) {
  std::unique_ptr<ChangeLog> log = Open();
  ChangeLogOptions options;
  options.path = dir_;
  absl::StatusOr<std::unique_ptr<ChangeLog>> second = ChangeLog::Open(options);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("another walfeed"));
}

// The byte bound cuts before the change that would cross it (a 0.99 MB row then a 3.3 MB row
// once made one message past gRPC's 4 MiB default), and a single change larger than the bound
// still comes alone. (Values stay inline here: out-of-line values are tested on their own.)
TEST(ChangeLogBytes, ABatchNeverCrossesTheByteBoundBecauseOfItsLastChange) {
  const std::string dir = test::MakeTempDir("walfeed-bytes");
  ChangeLogOptions options;
  options.path = dir;
  options.sync = false;
  options.out_of_line.value_bytes = options.out_of_line.change_bytes = 64 << 20;
  std::unique_ptr<ChangeLog> log = *ChangeLog::Open(options);
  Transaction txn = test::MakeTransaction(0x100, 3);
  const size_t sizes[] = {990000, 3300000, 10};
  for (size_t i = 0; i < 3; ++i) {
    v1::Column* payload = txn.changes[i].add_after();
    payload->set_name("payload");
    payload->set_text(std::string(sizes[i], 'x'));
  }
  ASSERT_OK(log->Append({txn}, 0x150));
  std::vector<LogRecord> first;
  ASSERT_OK(log->Read({}, 100, 1 << 20, &first));
  ASSERT_EQ(first.size(), 1u) << "the second change would have crossed 1 MiB";
  std::vector<LogRecord> second;
  ASSERT_OK(log->Read({0x100, 1}, 100, 1 << 20, &second));
  ASSERT_EQ(second.size(), 1u) << "a change over the bound comes alone";
  std::vector<LogRecord> rest;
  ASSERT_OK(log->Read({0x100, 2}, 100, 1 << 20, &rest));
  EXPECT_EQ(rest.size(), 1u);
  log.reset();
  test::RemoveTree(dir);
}

}  // namespace
}  // namespace walfeed
