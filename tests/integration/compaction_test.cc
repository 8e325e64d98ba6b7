// Compaction by primary key end to end: changes from a real PostgreSQL, compacted by the real
// walfeed on `walfeedctl compact`, read back over gRPC.
#include <google/protobuf/util/json_util.h>
#include <signal.h>

#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/position.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"
#include "tests/support/grpc_reason.h"
#include "tests/support/status_assertions.h"
#include "tests/support/wait.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

class Compaction : public WalfeedTest {
 protected:
  // Background passes off: each test decides when a pass runs.
  void StartCompactingWalfeed() {
    StartWalfeed({"--compaction-lag", "0s", "--compaction-interval", "off"});
  }

  // Runs `walfeedctl compact` with `args`; returns what the pass did.
  v1::CompactionResult CompactNow(std::vector<std::string> args = {}) {
    args.insert(args.begin(), {WalfeedctlBinary(), "compact", "--server", walfeed_->address()});
    const RunResult run = RunCommand(args, absl::Seconds(120));
    EXPECT_EQ(run.exit_code, 0) << run.output;
    v1::CompactionResult result;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(run.output, &result).ok())
        << run.output;
    return result;
  }

  // Every row change (messages left out) from 0 up to the head, in order.
  std::vector<v1::Change> RowChangesFromZero() {
    absl::StatusOr<std::vector<v1::Change>> all = ReadToHead(*walfeed_->NewStub(), {});
    EXPECT_OK(all);
    std::vector<v1::Change> rows;
    if (!all.ok()) return rows;
    for (size_t i = 0; i < all->size(); ++i) {
      if (i > 0) {
        EXPECT_LT((Position{(*all)[i - 1].lsn(), (*all)[i - 1].seq()}),
                  (Position{(*all)[i].lsn(), (*all)[i].seq()}));
      }
      if ((*all)[i].op() != v1::Change::MESSAGE) rows.push_back((*all)[i]);
    }
    return rows;
  }

  void WaitFor(const std::string& marker) {
    Sql(MarkerSql(marker));
    // Generous: under AddressSanitizer on a busy machine, hundreds of thousands of changes
    // take minutes to ingest; a passing run returns as soon as the marker arrives.
    ASSERT_OK(ReadUntilMarker(*walfeed_->NewStub(), {}, marker, absl::Minutes(5)));
  }
};

int64_t IntColumn(const v1::Change& change, const std::string& name) {
  const v1::Column* column = FindColumn(change.after(), name);
  return column == nullptr ? -1 : column->int_();
}

TEST_F(Compaction, ReadFromZeroAfterCompactionHoldsOneChangePerLiveRowWithItsNewestValues) {
  Sql("CREATE TABLE hot (id int PRIMARY KEY, v int)");
  Sql("CREATE TABLE cold (id int PRIMARY KEY, v int)");
  StartCompactingWalfeed();
  Sql("INSERT INTO hot VALUES (1, 0)");
  Sql("DO $$ BEGIN FOR i IN 1..1000 LOOP UPDATE hot SET v = i WHERE id = 1; COMMIT; END LOOP; "
      "END $$");
  Sql("DO $$ BEGIN FOR i IN 1..100 LOOP INSERT INTO cold VALUES (i, i * 10); COMMIT; END LOOP; "
      "END $$");
  WaitFor("written");
  ASSERT_EQ(RowChangesFromZero().size(), 1101u);

  const v1::CompactionResult result = CompactNow();
  EXPECT_EQ(result.superseded_removed(), 1000u);
  EXPECT_EQ(result.tombstones_purged(), 0u);
  EXPECT_EQ(result.live_keys(), 101u);

  const std::vector<v1::Change> rows = RowChangesFromZero();
  ASSERT_EQ(rows.size(), 101u);
  EXPECT_EQ(rows[0].table(), "hot");
  EXPECT_EQ(IntColumn(rows[0], "v"), 1000);
  for (int i = 1; i <= 100; ++i) {
    EXPECT_EQ(rows[i].table(), "cold");
    EXPECT_EQ(IntColumn(rows[i], "id"), i);
    EXPECT_EQ(IntColumn(rows[i], "v"), i * 10);
  }
  EXPECT_EQ(FeedInfo().live_keys(), 101u);
}

TEST_F(Compaction, TombstoneIsReadWithinRetentionAndPurgedAfterItWithOutOfRangeForOldCursors) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  StartCompactingWalfeed();
  Sql("INSERT INTO t VALUES (1, 'gone soon'), (2, 'stays')");
  WaitFor("inserted");
  const std::vector<v1::Change> inserted = RowChangesFromZero();
  ASSERT_EQ(inserted.size(), 2u);
  Sql("DELETE FROM t WHERE id = 1");
  WaitFor("deleted");

  // Within the delete retention (24h by default): the insert of row 1 is superseded, the
  // tombstone stays, and an old cursor still resumes.
  EXPECT_EQ(CompactNow().tombstones_purged(), 0u);
  std::vector<v1::Change> rows = RowChangesFromZero();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].op(), v1::Change::INSERT);
  EXPECT_EQ(rows[1].op(), v1::Change::DELETE);
  v1::SubscribeRequest resume;
  resume.set_cursor(inserted[0].cursor());
  ASSERT_OK(ReadToHead(*walfeed_->NewStub(), resume));

  // Past it: neither row 1 nor its tombstone; the old cursor is refused, not misled.
  const v1::CompactionResult purged = CompactNow({"--delete-retention", "0s"});
  EXPECT_EQ(purged.tombstones_purged(), 1u);
  rows = RowChangesFromZero();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(IntColumn(rows[0], "id"), 2);
  absl::StatusOr<std::vector<v1::Change>> refused = ReadToHead(*walfeed_->NewStub(), resume);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(refused.status().message(), HasSubstr("from_lsn=0"));
  EXPECT_EQ(FeedInfo().purge_cursor(), purged.purge_cursor());
}

TEST_F(Compaction, SnapshotRowsAreMergedAndTablesKeyedByEveryColumnAreNot) {
  Sql("CREATE TABLE keyed (id int PRIMARY KEY, v int)");
  Sql("CREATE TABLE full_row (id int, v int)");
  Sql("ALTER TABLE full_row REPLICA IDENTITY FULL");
  Sql("INSERT INTO keyed VALUES (1, 0), (2, 0)");  // read by the initial snapshot
  StartCompactingWalfeed();
  Sql("UPDATE keyed SET v = 1 WHERE id = 1");
  Sql("INSERT INTO full_row VALUES (1, 0), (1, 0)");  // equal rows: never told apart
  Sql("UPDATE full_row SET v = 1");
  WaitFor("written");
  const std::vector<v1::Change> before = RowChangesFromZero();
  ASSERT_EQ(before.size(), 7u);
  EXPECT_EQ(before[0].op(), v1::Change::READ);
  EXPECT_EQ(before[0].key_kind(), v1::Change::PRIMARY_KEY);
  EXPECT_EQ(before.back().key_kind(), v1::Change::FULL_ROW);

  EXPECT_EQ(CompactNow().superseded_removed(), 1u);  // keyed row 1's snapshot image
  const std::vector<v1::Change> rows = RowChangesFromZero();
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0].op(), v1::Change::READ);
  EXPECT_EQ(IntColumn(rows[0], "id"), 2);
  EXPECT_EQ(rows[1].op(), v1::Change::UPDATE);
}

TEST_F(Compaction, RecentChangesInsideTheLagWindowAllStay) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v int)");
  StartWalfeed({"--compaction-lag", "1h", "--compaction-interval", "off"});
  Sql("INSERT INTO t VALUES (1, 0)");
  Sql("DO $$ BEGIN FOR i IN 1..50 LOOP UPDATE t SET v = i; COMMIT; END LOOP; END $$");
  WaitFor("written");
  const v1::CompactionResult result = CompactNow();
  EXPECT_EQ(result.superseded_removed(), 0u);
  EXPECT_EQ(RowChangesFromZero().size(), 51u);
  // The same log with no lag keeps one.
  EXPECT_EQ(CompactNow({"--compaction-lag", "0s"}).superseded_removed(), 50u);
  EXPECT_EQ(RowChangesFromZero().size(), 1u);
}

TEST_F(Compaction, KillDuringCompactionLeavesAConsistentLogThatTheNextPassFinishes) {
  constexpr int kKeys = 200;
  constexpr int kRounds = 100;
  Sql("CREATE TABLE t (id int PRIMARY KEY, v int)");
  StartCompactingWalfeed();
  Sql(absl::StrCat("INSERT INTO t SELECT g, 0 FROM generate_series(1, ", kKeys, ") g"));
  Sql(absl::StrCat("DO $$ BEGIN FOR i IN 1..", kRounds,
                   " LOOP UPDATE t SET v = i; COMMIT; END LOOP; END $$"));
  WaitFor("written");

  std::mt19937 random(42);
  int killed_mid_pass = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const size_t log_start = walfeed_->Log().size();
    const auto logged = [&](const char* event) {
      return walfeed_->Log().find(event, log_start) != std::string::npos;
    };
    ChildProcess compact = *ChildProcess::Spawn(
        {WalfeedctlBinary(), "compact", "--server", walfeed_->address()}, dir_ + "/compact.log");
    // The kill lands after the pass began, at a random moment of it.
    ASSERT_TRUE(WaitUntil([&] { return logged("event=compaction_started"); }, absl::Seconds(30),
                          absl::Milliseconds(1)))
        << walfeed_->Log();
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(0, 40)(random)));
    walfeed_->Kill();
    compact.Stop(SIGKILL);
    if (!logged("event=compaction_done")) ++killed_mid_pass;
    StartCompactingWalfeed();
    // Whatever the pass got through, a consumer from 0 rebuilds the same state.
    std::map<int64_t, int64_t> state;
    for (const v1::Change& change : RowChangesFromZero()) {
      state[IntColumn(change, "id")] = IntColumn(change, "v");
    }
    ASSERT_EQ(state.size(), static_cast<size_t>(kKeys)) << "attempt " << attempt;
    for (const auto& [id, v] : state) ASSERT_EQ(v, kRounds) << "row " << id;
  }
  EXPECT_GE(killed_mid_pass, 2) << "the kills are meant to land inside a pass";
  CompactNow();
  const std::vector<v1::Change> rows = RowChangesFromZero();
  ASSERT_EQ(rows.size(), static_cast<size_t>(kKeys));
  for (const v1::Change& change : rows) EXPECT_EQ(IntColumn(change, "v"), kRounds);
}

TEST_F(Compaction, SecondCompactWhileOneRunsIsRefusedClearly) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v int)");
  StartCompactingWalfeed();
  Sql("INSERT INTO t SELECT g, 0 FROM generate_series(1, 20000) g");
  Sql("DO $$ BEGIN FOR i IN 1..10 LOOP UPDATE t SET v = i; COMMIT; END LOOP; END $$");
  WaitFor("written");
  const std::string first_log = dir_ + "/first.log";
  ChildProcess first = *ChildProcess::Spawn(
      {WalfeedctlBinary(), "compact", "--server", walfeed_->address()}, first_log);
  // Once its pass runs, ask again over gRPC until a call overlaps it (a pass takes far longer
  // than a call): refused with the reason a client can switch on, and a sentence.
  ASSERT_TRUE(WaitUntil(
      [&] { return walfeed_->Log().find("event=compaction_started") != std::string::npos; },
      absl::Seconds(30), absl::Milliseconds(1)))
      << walfeed_->Log();
  std::unique_ptr<v1::Admin::Stub> admin = v1::Admin::NewStub(walfeed_->NewChannel());
  int refused = 0;
  int succeeded = 0;
  for (int i = 0; i < 200 && refused == 0 && first.running(); ++i) {
    grpc::ClientContext context;
    v1::CompactionResult result;
    const grpc::Status second = admin->Compact(&context, v1::CompactRequest(), &result);
    if (second.ok()) {
      ++succeeded;
    } else {
      EXPECT_EQ(second.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
      EXPECT_EQ(ReasonOf(second), "COMPACTION_RUNNING");
      EXPECT_THAT(second.error_message(), HasSubstr("already running"));
      ++refused;
    }
  }
  if (first.Stop(0, absl::Seconds(120)) == 0) {
    ++succeeded;
  } else {
    EXPECT_THAT(ReadFile(first_log), HasSubstr("already running"));
    ++refused;
  }
  EXPECT_GE(refused, 1) << "no call overlapped another's pass";
  EXPECT_GE(succeeded, 1);
}

}  // namespace
}  // namespace walfeed::test
