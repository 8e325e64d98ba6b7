// walfeed killed exactly at each fault point (server/core/fault_point.h), with a real PostgreSQL:
// the next start loses nothing and doubles nothing, and what the gap leaves behind is either
// finished by walfeed itself or refused with a sentence naming the way out. (The replication
// point's test is in replication_test.cc, beside its NATS cluster.)
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/fault_point.h"
#include "server/core/position.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"
#include "tests/support/status_assertions.h"
#include "tests/support/wait.h"
#include "tests/support/walfeed_process.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> Arm(const std::string& point) {
  return {absl::StrCat("WALFEED_FAULT_POINT=", point)};
}

std::string Reached(const std::string& point) {
  return absl::StrCat("fault point ", point, " reached");
}

class FaultPoints : public WalfeedTest {
 protected:
  void SetUp() override {
    WalfeedTest::SetUp();
    if (!kFaultPointsCompiledIn) GTEST_FAIL() << "this build has no fault points";
  }

  // Applies the feed to id -> v, as a consumer rebuilding the table would.
  static std::map<int64_t, std::string> Apply(const std::vector<v1::Change>& changes) {
    std::map<int64_t, std::string> rows;
    for (const v1::Change& change : changes) {
      const v1::Column* id = FindColumn(change.key(), "id");
      if (id == nullptr) continue;
      if (change.op() == v1::Change::DELETE) {
        rows.erase(id->int_());
      } else {
        rows[id->int_()] = FindColumn(change.after(), "v")->text();
      }
    }
    return rows;
  }

  // An LSN-valued SQL `expression` in `database`, as a number (0 when NULL or on failure).
  static uint64_t LsnNumber(const std::string& database, const std::string& expression) {
    absl::StatusOr<std::vector<std::vector<std::string>>> rows =
        SharedPostgres().Query(database, absl::StrCat("SELECT (", expression, " - '0/0')::bigint"));
    return rows.ok() && !rows->empty() && (*rows)[0][0] != "<null>"
               ? static_cast<uint64_t>(std::stoull((*rows)[0][0]))
               : 0;
  }

  // Asks for a compaction pass with compaction.after_delete_batch armed: walfeed dies under it.
  void CompactUntilKilledAtTheFaultPoint() {
    const RunResult compact = RunCommand(
        {WalfeedctlBinary(), "compact", "--server", walfeed_->address()}, absl::Seconds(120));
    EXPECT_NE(compact.exit_code, 0) << "walfeed died under the pass: " << compact.output;
    ASSERT_TRUE(walfeed_->AwaitExit(absl::Seconds(60)));
    ASSERT_THAT(walfeed_->Log(), HasSubstr(Reached("compaction.after_delete_batch")));
  }

  // Creates table t (`columns`), streams one row into the log and stops walfeed cleanly: the
  // slot is then confirmed past everything so far.
  void StreamOneRowThenStop(const std::string& columns, const std::string& row) {
    Sql(absl::StrCat("CREATE TABLE t (", columns, ")"));
    StartWalfeed();
    Sql(absl::StrCat("INSERT INTO t VALUES (", row, ")"));
    ASSERT_OK(CommitMarkerAndRead("first"));
    ASSERT_EQ(walfeed_->Terminate(), 0);
  }

  // Starts walfeed with `options` and source.before_append armed to hold: returns it once it is
  // held just before its first append (that append never happens).
  std::unique_ptr<WalfeedProcess> StartHeldBeforeAppend(WalfeedOptions options) {
    options.env = Arm("source.before_append:hold");
    absl::StatusOr<std::unique_ptr<WalfeedProcess>> held = WalfeedProcess::Start(options);
    EXPECT_OK(held);
    if (!held.ok()) return nullptr;
    EXPECT_TRUE(WaitUntil(
        [&] { return absl::StrContains((*held)->Log(), Reached("source.before_append")); },
        absl::Seconds(30)))
        << (*held)->Log();
    return *std::move(held);
  }

  std::map<int64_t, std::string> TableContents() {
    std::map<int64_t, std::string> rows;
    for (const auto& row : Query("SELECT id, v FROM t")) rows[std::stoll(row[0])] = row[1];
    return rows;
  }
};

TEST_F(FaultPoints, AFaultPointNameThatIsNoneIsRefusedAtStart) {
  RunResult run = RunWalfeed(BaseArgs(Options().conninfo), Arm("source.no_such_point"));
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("which is no fault point"));
  EXPECT_THAT(run.output, HasSubstr("source.appended_before_confirm"));
}

// PostgreSQL is told nothing of what the killed walfeed appended: it sends it again, and the
// log's resume point keeps every change of it from being stored twice.
TEST_F(FaultPoints, KilledAfterADurableAppendBeforeConfirmingItDoublesNothing) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  StartWalfeed();
  for (int id = 1; id <= 20; ++id) Sql(absl::StrCat("INSERT INTO t VALUES (", id, ", 'a')"));
  ASSERT_OK(CommitMarkerAndRead("first"));
  ASSERT_EQ(walfeed_->Terminate(), 0);
  for (int id = 21; id <= 60; id += 4) {
    Sql(absl::StrCat("INSERT INTO t SELECT g, 'b' FROM generate_series(", id, ", ", id + 3, ") g"));
  }
  RunResult killed =
      RunWalfeed(BaseArgs(Options().conninfo), Arm("source.appended_before_confirm"));
  ASSERT_THAT(killed.output, HasSubstr(Reached("source.appended_before_confirm")));
  EXPECT_EQ(killed.exit_code, -1) << "killed by its own SIGKILL";
  const uint64_t confirmed_at_kill = SlotConfirmedLsn();
  ASSERT_NE(confirmed_at_kill, 0u) << "the slot has confirmed the first rows";

  StartWalfeed();
  Sql("INSERT INTO t VALUES (61, 'c')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  EXPECT_EQ(KeyIds(*changes), IdRange(1, 61)) << "every committed row once, in commit order";
  for (const v1::Change& change : *changes) {
    const v1::Column* id = FindColumn(change.key(), "id");
    if (id == nullptr || id->int_() != 21) continue;
    EXPECT_LT(confirmed_at_kill, change.lsn())
        << "PostgreSQL was never told of what the killed walfeed appended, so it sent it again";
  }
}

// The central durability promise: PostgreSQL is never told a change is safe before the log holds
// it. walfeed is held just before it appends a transaction (the step that syncs it) while it keeps
// talking to PostgreSQL: every keepalive answered, other databases' WAL passing by. The slot's
// confirmed_flush_lsn must stay at or before the transaction's start; after a kill -9 PostgreSQL
// sends it again.
TEST_F(FaultPoints, NothingIsConfirmedToPostgresBeforeTheLogHoldsIt) {
  StreamOneRowThenStop("id int PRIMARY KEY, v text", "1, 'a'");
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t transaction_start = LsnNumber(db_, "pg_current_wal_insert_lsn()");
  Sql("INSERT INTO t SELECT g, 'b' FROM generate_series(2, 50) g");

  // PostgreSQL asks for a reply every second (wal_sender_timeout 2 s), and WAL of another
  // database moves the server's end on: walfeed answers both while its append never happens.
  WalfeedOptions options = Options();
  options.conninfo += " options='-c wal_sender_timeout=2s'";
  std::unique_ptr<WalfeedProcess> held = StartHeldBeforeAppend(options);
  ASSERT_FALSE(HasFailure());
  const std::string slot_lsn = absl::StrCat(
      "(SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '", slot_, "')");
  const std::string reply_time =
      absl::StrCat("SELECT r.reply_time FROM pg_stat_replication r JOIN pg_replication_slots s ",
                   "ON s.active_pid = r.pid WHERE s.slot_name = '", slot_, "'");
  const auto last_reply = [&] {
    absl::StatusOr<std::vector<std::vector<std::string>>> rows =
        SharedPostgres().Query("postgres", reply_time);
    return rows.ok() && !rows->empty() ? (*rows)[0][0] : std::string();
  };
  std::set<std::string> replies;
  uint64_t highest_confirmed = 0;
  for (const absl::Time until = absl::Now() + absl::Seconds(5); absl::Now() < until;) {
    ASSERT_OK(SharedPostgres().Exec("postgres", "SELECT pg_logical_emit_message(false, 'x', 'y')"));
    highest_confirmed = std::max(highest_confirmed, LsnNumber(db_, slot_lsn));
    replies.insert(last_reply());
    absl::SleepFor(absl::Milliseconds(100));
  }
  replies.erase("");
  EXPECT_GE(replies.size(), 3u) << "walfeed kept answering PostgreSQL while its append was held";
  EXPECT_GT(LsnNumber("postgres", "pg_current_wal_lsn()"), transaction_start + 1000)
      << "the server's WAL end moved past the held transaction";
  EXPECT_LE(highest_confirmed, transaction_start)
      << "PostgreSQL was told the held transaction was safe before the log held it";

  held->Kill();
  StartWalfeed();
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  EXPECT_EQ(KeyIds(*changes), IdRange(1, 50)) << "PostgreSQL sent the held transaction again";
}

// While a sync does not complete, decoding runs ahead by at most 16 MiB of decoded transactions
// (estimated at four times what pgoutput sent), then pauses: walfeed stops reading, and
// PostgreSQL stops sending. Held before its first append with a backlog of ~100 MB waiting,
// walfeed lets the walsender send only a bounded part of it; after a kill -9 all of it arrives.
TEST_F(FaultPoints, DecodedWorkWaitingForASyncIsBounded) {
  StreamOneRowThenStop("id int PRIMARY KEY, pad text", "0, ''");
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t backlog_start = LsnNumber(db_, "pg_current_wal_insert_lsn()");
  // 2,000 transactions of 50 rows of ~1 KB (incompressible text).
  Sql("DO $$ BEGIN FOR i IN 0..1999 LOOP INSERT INTO t SELECT i * 50 + g, (SELECT "
      "string_agg(md5(random()::text), '') FROM generate_series(1, 32 + 0 * g)) FROM "
      "generate_series(1, 50) g; COMMIT; END LOOP; END $$");
  const uint64_t backlog_end = LsnNumber(db_, "pg_current_wal_insert_lsn()");
  ASSERT_GT(backlog_end - backlog_start, uint64_t{90} << 20);

  WalfeedOptions options = Options();
  options.wait_for_streaming = false;
  std::unique_ptr<WalfeedProcess> held = StartHeldBeforeAppend(options);
  ASSERT_FALSE(HasFailure());
  // What the walsender has sent, once it stops moving (walfeed no longer reads).
  const std::string sent = absl::StrCat(
      "(SELECT r.sent_lsn FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid "
      "= r.pid WHERE s.slot_name = '",
      slot_, "')");
  uint64_t sent_before = 0;
  uint64_t sent_now = 0;
  EXPECT_TRUE(WaitUntil(
      [&] {
        sent_before = sent_now;
        sent_now = LsnNumber(db_, sent);
        return sent_now != 0 && sent_now == sent_before;
      },
      absl::Seconds(30), absl::Seconds(1)))
      << "the walsender kept sending: " << sent_before << " then " << sent_now;
  EXPECT_GT(sent_now, backlog_start);
  EXPECT_LT(sent_now - backlog_start, uint64_t{48} << 20)
      << "walfeed read " << ((sent_now - backlog_start) >> 20) << " MiB of a "
      << ((backlog_end - backlog_start) >> 20) << " MiB backlog while nothing was synced";

  held->Kill();
  StartWalfeed();
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  EXPECT_EQ(KeyIds(*changes), IdRange(0, 100000));
}

// The slot exists, but the log never recorded that it is the one its snapshot created: walfeed
// cannot prove the slot is its own, so it never drops it; it says what happened and what to do,
// and once the operator drops the slot the snapshot is taken whole.
TEST_F(FaultPoints, KilledBetweenCreatingTheSnapshotSlotAndRecordingItIsNamedWithTheWayOut) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("INSERT INTO t SELECT g, 'existing' FROM generate_series(1, 50) g");
  RunResult killed =
      RunWalfeed(BaseArgs(Options().conninfo), Arm("snapshot.slot_created_before_recorded"));
  ASSERT_THAT(killed.output, HasSubstr(Reached("snapshot.slot_created_before_recorded")));
  ASSERT_TRUE(SlotExists(slot_));

  RunResult refused = RunWalfeed(BaseArgs(Options().conninfo));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("stopped while it created that slot"));
  EXPECT_THAT(refused.output, HasSubstr(absl::StrCat("pg_drop_replication_slot('", slot_, "')")));
  EXPECT_TRUE(SlotExists(slot_)) << "a slot walfeed cannot prove its own is never dropped";

  Sql(absl::StrCat("SELECT pg_drop_replication_slot('", slot_, "')"));
  StartWalfeed();
  Sql("INSERT INTO t VALUES (51, 'new')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  EXPECT_EQ(KeyIds(*changes), IdRange(1, 51));
  EXPECT_EQ(Apply(*changes), TableContents());
}

// The snapshot is committed (and marked done in the same write); the captured tables' record is
// not. The next start takes the tables as they are and streams on from the snapshot's point.
TEST_F(FaultPoints, KilledAfterCommittingTheSnapshotBeforeRecordingItsTablesLosesNothing) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("INSERT INTO t SELECT g, 'existing' FROM generate_series(1, 50) g");
  RunResult killed =
      RunWalfeed(BaseArgs(Options().conninfo), Arm("snapshot.committed_before_tables_recorded"));
  ASSERT_THAT(killed.output, HasSubstr(Reached("snapshot.committed_before_tables_recorded")));
  Sql("UPDATE t SET v = 'changed while down' WHERE id = 7");

  StartWalfeed();
  EXPECT_EQ(FeedInfo().snapshot_state(), "done");
  Sql("INSERT INTO t VALUES (51, 'new')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  std::vector<int64_t> expected = IdRange(1, 50);
  expected.insert(expected.end(), {7, 51});
  EXPECT_EQ(KeyIds(*changes), expected) << "the snapshot once, then what was committed after it";
  EXPECT_EQ(Apply(*changes), TableContents());
  EXPECT_THAT(walfeed_->Log(), ::testing::Not(HasSubstr("event=added_tables_snapshot_started")));
}

// A compaction pass wrote its first batch of deletes and died: what it removed stays removed,
// what it had not reached is still there, the feed still rebuilds the table, and the next pass
// finishes the work.
TEST_F(FaultPoints, KilledBetweenCompactionBatchesLeavesAConsistentLogTheNextPassFinishes) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  const std::vector<std::string> flags = {"--compaction-lag", "0s", "--compaction-interval", "off"};
  StartWalfeed(flags, true, Arm("compaction.after_delete_batch"));
  constexpr int kRows = 15000;  // superseded images: more than one batch of 10,000
  Sql(absl::StrCat("INSERT INTO t SELECT g, 'first' FROM generate_series(1, ", kRows, ") g"));
  Sql("UPDATE t SET v = 'second'");
  ASSERT_OK(CommitMarkerAndRead("loaded"));
  CompactUntilKilledAtTheFaultPoint();
  ASSERT_FALSE(HasFatalFailure());

  StartWalfeed(flags);
  absl::StatusOr<std::vector<v1::Change>> after_kill = CommitMarkerAndRead("after-kill");
  ASSERT_OK(after_kill);
  const size_t rows_after_kill = KeyIds(*after_kill).size();
  EXPECT_EQ(rows_after_kill, 2u * kRows - 10000) << "exactly one batch was removed";
  EXPECT_EQ(Apply(*after_kill), TableContents());

  const RunResult finished = RunCommand(
      {WalfeedctlBinary(), "compact", "--server", walfeed_->address()}, absl::Seconds(120));
  ASSERT_EQ(finished.exit_code, 0) << finished.output;
  absl::StatusOr<std::vector<v1::Change>> compacted = CommitMarkerAndRead("compacted");
  ASSERT_OK(compacted);
  std::vector<int64_t> ids = KeyIds(*compacted);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, IdRange(1, kRows)) << "one image per row";
  EXPECT_EQ(Apply(*compacted), TableContents());
}

// Killed between two batches of a pass that purges deletes: every delete that is gone is at or
// before the stored purge point, so a cursor from before it is told CURSOR_PURGED instead of
// being served a feed that silently lacks the delete; the next pass finishes the job.
TEST_F(FaultPoints, KilledMidPassThePurgePointCoversEveryPurgedDelete) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  const std::vector<std::string> flags = {
      "--compaction-lag", "0s", "--compaction-interval", "off", "--delete-retention", "0s"};
  StartWalfeed(flags, true, Arm("compaction.after_delete_batch"));
  // 8,000 rows inserted and deleted (16,000 changes: more than one batch of 10,000), and a few
  // that stay.
  Sql("DO $$ BEGIN FOR i IN 1..8000 LOOP INSERT INTO t VALUES (i, 'gone'); DELETE FROM t WHERE "
      "id = i; COMMIT; END LOOP; END $$");
  Sql("INSERT INTO t SELECT g, 'kept' FROM generate_series(100001, 100010) g");
  absl::StatusOr<std::vector<v1::Change>> loaded = CommitMarkerAndRead("loaded");
  ASSERT_OK(loaded);
  std::vector<Position> deletes;
  for (const v1::Change& change : *loaded) {
    if (change.op() == v1::Change::DELETE) deletes.push_back({change.lsn(), change.seq()});
  }
  ASSERT_EQ(deletes.size(), 8000u);
  CompactUntilKilledAtTheFaultPoint();
  ASSERT_FALSE(HasFatalFailure());

  StartWalfeed(flags);
  absl::StatusOr<std::vector<v1::Change>> after_kill = CommitMarkerAndRead("after-kill");
  ASSERT_OK(after_kill);
  std::set<Position> remaining;
  for (const v1::Change& change : *after_kill) remaining.insert({change.lsn(), change.seq()});
  std::vector<Position> purged;
  for (const Position& position : deletes) {
    if (remaining.count(position) == 0) purged.push_back(position);
  }
  ASSERT_FALSE(purged.empty()) << "the first batch purged deletes";
  ASSERT_LT(purged.size(), deletes.size()) << "the kill landed before the pass's end";
  grpc::ClientContext context;
  v1::FeedInfo info;
  ASSERT_OK(walfeed_->NewStub()->GetFeedInfo(&context, v1::GetFeedInfoRequest(), &info));
  absl::StatusOr<Position> purge_point = ParseCursor(info.purge_cursor());
  ASSERT_OK(purge_point);
  EXPECT_GE(*purge_point, purged.back()) << "a purged delete lies beyond the purge point";
  EXPECT_EQ(Apply(*after_kill), TableContents());

  // A consumer that last saw the change before the first purged delete is sent back.
  const auto first_purged = std::find_if(loaded->begin(), loaded->end(), [&](const v1::Change& c) {
    return Position{c.lsn(), c.seq()} == purged.front();
  });
  ASSERT_NE(first_purged, loaded->begin());
  v1::SubscribeRequest request;
  request.set_cursor((first_purged - 1)->cursor());
  grpc::ClientContext stream_context;
  auto reader = walfeed_->NewStub()->Subscribe(&stream_context, request);
  v1::SubscribeResponse response;
  while (reader->Read(&response)) {
  }
  const grpc::Status refused = reader->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::OUT_OF_RANGE) << refused.error_message();

  const RunResult finished = RunCommand(
      {WalfeedctlBinary(), "compact", "--server", walfeed_->address()}, absl::Seconds(120));
  ASSERT_EQ(finished.exit_code, 0) << finished.output;
  absl::StatusOr<std::vector<v1::Change>> compacted = CommitMarkerAndRead("compacted");
  ASSERT_OK(compacted);
  EXPECT_EQ(KeyIds(*compacted), IdRange(100001, 100010)) << "only the rows that stay";
  grpc::ClientContext after_context;
  ASSERT_OK(walfeed_->NewStub()->GetFeedInfo(&after_context, v1::GetFeedInfoRequest(), &info));
  purge_point = ParseCursor(info.purge_cursor());
  ASSERT_OK(purge_point);
  EXPECT_GE(*purge_point, deletes.back());
}

}  // namespace
}  // namespace walfeed::test
