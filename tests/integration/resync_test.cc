// The slot is lost, and walfeed resynchronises (--on-slot-lost=resync, the default): a new slot,
// the captured tables read under its snapshot, and only the differences against the log appended,
// marked as a resynchronisation between two "walfeed.resync" messages. Against the real events:
// a slot dropped while walfeed was down, a slot PostgreSQL invalidated (max_slot_wal_keep_size),
// a physical standby promoted after the old primary had committed rows it never received, and a
// kill -9 in the middle of a resynchronisation. In each case a consumer that resumes with its old
// cursor ends with exactly PostgreSQL's rows, and the resynchronisation carried only the
// differences.
#include <map>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/feed_state.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"
#include "tests/support/walfeed_process.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

bool IsResyncMessage(const v1::Change& change) {
  return change.op() == v1::Change::MESSAGE && change.message().prefix() == "walfeed.resync";
}

// "INSERT t 11" per change: what a resynchronisation carried, in order.
std::vector<std::string> Described(const std::vector<v1::Change>& changes) {
  std::vector<std::string> out;
  for (const v1::Change& change : changes) {
    if (change.op() == v1::Change::MESSAGE) {
      out.push_back(absl::StrCat("MESSAGE ", change.message().prefix()));
      continue;
    }
    std::string id;
    for (const auto* columns : {&change.key(), &change.after(), &change.before()}) {
      for (const v1::Column& column : *columns) {
        if (id.empty() && column.name() == "id") id = TextForm(column);
      }
    }
    out.push_back(absl::StrCat(v1::Change::Op_Name(change.op()), " ", change.table(),
                               id.empty() ? "" : " ", id));
  }
  return out;
}

// The changes from the first walfeed.resync message to the second, both included.
std::vector<v1::Change> ResyncPart(const std::vector<v1::Change>& changes) {
  std::vector<v1::Change> part;
  for (const v1::Change& change : changes) {
    if (part.empty() && !IsResyncMessage(change)) continue;
    part.push_back(change);
    if (part.size() > 1 && IsResyncMessage(change)) break;
  }
  return part;
}

int CountResyncMessages(const std::vector<v1::Change>& changes) {
  int count = 0;
  for (const v1::Change& change : changes) count += IsResyncMessage(change) ? 1 : 0;
  return count;
}

class Resync : public WalfeedTest {
 protected:
  // Reads to the head and returns the head's cursor: where a consumer would resume.
  std::string ReadEverythingSoFar(const std::string& marker) {
    absl::StatusOr<std::vector<v1::Change>> read = CommitMarkerAndRead(marker);
    EXPECT_OK(read);
    return FeedInfo().newest_cursor();
  }

  // Resumes after `cursor` and reads until `marker` (committed now) arrives.
  std::vector<v1::Change> ResumeAfter(const std::string& cursor, const std::string& marker) {
    v1::SubscribeRequest request;
    request.set_cursor(cursor);
    request.set_log_id(log_id_);
    absl::StatusOr<std::vector<v1::Change>> read = CommitMarkerAndRead(marker, request);
    EXPECT_TRUE(read.ok()) << read.status() << "\n" << walfeed_->Log();
    return read.ok() ? *read : std::vector<v1::Change>{};
  }

  void ExpectWholeFeedMatchesSelect() {
    v1::SubscribeRequest request;
    request.set_from_lsn(0);
    absl::StatusOr<std::vector<v1::Change>> all = ReadToHead(*walfeed_->NewStub(), request);
    ASSERT_OK(all);
    ExpectFeedMatchesSelect(*all, [this](const std::string& sql) { return Query(sql); });
  }

  void DropSlot() { Sql(absl::StrCat("SELECT pg_drop_replication_slot('", slot_, "')")); }

  std::string log_id_;
};

TEST_F(Resync, SlotDroppedWhileDownGivesOnlyTheDifferences) {
  Sql("CREATE TABLE keyed (id int PRIMARY KEY, v text, n int)");
  // No key: PostgreSQL needs REPLICA IDENTITY FULL to publish its deletes.
  Sql("CREATE TABLE keyless (id int, v text)");
  Sql("ALTER TABLE keyless REPLICA IDENTITY FULL");
  Sql("CREATE TABLE big (id int PRIMARY KEY, doc text)");
  Sql("INSERT INTO keyed SELECT g, 'v' || g, g FROM generate_series(1, 10) g");
  Sql("INSERT INTO keyless VALUES (1, 'a'), (2, 'b'), (3, 'c')");
  // Values stored out of line: compared chunk by chunk, not resent when equal.
  Sql("INSERT INTO big SELECT g, repeat(md5(g::text), 40000) FROM generate_series(1, 2) g");
  StartWalfeed();
  log_id_ = FeedInfo().log_id();
  const std::string cursor = ReadEverythingSoFar("before");
  ASSERT_EQ(walfeed_->Terminate(), 0);

  DropSlot();
  Sql("INSERT INTO keyed VALUES (11, 'new', 11), (12, 'new', 12)");
  Sql("UPDATE keyed SET v = 'changed' WHERE id = 2");
  Sql("UPDATE keyed SET n = 30 WHERE id = 3");
  Sql("UPDATE keyed SET n = 3 WHERE id = 3");  // back as it was: no difference
  Sql("DELETE FROM keyed WHERE id IN (4, 5)");
  Sql("DELETE FROM keyed WHERE id = 6");
  Sql("INSERT INTO keyed VALUES (6, 'v6', 6)");  // the same row again: no difference
  Sql("INSERT INTO keyless VALUES (4, 'd')");
  Sql("DELETE FROM keyless WHERE id = 1");
  Sql("UPDATE big SET doc = repeat('z', 1500000) WHERE id = 2");

  StartWalfeed();
  EXPECT_EQ(FeedInfo().log_id(), log_id_) << "the log keeps its identity";
  Sql("INSERT INTO keyed VALUES (13, 'streamed', 13)");
  const std::vector<v1::Change> resumed = ResumeAfter(cursor, "after");
  const std::vector<v1::Change> resync = ResyncPart(resumed);
  EXPECT_THAT(Described(resync),
              ::testing::ElementsAre("MESSAGE walfeed.resync", "UPDATE big 2", "INSERT keyed 11",
                                     "INSERT keyed 12", "UPDATE keyed 2", "DELETE keyed 4",
                                     "DELETE keyed 5", "TRUNCATE keyless", "READ keyless 2",
                                     "READ keyless 3", "READ keyless 4", "MESSAGE walfeed.resync"));
  ASSERT_EQ(resync.size(), 12u);
  for (size_t i = 0; i < resync.size(); ++i) {
    EXPECT_TRUE(resync[i].resync()) << i;
    EXPECT_EQ(resync[i].lsn(), resync[0].lsn()) << "one transaction";
    EXPECT_EQ(resync[i].seq(), resync[0].seq() + i);
    EXPECT_EQ(resync[i].last_in_transaction(), i + 1 == resync.size());
  }
  EXPECT_THAT(resync[0].message().content(), HasSubstr("\"phase\":\"begin\""));
  EXPECT_THAT(resync[11].message().content(), HasSubstr("\"phase\":\"end\""));
  // The UPDATE's before is the log's newest image; the DELETE's too.
  EXPECT_EQ(TextForm(resync[4].before(1)), "v2");
  EXPECT_EQ(TextForm(resync[4].after(1)), "changed");
  EXPECT_EQ(TextForm(resync[5].before(1)), "v4");
  EXPECT_EQ(Described({resumed.back()}), std::vector<std::string>{"INSERT keyed 13"});
  EXPECT_FALSE(resumed.back().resync()) << "streamed, not resynchronised";

  const v1::FeedInfo info = FeedInfo();
  ASSERT_TRUE(info.has_last_resync());
  EXPECT_EQ(info.last_resync().inserts(), 2u);
  EXPECT_EQ(info.last_resync().updates(), 2u);
  EXPECT_EQ(info.last_resync().deletes(), 2u);
  EXPECT_EQ(info.last_resync().truncated_tables(), 1u);
  EXPECT_EQ(info.last_resync().reads(), 3u);
  EXPECT_EQ(info.last_resync().tables(), 3u);
  EXPECT_EQ(info.last_resync().first_cursor(), resync[0].cursor());
  EXPECT_EQ(info.last_resync().last_cursor(), resync[11].cursor());
  EXPECT_THAT(info.last_resync().reason(), HasSubstr("does not exist"));
  EXPECT_THAT(walfeed_->Log(), HasSubstr("event=resync_done"));
  ExpectWholeFeedMatchesSelect();

  // A restart keeps the record and does not resynchronise again.
  StartWalfeed();
  EXPECT_EQ(FeedInfo().last_resync().first_cursor(), resync[0].cursor());
  const std::string log = walfeed_->Log();  // the runs so far, one after the other
  EXPECT_EQ(log.find("event=resync_started"), log.rfind("event=resync_started"));
}

// --on-slot-lost=fail refuses, and writes nothing: a table first seen at that start is not read
// into the log before the refusal; the resynchronisation that follows carries it.
TEST_F(Resync, FailRefusesAndNamesTheWayOut) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed();
  log_id_ = FeedInfo().log_id();
  Sql("INSERT INTO t VALUES (1)");
  const std::string cursor = ReadEverythingSoFar("in");
  ASSERT_EQ(walfeed_->Terminate(), 0);
  DropSlot();
  Sql("CREATE TABLE added (id int PRIMARY KEY)");
  Sql("INSERT INTO added VALUES (1)");
  std::vector<std::string> args = BaseArgs(SharedPostgres().Conninfo(db_));
  args.insert(args.end(), {"--on-slot-lost", "fail"});
  RunResult refused = RunWalfeed(args);
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("does not exist"));
  EXPECT_THAT(refused.output, HasSubstr("--on-slot-lost=resync"));
  EXPECT_FALSE(SlotExists(slot_)) << "no slot was created behind the user's back";

  StartWalfeed();
  EXPECT_THAT(
      Described(ResumeAfter(cursor, "after")),
      ::testing::ElementsAre("MESSAGE walfeed.resync", "INSERT added 1", "MESSAGE walfeed.resync"));
}

// PostgreSQL removed WAL the slot needed while walfeed was down: the slot is there but can never
// stream again (wal_status 'lost'). It is dropped and the log resynchronised.
TEST_F(Resync, SlotInvalidatedByMaxSlotWalKeepSizeIsResynchronised) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("INSERT INTO t SELECT g, 'v' FROM generate_series(1, 5) g");
  StartWalfeed();
  log_id_ = FeedInfo().log_id();
  const std::string cursor = ReadEverythingSoFar("before");
  ASSERT_EQ(walfeed_->Terminate(), 0);

  ASSERT_TRUE(
      SharedPostgres().Exec("postgres", "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'").ok());
  ASSERT_OK(SharedPostgres().Exec("postgres", "SELECT pg_reload_conf()"));
  Sql("DELETE FROM t WHERE id = 1");
  Sql("UPDATE t SET v = 'w' WHERE id = 2");
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  std::string status;
  while (status != "lost" && absl::Now() < deadline) {
    Sql("INSERT INTO t SELECT g, repeat('x', 1000) FROM generate_series(100, 3000) g");
    Sql("DELETE FROM t WHERE id >= 100");
    (void)SharedPostgres().Exec("postgres", "SELECT pg_switch_wal()");
    (void)SharedPostgres().Exec("postgres", "CHECKPOINT");
    const auto rows = Query(absl::StrCat(
        "SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = '", slot_,
        "'"));
    status = rows.empty() ? "gone" : rows[0][0];
  }
  ASSERT_OK(SharedPostgres().Exec("postgres", "ALTER SYSTEM RESET max_slot_wal_keep_size"));
  ASSERT_OK(SharedPostgres().Exec("postgres", "SELECT pg_reload_conf()"));
  ASSERT_EQ(status, "lost") << "PostgreSQL never invalidated the slot";

  StartWalfeed();
  const std::vector<v1::Change> resync = ResyncPart(ResumeAfter(cursor, "after"));
  EXPECT_THAT(Described(resync), ::testing::ElementsAre("MESSAGE walfeed.resync", "UPDATE t 2",
                                                        "DELETE t 1", "MESSAGE walfeed.resync"));
  EXPECT_THAT(FeedInfo().last_resync().reason(), HasSubstr("invalidated"));
  EXPECT_THAT(walfeed_->Log(), HasSubstr("event=resync_slot_dropped"));
  ExpectWholeFeedMatchesSelect();
}

// kill -9 at a random moment of a resynchronisation: the log stays as it was, the next start
// drops the slot it left behind and does it again, and exactly one resynchronisation lands.
TEST_F(Resync, KilledMidwayLeavesTheLogAsItWasAndIsRedone) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 60000) g");
  StartWalfeed();
  log_id_ = FeedInfo().log_id();
  const std::string cursor = ReadEverythingSoFar("before");
  const std::string head_before = cursor;
  ASSERT_EQ(walfeed_->Terminate(), 0);
  DropSlot();
  Sql("UPDATE t SET v = 'changed' WHERE id % 1000 = 0");
  Sql("DELETE FROM t WHERE id % 1000 = 1");

  StartWalfeed({}, /*wait_for_streaming=*/false);
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (FeedInfo().source_state() != "resyncing") {
    ASSERT_LT(absl::Now(), deadline) << walfeed_->Log();
    absl::SleepFor(absl::Milliseconds(2));
  }
  std::mt19937 random(std::random_device{}());
  absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(0, 400)(random)));
  walfeed_->Kill();

  StartWalfeed();
  const std::vector<v1::Change> resumed = ResumeAfter(cursor, "after");
  EXPECT_EQ(CountResyncMessages(resumed), 2) << "exactly one resynchronisation";
  const std::vector<v1::Change> resync = ResyncPart(resumed);
  EXPECT_EQ(resync.size(), 2u + 60 + 60);
  ExpectWholeFeedMatchesSelect();
}

// A physical standby is promoted after the old primary committed rows it never received; walfeed,
// given both hosts, follows the failover and brings the feed back to the new primary's truth.
TEST_F(Resync, PromotedStandbyBringsTheFeedBackToTheNewPrimarysRows) {
  absl::StatusOr<std::unique_ptr<PostgresCluster>> primary = PostgresCluster::Start();
  ASSERT_OK(primary);
  absl::StatusOr<std::string> db = (*primary)->CreateDatabase("failover");
  ASSERT_OK(db);
  const auto exec = [&](PostgresCluster& cluster, const std::string& sql) {
    absl::Status done = cluster.Exec(*db, sql);
    ASSERT_TRUE(done.ok()) << sql << ": " << done;
  };
  exec(**primary, "CREATE TABLE t (id int PRIMARY KEY, v text)");
  exec(**primary, "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g");
  absl::StatusOr<std::unique_ptr<PostgresCluster>> standby = (*primary)->StartStandby();
  ASSERT_OK(standby);

  WalfeedOptions options = Options();
  options.conninfo = absl::StrCat("host=127.0.0.1,127.0.0.1 port=", (*primary)->port(), ",",
                                  (*standby)->port(), " user=postgres dbname=", *db,
                                  " target_session_attrs=read-write connect_timeout=5");
  options.extra_args = {"--unhealthy-after", "600s"};
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> started = WalfeedProcess::Start(options);
  ASSERT_OK(started);
  walfeed_ = std::move(*started);
  exec(**primary, "INSERT INTO t SELECT g, 'v' || g FROM generate_series(21, 30) g");
  // Writes flowing: the standby has replayed them all.
  const absl::Time replayed_by = absl::Now() + absl::Seconds(60);
  for (;;) {
    absl::StatusOr<std::vector<std::vector<std::string>>> count =
        (*standby)->Query(*db, "SELECT count(*) FROM t");
    if (count.ok() && (*count)[0][0] == "30") break;
    ASSERT_LT(absl::Now(), replayed_by) << "the standby never replayed the rows";
    absl::SleepFor(absl::Milliseconds(50));
  }
  // The standby stops receiving; the old primary commits more, which walfeed streams.
  ASSERT_OK((*standby)->StopServer());
  exec(**primary, "INSERT INTO t SELECT g, 'lost' FROM generate_series(31, 35) g");
  exec(**primary, "UPDATE t SET v = 'lost' WHERE id = 1");
  exec(**primary, "DELETE FROM t WHERE id = 2");
  // Enough WAL that the promoted standby's WAL is surely behind what walfeed has read.
  exec(**primary, "SELECT pg_logical_emit_message(true, 'padding', repeat('x', 200000))");
  exec(**primary, MarkerSql("before"));
  ASSERT_OK(ReadUntilMarker(*walfeed_->NewStub(), {}, "before"));
  const v1::FeedInfo before = FeedInfo();
  const std::string cursor = before.newest_cursor();

  // Failover: the old primary goes away, the standby is promoted.
  ASSERT_OK((*primary)->StopServer());
  ASSERT_OK((*standby)->StartServer());
  ASSERT_OK((*standby)->Promote());
  const absl::Time resynced_by = absl::Now() + absl::Seconds(180);
  while (!FeedInfo().has_last_resync()) {
    ASSERT_LT(absl::Now(), resynced_by) << walfeed_->Log();
    absl::SleepFor(absl::Milliseconds(100));
  }
  exec(**standby, "INSERT INTO t VALUES (100, 'new primary')");
  exec(**standby, MarkerSql("after"));
  v1::SubscribeRequest request;
  request.set_cursor(cursor);
  request.set_log_id(before.log_id());
  absl::StatusOr<std::vector<v1::Change>> resumed =
      ReadUntilMarker(*walfeed_->NewStub(), request, "after");
  ASSERT_TRUE(resumed.ok()) << resumed.status() << "\n" << walfeed_->Log();
  EXPECT_THAT(Described(*resumed),
              ::testing::ElementsAre("MESSAGE walfeed.resync", "UPDATE t 1", "INSERT t 2",
                                     "DELETE t 31", "DELETE t 32", "DELETE t 33", "DELETE t 34",
                                     "DELETE t 35", "MESSAGE walfeed.resync", "INSERT t 100"));
  EXPECT_THAT(walfeed_->Log(), HasSubstr("event=resync_wal_advanced"))
      << "the new primary's WAL was behind the log's head";
  v1::SubscribeRequest all;
  all.set_from_lsn(0);
  absl::StatusOr<std::vector<v1::Change>> feed = ReadToHead(*walfeed_->NewStub(), all);
  ASSERT_OK(feed);
  ExpectFeedMatchesSelect(*feed, [&](const std::string& sql) {
    absl::StatusOr<std::vector<std::vector<std::string>>> rows = (*standby)->Query(*db, sql);
    EXPECT_OK(rows);
    return rows.ok() ? *rows : std::vector<std::vector<std::string>>{};
  });
  walfeed_.reset();
}

}  // namespace
}  // namespace walfeed::test
