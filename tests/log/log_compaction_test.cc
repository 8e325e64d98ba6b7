// Compaction by primary key, tombstones, TRUNCATE, retention and the lag window, on a log that
// the test fills directly (changes shaped as the source shapes them).
#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/log/change_log.h"
#include "tests/support/log_surgery.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

struct RowSpec {
  v1::Change::Op op = v1::Change::INSERT;
  int64_t id = 0;
  std::string value;
  absl::Time committed = kT0;
  std::string table = "t";
  v1::Change::KeyKind key_kind = v1::Change::PRIMARY_KEY;
  // For an UPDATE that changes the key: the old id.
  std::optional<int64_t> old_id;
  // PostgreSQL's OID of the table (0: unknown, as in changes stored before relations were).
  uint32_t relation_id = 0;
};

v1::Column IdColumn(int64_t id) {
  v1::Column column;
  column.set_name("id");
  column.set_type("int8");
  column.set_int_(id);
  return column;
}

// A one-change transaction at `lsn`.
Transaction Row(uint64_t lsn, const RowSpec& spec) {
  Transaction txn;
  txn.commit_lsn = lsn;
  txn.end_lsn = lsn + 0x30;
  v1::Change& change = txn.changes.emplace_back();
  change.set_lsn(lsn);
  change.set_seq(0);
  change.set_cursor(FormatCursor({lsn, 0}));
  change.set_op(spec.op);
  change.set_last_in_transaction(true);
  change.mutable_commit_time()->set_seconds(absl::ToUnixSeconds(spec.committed));
  if (spec.op == v1::Change::MESSAGE) {
    change.mutable_message()->set_prefix("p");
    return txn;
  }
  change.set_schema("public");
  change.set_table(spec.table);
  change.set_relation_id(spec.relation_id);
  change.set_key_kind(spec.key_kind);
  if (spec.op == v1::Change::TRUNCATE) return txn;
  *change.add_key() = IdColumn(spec.id);
  if (spec.op == v1::Change::DELETE) {
    *change.add_before() = IdColumn(spec.id);
    return txn;
  }
  if (spec.old_id) *change.add_before() = IdColumn(*spec.old_id);
  *change.add_after() = IdColumn(spec.id);
  v1::Column* value = change.add_after();
  value->set_name("v");
  value->set_type("text");
  value->set_text(spec.value);
  return txn;
}

RowSpec Spec(v1::Change::Op op, int64_t id = 0, std::string value = "", absl::Time committed = kT0,
             std::string table = "t") {
  RowSpec spec;
  spec.op = op;
  spec.id = id;
  spec.value = std::move(value);
  spec.committed = committed;
  spec.table = std::move(table);
  return spec;
}

CompactionPolicy Policy(absl::Duration lag, absl::Duration delete_retention) {
  CompactionPolicy policy;
  policy.lag = lag;
  policy.delete_retention = delete_retention;
  return policy;
}

class LogCompactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("walfeed-compaction");
    Reopen();
  }
  void TearDown() override {
    log_.reset();
    test::RemoveTree(dir_);
  }

  void Reopen() {
    log_.reset();
    ChangeLogOptions options;
    options.path = dir_;
    options.sync = false;
    absl::StatusOr<std::unique_ptr<ChangeLog>> log = ChangeLog::Open(options);
    ASSERT_OK(log);
    log_ = std::move(*log);
  }

  // Appends one change at the next LSN; returns its position.
  Position Add(const RowSpec& spec) {
    next_lsn_ += 0x100;
    EXPECT_OK(log_->Append({Row(next_lsn_, spec)}, next_lsn_ + 0x30));
    return Position{next_lsn_, 0};
  }
  Position Add(v1::Change::Op op, int64_t id = 0, std::string value = "",
               absl::Time committed = kT0, std::string table = "t") {
    return Add(Spec(op, id, std::move(value), committed, std::move(table)));
  }

  v1::CompactionResult Compact(const CompactionPolicy& policy, absl::Time now) {
    absl::StatusOr<v1::CompactionResult> result = log_->Compact(policy, now);
    EXPECT_OK(result);
    return result.ok() ? *result : v1::CompactionResult();
  }

  std::vector<v1::Change> ReadAll() {
    std::vector<LogRecord> records;
    EXPECT_OK(log_->Read({}, 1 << 20, size_t{1} << 40, &records));
    std::vector<v1::Change> changes;
    for (const LogRecord& record : records) {
      EXPECT_TRUE(changes.emplace_back().ParseFromString(record.change));
    }
    return changes;
  }

  std::string dir_;
  std::unique_ptr<ChangeLog> log_;
  uint64_t next_lsn_ = 0x1000;
};

TEST_F(LogCompactionTest, KeepsOnlyTheNewestChangeOfEachRow) {
  Add(v1::Change::INSERT, 0, "v0");
  for (int i = 1; i <= 1000; ++i) Add(v1::Change::UPDATE, 0, absl::StrCat("v", i));
  for (int id = 1; id <= 100; ++id) Add(v1::Change::INSERT, id, absl::StrCat("r", id));

  const v1::CompactionResult result =
      Compact(Policy(absl::ZeroDuration(), absl::Hours(1)), kT0 + absl::Minutes(1));
  EXPECT_EQ(result.changes_examined(), 1101u);
  EXPECT_EQ(result.superseded_removed(), 1000u);
  EXPECT_EQ(result.tombstones_purged(), 0u);
  EXPECT_EQ(result.live_keys(), 101u);
  EXPECT_TRUE(result.purge_cursor().empty());
  EXPECT_TRUE(log_->PurgePoint().IsZero());

  const std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 101u);
  EXPECT_EQ(changes[0].after(1).text(), "v1000");
  for (size_t i = 1; i < changes.size(); ++i) {
    EXPECT_EQ(changes[i].key(0).int_(), static_cast<int64_t>(i));
    EXPECT_LT((Position{changes[i - 1].lsn(), changes[i - 1].seq()}),
              (Position{changes[i].lsn(), changes[i].seq()}));
  }
  EXPECT_EQ(log_->Oldest(), (Position{changes[0].lsn(), 0}));
}

TEST_F(LogCompactionTest, NothingInsideTheLagWindowIsRemoved) {
  for (int i = 0; i < 10; ++i) Add(v1::Change::UPDATE, 1, "old", kT0);
  for (int i = 0; i < 10; ++i) Add(v1::Change::UPDATE, 1, "recent", kT0 + absl::Minutes(50));

  // Lag of 30 minutes at T0+60m: the first ten are old enough, the last ten are not.
  const v1::CompactionResult result =
      Compact(Policy(absl::Minutes(30), absl::Hours(1)), kT0 + absl::Minutes(60));
  EXPECT_EQ(result.changes_examined(), 10u);
  EXPECT_EQ(result.superseded_removed(), 10u);
  EXPECT_FALSE(result.lag_cursor().empty());
  std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 10u);
  for (const v1::Change& change : changes) EXPECT_EQ(change.after(1).text(), "recent");

  // A count window: the newest 4 positions stay whatever their age.
  CompactionPolicy by_count = Policy(absl::ZeroDuration(), absl::Hours(1));
  by_count.lag_changes = 4;
  EXPECT_EQ(Compact(by_count, kT0 + absl::Hours(5)).superseded_removed(), 6u);
  EXPECT_EQ(ReadAll().size(), 4u);
}

TEST_F(LogCompactionTest, TombstoneStaysForItsRetentionThenIsPurged) {
  Add(v1::Change::INSERT, 1, "a");
  Add(v1::Change::INSERT, 2, "b");
  const Position deleted = Add(v1::Change::DELETE, 1, "", kT0 + absl::Minutes(10));

  // Within the delete retention: the insert of row 1 goes, its tombstone stays.
  v1::CompactionResult result =
      Compact(Policy(absl::ZeroDuration(), absl::Hours(1)), kT0 + absl::Minutes(20));
  EXPECT_EQ(result.superseded_removed(), 1u);
  EXPECT_EQ(result.tombstones_purged(), 0u);
  EXPECT_EQ(result.live_keys(), 1u);
  std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].op(), v1::Change::DELETE);
  EXPECT_TRUE(log_->PurgePoint().IsZero());

  // Past it: the tombstone goes too, and the purge point says so, also after a restart.
  result = Compact(Policy(absl::ZeroDuration(), absl::Hours(1)), kT0 + absl::Hours(2));
  EXPECT_EQ(result.tombstones_purged(), 1u);
  EXPECT_EQ(result.purge_cursor(), FormatCursor(deleted));
  changes = ReadAll();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].key(0).int_(), 2);
  EXPECT_EQ(log_->PurgePoint(), deleted);
  Reopen();
  EXPECT_EQ(log_->PurgePoint(), deleted);
  ASSERT_TRUE(log_->LastCompaction().has_value());
  EXPECT_EQ(log_->LastCompaction()->tombstones_purged(), 1u);
}

TEST_F(LogCompactionTest, ReinsertedRowSupersedesItsTombstoneWithoutAPurge) {
  Add(v1::Change::INSERT, 1, "a");
  Add(v1::Change::DELETE, 1);
  Add(v1::Change::INSERT, 1, "again");
  const v1::CompactionResult result =
      Compact(Policy(absl::ZeroDuration(), absl::ZeroDuration()), kT0 + absl::Hours(1));
  EXPECT_EQ(result.superseded_removed(), 2u);
  EXPECT_TRUE(log_->PurgePoint().IsZero());
  const std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].after(1).text(), "again");
}

TEST_F(LogCompactionTest, TruncateSupersedesEveryEarlierChangeOfItsTable) {
  Add(v1::Change::INSERT, 1, "a");
  Add(v1::Change::INSERT, 2, "b");
  Add(v1::Change::INSERT, 1, "other table", kT0, "u");
  const Position truncate = Add(v1::Change::TRUNCATE);
  Add(v1::Change::INSERT, 3, "after");

  v1::CompactionResult result =
      Compact(Policy(absl::ZeroDuration(), absl::Hours(1)), kT0 + absl::Minutes(1));
  EXPECT_EQ(result.superseded_removed(), 2u);
  EXPECT_EQ(result.live_keys(), 2u);  // u.1 and t.3
  std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].table(), "u");
  EXPECT_EQ(changes[1].op(), v1::Change::TRUNCATE);

  result = Compact(Policy(absl::ZeroDuration(), absl::Hours(1)), kT0 + absl::Hours(2));
  EXPECT_EQ(result.tombstones_purged(), 1u);
  EXPECT_EQ(log_->PurgePoint(), truncate);
  EXPECT_EQ(ReadAll().size(), 2u);
}

// A table is its relation, not its name: a row deleted after its table was renamed is the row
// inserted before (once its tombstone is purged, nothing of it may stay), and a table swapped in
// under the old name (a new relation) holds other rows than the one it replaced.
TEST_F(LogCompactionTest, RowsFollowTheirRelationAcrossRenamesAndSwaps) {
  RowSpec spec = Spec(v1::Change::INSERT, 1, "a", kT0, "before_rename");
  spec.relation_id = 7;
  Add(spec);
  spec.id = 2;
  Add(spec);
  spec = Spec(v1::Change::DELETE, 1, "", kT0, "after_rename");
  spec.relation_id = 7;
  Add(spec);
  spec = Spec(v1::Change::INSERT, 2, "swapped in", kT0, "after_rename");
  spec.relation_id = 8;
  Add(spec);

  const v1::CompactionResult result =
      Compact(Policy(absl::ZeroDuration(), absl::ZeroDuration()), kT0 + absl::Hours(1));
  EXPECT_EQ(result.superseded_removed(), 1u);
  EXPECT_EQ(result.tombstones_purged(), 1u);
  const std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 2u) << "nothing of the deleted row stays";
  EXPECT_EQ(changes[0].relation_id(), 7u);
  EXPECT_EQ(changes[0].key(0).int_(), 2);
  EXPECT_EQ(changes[1].relation_id(), 8u);
  EXPECT_EQ(changes[1].after(1).text(), "swapped in");
}

// A log from before relations were recorded keys those rows by name: a delete keyed by relation
// may have ended one of them, so it is kept while such rows remain (else the row would be back).
TEST_F(LogCompactionTest, TombstonesStayWhileRowsKeyedByNameRemain) {
  Add(v1::Change::INSERT, 1, "stored before relations were recorded");
  RowSpec spec = Spec(v1::Change::DELETE, 1);
  spec.relation_id = 7;
  Add(spec);
  spec = Spec(v1::Change::DELETE, 5, "", kT0, "other");
  spec.relation_id = 8;
  Add(spec);
  const v1::CompactionResult result =
      Compact(Policy(absl::ZeroDuration(), absl::ZeroDuration()), kT0 + absl::Hours(1));
  EXPECT_EQ(result.tombstones_purged(), 1u) << "only the other table's";
  const std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].op(), v1::Change::INSERT);
  EXPECT_EQ(changes[1].op(), v1::Change::DELETE) << "reading from 0 still ends the row";
}

TEST_F(LogCompactionTest, KeyChangingUpdateEndsTheOldRow) {
  Add(v1::Change::INSERT, 1, "a");
  RowSpec moved = Spec(v1::Change::UPDATE, 2, "moved");
  moved.old_id = 1;
  const Position move = Add(moved);

  // The update is the newest state of row 2: kept, while the insert of row 1 goes.
  Compact(Policy(absl::ZeroDuration(), absl::ZeroDuration()), kT0 + absl::Hours(1));
  std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].op(), v1::Change::UPDATE);

  // Once row 2 changes again, the update only ends row 1: a tombstone, purged past retention.
  Add(v1::Change::UPDATE, 2, "again");
  const v1::CompactionResult result =
      Compact(Policy(absl::ZeroDuration(), absl::ZeroDuration()), kT0 + absl::Hours(1));
  EXPECT_EQ(result.tombstones_purged(), 1u);
  EXPECT_EQ(log_->PurgePoint(), move);
  changes = ReadAll();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].after(1).text(), "again");
}

TEST_F(LogCompactionTest, UnmergedChangesAgeOutByRetentionOnly) {
  RowSpec full = Spec(v1::Change::UPDATE, 1, "full");
  full.key_kind = v1::Change::FULL_ROW;
  Add(full);
  Add(full);
  RowSpec keyless = Spec(v1::Change::INSERT, 1, "no key");
  keyless.key_kind = v1::Change::NONE;
  Add(keyless);
  Add(v1::Change::MESSAGE);
  const Position last = Add(v1::Change::MESSAGE, 0, "", kT0 + absl::Hours(3));

  CompactionPolicy policy = Policy(absl::ZeroDuration(), absl::ZeroDuration());
  EXPECT_EQ(Compact(policy, kT0 + absl::Hours(4)).retention_removed(), 0u);
  EXPECT_EQ(ReadAll().size(), 5u);

  policy.retention = absl::Hours(2);
  const v1::CompactionResult result = Compact(policy, kT0 + absl::Hours(4));
  EXPECT_EQ(result.retention_removed(), 4u);
  const std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ((Position{changes[0].lsn(), 0}), last);
  EXPECT_EQ(log_->PurgePoint(), (Position{last.lsn - 0x100, 0}));
}

// --retention-bytes: while the log is larger, never-merged changes go, oldest first, and only
// they (a row's newest change stays whatever its age); the purge point follows what went.
TEST_F(LogCompactionTest, RetentionBytesRemovesTheOldestUnmergedChangesUntilTheLogFits) {
  const Position row = Add(v1::Change::INSERT, 1, "the only keyed row");
  std::vector<Position> unmerged;
  std::mt19937_64 random(7);
  for (int i = 0; i < 100; ++i) {
    std::string noise(10000, ' ');  // incompressible: the log's size is the values' size
    for (char& c : noise) c = static_cast<char>('a' + random() % 26);
    RowSpec keyless = Spec(v1::Change::INSERT, 1000 + i, std::move(noise));
    keyless.key_kind = v1::Change::NONE;
    unmerged.push_back(Add(keyless));
  }
  CompactionPolicy policy = Policy(absl::ZeroDuration(), absl::ZeroDuration());
  EXPECT_EQ(Compact(policy, kT0 + absl::Hours(1)).retention_removed(), 0u) << "no size limit";
  Reopen();  // the memtables flushed: the log's size is its files'

  const uint64_t before = log_->DiskBytes();
  ASSERT_GT(before, 1000000u);
  policy.retention_bytes = before / 2;
  const v1::CompactionResult result = Compact(policy, kT0 + absl::Hours(1));
  EXPECT_GE(result.retention_removed(), 30u);
  EXPECT_LE(result.retention_removed(), 70u);

  const std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 101u - result.retention_removed());
  EXPECT_EQ((Position{changes[0].lsn(), 0}), row) << "the keyed row's change is not retention's";
  for (size_t i = 1; i < changes.size(); ++i) {
    EXPECT_EQ((Position{changes[i].lsn(), 0}), unmerged[result.retention_removed() + i - 1])
        << "what remains is the newest unmerged changes, in order";
  }
  EXPECT_EQ(log_->PurgePoint(), unmerged[result.retention_removed() - 1]);
}

// A pass never holds appends back: while it works through 100,000 changes, transactions keep
// being appended, each in a small part of the pass's time, and they are all there after it.
TEST_F(LogCompactionTest, AppendsGoOnWhileAPassRuns) {
  for (int batch = 0; batch < 100; ++batch) {
    std::vector<Transaction> transactions;
    for (int i = 0; i < 1000; ++i) {
      next_lsn_ += 0x100;
      transactions.push_back(
          Row(next_lsn_, Spec(v1::Change::UPDATE, i, absl::StrCat("round ", batch))));
    }
    ASSERT_OK(log_->Append(transactions, next_lsn_ + 0x30));
  }
  std::atomic<bool> pass_done{false};
  absl::Duration pass_took;
  std::thread pass([&] {
    const absl::Time started = absl::Now();
    Compact(Policy(absl::ZeroDuration(), absl::ZeroDuration()), kT0 + absl::Hours(1));
    pass_took = absl::Now() - started;
    pass_done = true;
  });
  int appended_during_pass = 0;
  absl::Duration slowest_append;
  while (!pass_done.load()) {
    const absl::Time started = absl::Now();
    Add(v1::Change::INSERT, 5000 + appended_during_pass, "during the pass", kT0 + absl::Hours(2));
    slowest_append = std::max(slowest_append, absl::Now() - started);
    if (!pass_done.load()) ++appended_during_pass;
  }
  pass.join();
  ASSERT_GE(pass_took, absl::Milliseconds(100)) << "the pass was too short to show anything";
  EXPECT_GE(appended_during_pass, 10) << "the pass took " << pass_took;
  EXPECT_LT(slowest_append, pass_took / 2) << "an append waited for the pass";
  const std::vector<v1::Change> changes = ReadAll();
  ASSERT_GE(changes.size(), 1000u + appended_during_pass);
  EXPECT_EQ(changes.back().lsn(), next_lsn_) << "the last append is there";
}

TEST_F(LogCompactionTest, PurgePointNeverGoesBackEvenWhenALaterPassPurgesBelowIt) {
  Add(v1::Change::MESSAGE);  // never merged: aged out by retention only
  Add(v1::Change::INSERT, 1, "a");
  const Position deleted = Add(v1::Change::DELETE, 1);
  Compact(Policy(absl::ZeroDuration(), absl::ZeroDuration()), kT0 + absl::Hours(1));
  ASSERT_EQ(log_->PurgePoint(), deleted);

  CompactionPolicy policy = Policy(absl::ZeroDuration(), absl::ZeroDuration());
  policy.retention = absl::Minutes(1);
  EXPECT_EQ(Compact(policy, kT0 + absl::Hours(1)).retention_removed(), 1u);  // below `deleted`
  EXPECT_EQ(log_->PurgePoint(), deleted);
  Reopen();
  EXPECT_EQ(log_->PurgePoint(), deleted);
}

TEST_F(LogCompactionTest, KeyValueLeftOutByPostgresIsTakenFromTheOldKeyOrNeverMerged) {
  Add(v1::Change::INSERT, 1, "a");
  Add(v1::Change::INSERT, 2, "b");
  // Updates of rows 1 and 2 whose (huge) key PostgreSQL left out: row 1's old key came along.
  RowSpec with_old_key = Spec(v1::Change::UPDATE, 0, "a2");
  with_old_key.old_id = 1;
  Transaction first = Row(next_lsn_ + 0x100, with_old_key);
  first.changes[0].mutable_key(0)->set_unchanged_toast(true);
  ASSERT_OK(log_->Append({first}, next_lsn_ + 0x130));
  next_lsn_ += 0x100;
  Transaction second = Row(next_lsn_ + 0x100, Spec(v1::Change::UPDATE, 0, "b2"));
  second.changes[0].mutable_key(0)->set_unchanged_toast(true);
  ASSERT_OK(log_->Append({second}, next_lsn_ + 0x130));
  next_lsn_ += 0x100;

  const v1::CompactionResult result =
      Compact(Policy(absl::ZeroDuration(), absl::ZeroDuration()), kT0 + absl::Hours(1));
  EXPECT_EQ(result.superseded_removed(), 1u);  // row 1's insert; row 2's stays, nothing merged
  EXPECT_EQ(result.tombstones_purged(), 0u);
  EXPECT_EQ(ReadAll().size(), 3u);
}

TEST_F(LogCompactionTest, IndexFollowsAppendsAcrossPassesAndRestarts) {
  Add(v1::Change::INSERT, 1, "a");
  Compact(Policy(absl::ZeroDuration(), absl::Hours(1)), kT0 + absl::Hours(1));
  Reopen();
  Add(v1::Change::UPDATE, 1, "b");
  const v1::CompactionResult result =
      Compact(Policy(absl::ZeroDuration(), absl::Hours(1)), kT0 + absl::Hours(1));
  EXPECT_EQ(result.superseded_removed(), 1u);
  const std::vector<v1::Change> changes = ReadAll();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].after(1).text(), "b");
}

// An index of the previous format (tables keyed by name) is emptied on open and rebuilt from the
// changes; compaction meanwhile removes only what the rebuilt index covers.
TEST_F(LogCompactionTest, AnIndexOfAnotherFormatIsRebuiltFromTheChanges) {
  RowSpec spec = Spec(v1::Change::INSERT, 1, "old", kT0);
  spec.relation_id = 7;
  Add(spec);
  spec.value = "new";
  spec.op = v1::Change::UPDATE;
  Add(spec);
  log_.reset();
  ASSERT_OK(test::ForgetIndexFormat(dir_));
  Reopen();
  EXPECT_FALSE(log_->IndexIsCurrent());
  ASSERT_OK(log_->CatchUpIndex());
  EXPECT_TRUE(log_->IndexIsCurrent());
  const v1::CompactionResult result =
      Compact(Policy(absl::ZeroDuration(), absl::Hours(1)), kT0 + absl::Hours(1));
  EXPECT_EQ(result.superseded_removed(), 1u);
  EXPECT_EQ(result.live_keys(), 1u);
}

TEST_F(LogCompactionTest, RejectsNegativeDurations) {
  absl::StatusOr<v1::CompactionResult> result =
      log_->Compact(Policy(absl::Seconds(-1), absl::Hours(1)), kT0);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("must not be negative"));
}

TEST_F(LogCompactionTest, ReaderDuringAPassSeesEveryRowsNewestStateInOrder) {
  constexpr int kKeys = 200;
  constexpr int kRounds = 100;
  for (int round = 0; round < kRounds; ++round) {
    for (int id = 0; id < kKeys; ++id) Add(v1::Change::UPDATE, id, absl::StrCat(round));
  }
  std::atomic<bool> compacted{false};
  std::thread compactor([&] {
    Compact(Policy(absl::ZeroDuration(), absl::Hours(1)), kT0 + absl::Hours(1));
    compacted = true;
  });
  // Read in small batches while the pass runs; apply as a consumer would.
  std::map<int64_t, std::string> state;
  Position next;
  Position last_seen;
  int reads = 0;
  for (;;) {
    std::vector<LogRecord> records;
    ASSERT_OK(log_->Read(next, 50, size_t{1} << 30, &records));
    if (records.empty()) break;
    ++reads;
    for (const LogRecord& record : records) {
      ASSERT_LT(last_seen, record.position);
      last_seen = record.position;
      v1::Change change;
      ASSERT_TRUE(change.ParseFromString(record.change));
      state[change.key(0).int_()] = change.after(1).text();
      next = record.position.Successor();
    }
  }
  compactor.join();
  EXPECT_TRUE(compacted);
  EXPECT_GT(reads, 1);
  ASSERT_EQ(state.size(), static_cast<size_t>(kKeys));
  for (const auto& [id, value] : state) EXPECT_EQ(value, absl::StrCat(kRounds - 1)) << id;
  EXPECT_EQ(ReadAll().size(), static_cast<size_t>(kKeys));
}

}  // namespace
}  // namespace walfeed
