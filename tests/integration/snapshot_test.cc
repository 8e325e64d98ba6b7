// The initial snapshot: rows that exist when walfeed first starts reach the feed as READ
// changes, consistent with the stream that follows, even while writers are busy.
#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/position.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"
#include "tests/support/status_assertions.h"
#include "tests/support/wait.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

// Applies a feed to a map id -> v, as a consumer rebuilding the table would.
std::map<int64_t, std::string> Apply(const std::vector<v1::Change>& changes) {
  std::map<int64_t, std::string> rows;
  for (const v1::Change& change : changes) {
    if (change.op() == v1::Change::TRUNCATE) rows.clear();
    if (change.op() == v1::Change::MESSAGE || change.op() == v1::Change::TRUNCATE) continue;
    const int64_t id = FindColumn(change.key(), "id")->int_();
    if (change.op() == v1::Change::DELETE) {
      rows.erase(id);
    } else {
      rows[id] = FindColumn(change.after(), "v")->text();
    }
  }
  return rows;
}

class Snapshot : public WalfeedTest {
 protected:
  std::map<int64_t, std::string> TableContents() {
    std::map<int64_t, std::string> rows;
    for (const auto& row : Query("SELECT id, v FROM t")) {
      int64_t id;
      EXPECT_TRUE(absl::SimpleAtoi(row[0], &id));
      rows[id] = row[1];
    }
    return rows;
  }

  // A generous bound: a 300,000-row snapshot under AddressSanitizer beside another busy process
  // took over 60 s (276,000 rows by then, and on its way).
  void WaitForSnapshotState(const std::string& state, uint64_t min_rows = 0) {
    const absl::Time deadline = absl::Now() + absl::Seconds(300);
    v1::FeedInfo info;
    while (absl::Now() < deadline) {
      info = FeedInfo();
      if (info.snapshot_state() == state && info.snapshot_rows_copied() >= min_rows) return;
      absl::SleepFor(absl::Milliseconds(5));
    }
    FAIL() << "snapshot never reached " << state << "; last state " << info.snapshot_state()
           << " rows " << info.snapshot_rows_copied();
  }
};

TEST_F(Snapshot, ExistingRowsArriveAsReadBeforeStreamedChanges) {
  Sql("CREATE TABLE t (id bigint PRIMARY KEY, v text, n numeric)");
  Sql("CREATE TABLE empty_one (id int PRIMARY KEY)");
  Sql("INSERT INTO t SELECT g, 'row ' || g, g * 1.5 FROM generate_series(1, 5000) g");
  Sql("INSERT INTO t VALUES (0, NULL, NULL)");
  StartWalfeed();
  Sql("INSERT INTO t VALUES (6000, 'streamed', 1)");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_TRUE(changes.ok()) << changes.status() << walfeed_->Log();
  ASSERT_EQ(changes->size(), 5002u);
  std::set<int64_t> ids;
  for (size_t i = 0; i < 5001; ++i) {
    const v1::Change& change = (*changes)[i];
    ASSERT_EQ(change.op(), v1::Change::READ) << i;
    EXPECT_EQ(change.table(), "t");
    EXPECT_EQ(change.seq(), i);
    EXPECT_EQ(change.last_in_transaction(), i == 5000);
    ASSERT_EQ(change.key_size(), 1);
    EXPECT_EQ(change.key(0).name(), "id");
    ids.insert(change.key(0).int_());
    if (change.key(0).int_() == 7) {
      EXPECT_EQ(FindColumn(change.after(), "v")->text(), "row 7");
      EXPECT_EQ(FindColumn(change.after(), "n")->numeric(), "10.5");
      EXPECT_EQ(FindColumn(change.after(), "n")->type(), "numeric");
    }
    if (change.key(0).int_() == 0) {
      EXPECT_EQ(FindColumn(change.after(), "v")->value_case(), v1::Column::kNull);
    }
  }
  EXPECT_EQ(ids.size(), 5001u);
  EXPECT_EQ((*changes)[5001].op(), v1::Change::INSERT);
  EXPECT_LT((*changes)[5000].lsn(), (*changes)[5001].lsn());

  const v1::FeedInfo info = FeedInfo();
  EXPECT_EQ(info.snapshot_state(), "done");
  EXPECT_EQ(info.snapshot_rows_copied(), 5001u);
  EXPECT_EQ(info.snapshot_tables_total(), 2u);
  EXPECT_EQ(info.snapshot_tables_copied(), 2u);

  // A restart neither repeats the snapshot nor loses it.
  walfeed_->Terminate();
  StartWalfeed();
  absl::StatusOr<std::vector<v1::Change>> after = CommitMarkerAndRead("again");
  ASSERT_OK(after);
  EXPECT_EQ(after->size(), 5003u);
}

TEST_F(Snapshot, SnapshotUnderConcurrentWritesMatchesTheTable) {
  Sql("CREATE TABLE t (id bigint PRIMARY KEY, v text)");
  Sql("INSERT INTO t SELECT g, 'initial' FROM generate_series(1, 50000) g");
  std::atomic<bool> stop{false};
  std::atomic<int> rounds{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      const int64_t id = 1 + (i * 7919) % 50000;
      ASSERT_TRUE(
          SharedPostgres()
              .Exec(db_, absl::StrCat("UPDATE t SET v = 'update ", i, "' WHERE id = ", id,
                                      "; INSERT INTO t VALUES (", 100000 + i, ", 'new ", i,
                                      "'); DELETE FROM t WHERE id = ", 1 + (i * 104729) % 50000))
              .ok());
      rounds = i + 1;
    }
  });
  // The writer ends on every path, a failed assertion's too (unjoined, it would abort).
  absl::Cleanup stop_writer = [&] {
    stop = true;
    if (writer.joinable()) writer.join();
  };
  ASSERT_TRUE(WaitUntil([&] { return rounds >= 20; }, absl::Seconds(60), absl::Milliseconds(5)));
  StartWalfeed({}, /*wait_for_streaming=*/false);
  WaitForSnapshotState("done");
  const int at_done = rounds;
  ASSERT_TRUE(
      WaitUntil([&] { return rounds >= at_done + 30; }, absl::Seconds(60), absl::Milliseconds(5)))
      << "the writer stopped";
  std::move(stop_writer).Invoke();
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  const std::map<int64_t, std::string> from_feed = Apply(*changes);
  const std::map<int64_t, std::string> in_table = TableContents();
  EXPECT_EQ(from_feed.size(), in_table.size());
  EXPECT_TRUE(from_feed == in_table) << "the feed's final state differs from SELECT * FROM t";
}

TEST_F(Snapshot, NeverStreamsOnlyNewChanges) {
  Sql("CREATE TABLE t (id bigint PRIMARY KEY, v text)");
  Sql("INSERT INTO t VALUES (1, 'old')");
  StartWalfeed({"--snapshot", "never"});
  Sql("INSERT INTO t VALUES (2, 'new')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].op(), v1::Change::INSERT);
  EXPECT_EQ(FeedInfo().snapshot_state(), "skipped");
}

TEST_F(Snapshot, InterruptedSnapshotIsRedoneFromScratch) {
  Sql("CREATE TABLE t (id bigint PRIMARY KEY, v text)");
  Sql("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 300000) g");
  StartWalfeed({}, /*wait_for_streaming=*/false);
  WaitForSnapshotState("running", 10000);
  walfeed_->Kill();
  // Nothing of the half snapshot is visible, and the next start redoes it completely.
  Sql("UPDATE t SET v = 'changed' WHERE id = 1");
  StartWalfeed({}, /*wait_for_streaming=*/false);
  WaitForSnapshotState("done");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  EXPECT_EQ(changes->size(), 300000u);
  const std::map<int64_t, std::string> from_feed = Apply(*changes);
  EXPECT_EQ(from_feed.size(), 300000u);
  EXPECT_EQ(from_feed.at(1), "changed");
  EXPECT_THAT(walfeed_->Log(), HasSubstr("event=snapshot_restart"));
}

TEST_F(Snapshot, AnotherSlotUnderTheSameNameIsNeverDroppedForARedo) {
  Sql("CREATE TABLE t (id bigint PRIMARY KEY, v text)");
  Sql("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 300000) g");
  StartWalfeed({}, /*wait_for_streaming=*/false);
  WaitForSnapshotState("running", 10000);
  walfeed_->Kill();
  // Someone else takes the slot name meanwhile.
  Sql(absl::StrCat("SELECT pg_drop_replication_slot('", slot_, "')"));
  Sql("INSERT INTO t VALUES (0, 'moves the WAL on')");
  Sql(absl::StrCat("SELECT pg_create_logical_replication_slot('", slot_, "', 'pgoutput')"));
  RunResult refused = RunWalfeed(BaseArgs(Options().conninfo));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("already exists"));
  EXPECT_TRUE(SlotExists(slot_)) << "the other slot is still there";
}

TEST_F(Snapshot, FollowsThePublicationsRowFilterColumnListAndPartitionRoot) {
  Sql("CREATE TABLE orders (id int PRIMARY KEY, region text, secret text)");
  Sql("INSERT INTO orders VALUES (1, 'eu', 'a'), (2, 'us', 'b'), (3, 'eu', 'c')");
  Sql("CREATE TABLE events (id int, day date, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)");
  Sql("CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO "
      "('2025-01-01')");
  Sql("CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO "
      "('2026-01-01')");
  Sql("INSERT INTO events VALUES (1, '2024-05-01'), (2, '2025-05-01')");
  Sql("CREATE PUBLICATION shop FOR TABLE orders (id, region) WHERE (region = 'eu'), events "
      "WITH (publish_via_partition_root = true)");
  StartWalfeed({"--publication", "shop"});
  Sql("INSERT INTO orders VALUES (4, 'eu', 'd'), (5, 'us', 'e')");
  Sql("INSERT INTO events VALUES (3, '2025-06-01')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_TRUE(changes.ok()) << changes.status() << walfeed_->Log();
  std::vector<std::string> seen;
  for (const v1::Change& change : *changes) {
    std::string columns;
    for (const v1::Column& column : change.after()) absl::StrAppend(&columns, column.name(), ",");
    seen.push_back(absl::StrCat(v1::Change::Op_Name(change.op()), " ", change.table(), " ",
                                change.key(0).int_(), " ", columns));
  }
  std::sort(seen.begin(), seen.begin() + 4);  // snapshot rows come in no particular order
  EXPECT_THAT(seen,
              ::testing::ElementsAre("READ events 1 id,day,", "READ events 2 id,day,",
                                     "READ orders 1 id,region,", "READ orders 3 id,region,",
                                     "INSERT orders 4 id,region,", "INSERT events 3 id,day,"));
}

TEST_F(Snapshot, ExistingSlotWithAnEmptyLogIsRefusedWithTheWayOut) {
  Sql("CREATE TABLE t (id bigint PRIMARY KEY, v text)");
  ASSERT_TRUE(SharedPostgres()
                  .Exec(db_, absl::StrCat("SELECT pg_create_logical_replication_slot('", slot_,
                                          "', 'pgoutput')"))
                  .ok());
  RunResult refused = RunWalfeed(BaseArgs(Options().conninfo));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.output, HasSubstr("already exists"));
  EXPECT_THAT(refused.output, HasSubstr("--snapshot=never"));
  StartWalfeed({"--snapshot", "never"});
  EXPECT_EQ(FeedInfo().snapshot_state(), "skipped");
}

}  // namespace
}  // namespace walfeed::test

namespace walfeed::test {
namespace {

// A forgotten prepared transaction holds back the creation of the slot: walfeed says so in the
// log, naming it, instead of sitting in "snapshotting" silently; it goes on once it is resolved.
TEST_F(Snapshot, ForgottenPreparedTransactionIsNamedWhileTheSlotWaits) {
  Sql("CREATE TABLE t (id bigint PRIMARY KEY, v text)");
  Sql("BEGIN; INSERT INTO t VALUES (1, 'prepared'); PREPARE TRANSACTION 'forgotten_gid'");
  StartWalfeed({}, /*wait_for_streaming=*/false);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline && walfeed_->Log().find("forgotten_gid") == std::string::npos) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  const std::string log = walfeed_->Log();
  Sql("ROLLBACK PREPARED 'forgotten_gid'");
  EXPECT_THAT(log, HasSubstr("event=slot_creation_waiting"));
  EXPECT_THAT(log, HasSubstr("prepared transaction \\'forgotten_gid\\'"));
  WaitForSnapshotState("done");
  Sql("INSERT INTO t VALUES (2, 'after')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  EXPECT_EQ(Apply(*changes), (std::map<int64_t, std::string>{{2, "after"}}));
}

// Tables added to the publication after walfeed started: their existing rows are read as READ
// changes (with --snapshot=initial) before their streamed changes, whether the table is added
// while walfeed streams or while it is stopped.
class AddedTableSnapshot : public WalfeedTest {
 protected:
  void SetUp() override {
    WalfeedTest::SetUp();
    Sql("CREATE TABLE a (id int PRIMARY KEY, v text)");
    Sql("CREATE TABLE b (id int PRIMARY KEY, v text)");
    Sql("CREATE PUBLICATION only_a FOR TABLE a");
    Sql("INSERT INTO b VALUES (1, 'old 1'), (2, 'old 2'), (3, 'old 3')");
  }

  std::vector<v1::Change> ChangesOf(const std::vector<v1::Change>& changes,
                                    const std::string& table) {
    std::vector<v1::Change> out;
    for (const v1::Change& change : changes) {
      if (change.table() == table) out.push_back(change);
    }
    return out;
  }
};

TEST_F(AddedTableSnapshot, TableAddedWhileStreamingHasItsExistingRowsReadOnce) {
  StartWalfeed({"--publication", "only_a"});
  Sql("INSERT INTO a VALUES (1, 'a1')");
  Sql("ALTER PUBLICATION only_a ADD TABLE b");
  Sql("INSERT INTO b VALUES (4, 'new 4')");
  Sql("INSERT INTO a VALUES (2, 'a2')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  const std::vector<v1::Change> b = ChangesOf(*changes, "b");
  std::map<int64_t, int> reads;
  for (const v1::Change& change : b) {
    if (change.op() == v1::Change::READ) ++reads[FindColumn(change.key(), "id")->int_()];
  }
  EXPECT_EQ(reads[1], 1);
  EXPECT_EQ(reads[2], 1);
  EXPECT_EQ(reads[3], 1);
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.back().op(), v1::Change::INSERT) << "the streamed insert follows the rows read";
  const std::map<int64_t, std::string> state = Apply(b);
  EXPECT_EQ(state, (std::map<int64_t, std::string>{
                       {1, "old 1"}, {2, "old 2"}, {3, "old 3"}, {4, "new 4"}}));
  EXPECT_EQ(Apply(ChangesOf(*changes, "a")),
            (std::map<int64_t, std::string>{{1, "a1"}, {2, "a2"}}));
  for (size_t i = 1; i < changes->size(); ++i) {
    ASSERT_LT((walfeed::Position{(*changes)[i - 1].lsn(), (*changes)[i - 1].seq()}),
              (walfeed::Position{(*changes)[i].lsn(), (*changes)[i].seq()}));
  }
  EXPECT_TRUE(Query(absl::StrCat("SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE '", slot_,
                                 "\\_new\\_tables%'"))
                  .empty())
      << "the temporary slot went with its session";
}

TEST_F(AddedTableSnapshot, TableAddedWhileStoppedIsReadAtTheNextStart) {
  StartWalfeed({"--publication", "only_a"});
  Sql("INSERT INTO a VALUES (1, 'a1')");
  ASSERT_OK(CommitMarkerAndRead("first"));
  walfeed_->Terminate();
  Sql("ALTER PUBLICATION only_a ADD TABLE b");
  StartWalfeed({"--publication", "only_a"});
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  const std::vector<v1::Change> b = ChangesOf(*changes, "b");
  ASSERT_EQ(b.size(), 3u);
  for (const v1::Change& change : b) EXPECT_EQ(change.op(), v1::Change::READ);
}

TEST_F(AddedTableSnapshot, NeverStreamsTheAddedTableFromNowOnWithoutReadingIt) {
  StartWalfeed({"--publication", "only_a", "--snapshot", "never"});
  Sql("ALTER PUBLICATION only_a ADD TABLE b");
  Sql("INSERT INTO b VALUES (4, 'new 4')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  const std::vector<v1::Change> b = ChangesOf(*changes, "b");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].op(), v1::Change::INSERT);
}

// A heartbeat emitted with transactional=false inside the transaction that creates a table and
// fills it: the message is stored just below the transaction's commit LSN, and the new table's
// rows must not take that LSN (they once did, and every later append failed for good).
TEST_F(AddedTableSnapshot, NonTransactionalMessageInTheTransactionThatCreatesATableHaltsNothing) {
  StartWalfeed();
  Sql("CREATE SCHEMA app");
  Sql("BEGIN; CREATE TABLE app.orders (id int PRIMARY KEY, v text); "
      "INSERT INTO app.orders VALUES (1, 'o1'); "
      "SELECT pg_logical_emit_message(false, 'heartbeat', now()::text); COMMIT");
  Sql("INSERT INTO app.orders VALUES (2, 'o2')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_TRUE(changes.ok()) << changes.status() << walfeed_->Log();
  EXPECT_EQ(Apply(ChangesOf(*changes, "orders")),
            (std::map<int64_t, std::string>{{1, "o1"}, {2, "o2"}}));
  for (size_t i = 1; i < changes->size(); ++i) {
    ASSERT_LT((walfeed::Position{(*changes)[i - 1].lsn(), (*changes)[i - 1].seq()}),
              (walfeed::Position{(*changes)[i].lsn(), (*changes)[i].seq()}));
  }
  EXPECT_THAT(walfeed_->Log(), ::testing::Not(HasSubstr("append_failed")));
}

// Identifiers with dots and newlines: each table keeps its own (schema, table) pair, the dotted
// schema is not split, and a newline in a name neither forges log lines nor makes every restart
// read the table again.
TEST_F(AddedTableSnapshot, DotsAndNewlinesInNamesAreCapturedExactlyOnce) {
  Sql("CREATE SCHEMA \"public.q\"");
  Sql("CREATE TABLE \"public.q\".r (id int PRIMARY KEY, v text)");
  Sql("CREATE TABLE public.\"q.r\" (id int PRIMARY KEY, v text)");
  Sql("CREATE TABLE \"new\nline\" (id int PRIMARY KEY, v text)");
  Sql("INSERT INTO \"public.q\".r VALUES (1, 'schema with a dot')");
  Sql("INSERT INTO public.\"q.r\" VALUES (1, 'table with a dot')");
  Sql("INSERT INTO \"new\nline\" VALUES (1, 'newline')");
  StartWalfeed();
  Sql("CREATE SCHEMA \"x.y\"");
  Sql("CREATE TABLE \"x.y\".z (id int PRIMARY KEY, v text)");
  Sql("INSERT INTO \"x.y\".z VALUES (1, 'added while streaming')");
  for (int restart = 0; restart < 2; ++restart) {
    walfeed_->Terminate();
    StartWalfeed();
  }
  Sql("INSERT INTO \"x.y\".z VALUES (2, 'after restarts')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_TRUE(changes.ok()) << changes.status() << walfeed_->Log();
  std::map<std::pair<std::string, std::string>, std::map<int64_t, std::string>> state;
  std::map<std::pair<std::string, std::string>, int> reads;
  for (const v1::Change& change : *changes) {
    if (change.op() == v1::Change::MESSAGE) continue;
    const auto name = std::make_pair(change.schema(), change.table());
    state[name][FindColumn(change.key(), "id")->int_()] = FindColumn(change.after(), "v")->text();
    if (change.op() == v1::Change::READ) ++reads[name];
  }
  using Name = std::pair<std::string, std::string>;
  EXPECT_EQ(state[Name("public.q", "r")],
            (std::map<int64_t, std::string>{{1, "schema with a dot"}}));
  EXPECT_EQ(state[Name("public", "q.r")],
            (std::map<int64_t, std::string>{{1, "table with a dot"}}));
  EXPECT_EQ(state[Name("public", "new\nline")], (std::map<int64_t, std::string>{{1, "newline"}}));
  EXPECT_EQ(state[Name("x.y", "z")],
            (std::map<int64_t, std::string>{{1, "added while streaming"}, {2, "after restarts"}}));
  EXPECT_EQ(reads[Name("public", "new\nline")], 1) << "read again at a restart";
  EXPECT_EQ(reads[Name("public.q", "r")], 1);
  EXPECT_EQ(state.size(), 5u) << "the four above and the fixture's table b";
  const v1::FeedInfo info = FeedInfo();
  EXPECT_THAT(info.tables(), ::testing::Contains("\"x.y\".z"));
  EXPECT_THAT(info.tables(), ::testing::Contains("public.\"new\nline\""));
  for (absl::string_view line : absl::StrSplit(walfeed_->Log(), '\n')) {
    EXPECT_FALSE(absl::StartsWith(line, "line")) << "a name broke a log line: " << line;
  }

  // The filter names tables in the same quoted notation, unambiguously.
  v1::SubscribeRequest request;
  request.add_tables("public.\"q.r\"");
  absl::StatusOr<std::vector<v1::Change>> filtered = ReadToHead(*walfeed_->NewStub(), request);
  ASSERT_OK(filtered);
  ASSERT_EQ(filtered->size(), 1u);
  EXPECT_EQ((*filtered)[0].schema(), "public");
  EXPECT_EQ((*filtered)[0].table(), "q.r");
}

// A publication that is empty at the first start still records that nothing was captured, so a
// table added later is new and its existing rows are read.
TEST_F(AddedTableSnapshot, TableAddedToAPublicationThatWasEmptyGetsItsExistingRows) {
  Sql("CREATE PUBLICATION empty_at_first");
  StartWalfeed({"--publication", "empty_at_first"});
  Sql("CREATE TABLE orders (id int PRIMARY KEY, v text)");
  Sql("INSERT INTO orders SELECT g, 'old ' || g FROM generate_series(1, 100) g");
  Sql("ALTER PUBLICATION empty_at_first ADD TABLE orders");
  Sql("INSERT INTO orders VALUES (101, 'new')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_TRUE(changes.ok()) << changes.status() << walfeed_->Log();
  const std::map<int64_t, std::string> state = Apply(ChangesOf(*changes, "orders"));
  EXPECT_EQ(state.size(), 101u);
  EXPECT_EQ(state.count(50), 1u) << "the rows that existed when the table was added are missing";
}

}  // namespace
}  // namespace walfeed::test
