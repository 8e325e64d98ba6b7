// Backfills (Admin.Backfill) against a real walfeed and PostgreSQL, with PostgreSQL as the oracle:
// under concurrent writes to the same rows, a consumer that applies the feed from the backfill's
// start ends with PostgreSQL's rows, and no row is ever delivered going back in time (each row
// carries a version that every write raises); a backfill killed between chunks goes on after the
// last one appended and delivers every row once; key ranges and conditions select exactly what
// PostgreSQL selects, with odd identifiers and a composite key; bad requests are refused with a
// sentence; backfills queue and can be cancelled; walfeedctl and buf curl drive them.
#include <libpq-fe.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/fault_point.h"
#include "server/core/position.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/buf_curl.h"
#include "tests/support/change_helpers.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

// A row as PostgreSQL holds it and as the feed rebuilds it.
struct Row {
  int64_t version = 0;
  std::string payload;
  friend bool operator==(const Row& a, const Row& b) {
    return a.version == b.version && a.payload == b.payload;
  }
};
using Rows = std::map<int64_t, Row>;

// Writes table b (id, version, payload) from its own connection until stopped: updates raise a
// row's version by one, inserts start a row's life at the next multiple of a million (the
// sequence), so a row's version only ever grows, across deletes too.
class VersionWriter {
 public:
  VersionWriter(const std::string& conninfo, uint32_t seed, int max_id)
      : conn_(PQconnectdb(conninfo.c_str())), random_(seed), max_id_(max_id) {
    thread_ = std::thread([this] { Run(); });
  }
  ~VersionWriter() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = nullptr;
  }
  int committed() const { return committed_; }

 private:
  void Run() {
    std::uniform_int_distribution<int> id(1, max_id_);
    std::uniform_int_distribution<int> percent(0, 99);
    while (!stop_) {
      const int kind = percent(random_);
      const int a = id(random_);
      const int b = id(random_);
      std::string sql;
      if (kind < 60) {
        sql = absl::StrCat("UPDATE b SET version = version + 1, payload = md5(random()::text) ",
                           "WHERE id = ", a);
      } else if (kind < 75) {
        // Two rows in one transaction (two writers may deadlock: one of them fails, fine).
        sql = absl::StrCat("BEGIN; UPDATE b SET version = version + 1 WHERE id = ", a,
                           "; UPDATE b SET version = version + 1, payload = 'pair' WHERE id = ", b,
                           "; COMMIT");
      } else if (kind < 87) {
        sql = absl::StrCat("DELETE FROM b WHERE id = ", a);
      } else {
        sql = absl::StrCat("INSERT INTO b VALUES (", a,
                           ", nextval('ver') * 1000000, 'born') ON CONFLICT DO NOTHING");
      }
      PGresult* result = PQexec(conn_, sql.c_str());
      if (PQresultStatus(result) == PGRES_COMMAND_OK) ++committed_;
      PQclear(result);
      PQclear(PQexec(conn_, "ROLLBACK"));  // after a failed BEGIN block
    }
  }

  PGconn* conn_;
  std::mt19937 random_;
  const int max_id_;
  std::atomic<bool> stop_{false};
  std::atomic<int> committed_{0};
  std::thread thread_;
};

class Backfill : public WalfeedTest {
 protected:
  std::unique_ptr<v1::Admin::Stub> Admin() { return v1::Admin::NewStub(walfeed_->NewChannel()); }

  grpc::Status Start(const v1::BackfillRequest& request, v1::BackfillInfo* info) {
    grpc::ClientContext context;
    return Admin()->Backfill(&context, request, info);
  }

  v1::BackfillInfo StartOk(const std::string& table, uint32_t chunk_rows = 0) {
    v1::BackfillRequest request;
    request.set_table(table);
    request.set_chunk_rows(chunk_rows);
    v1::BackfillInfo info;
    grpc::Status status = Start(request, &info);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return info;
  }

  // The backfill `id` as FeedInfo shows it; an empty one (id 0) when it is not listed.
  v1::BackfillInfo Find(uint64_t id) {
    const v1::FeedInfo feed = FeedInfo();
    for (const v1::BackfillInfo& info : feed.backfills()) {
      if (info.id() == id) return info;
    }
    return {};
  }

  // Waits until backfill `id` is no longer queued or running.
  v1::BackfillInfo AwaitFinished(uint64_t id, absl::Duration timeout = absl::Seconds(300)) {
    const absl::Time deadline = absl::Now() + timeout;
    v1::BackfillInfo info;
    while (absl::Now() < deadline) {
      info = Find(id);
      if (info.state() != "queued" && info.state() != "running") return info;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "backfill " << id << " did not finish: " << info.ShortDebugString();
    return info;
  }

  // Everything the feed holds now (a marker committed and read first).
  std::vector<v1::Change> ReadAll() {
    static int markers = 0;
    absl::StatusOr<std::vector<v1::Change>> all =
        CommitMarkerAndRead(absl::StrCat("backfill-test-", ++markers));
    EXPECT_OK(all);
    return all.ok() ? *all : std::vector<v1::Change>();
  }

  Rows SelectB() {
    Rows rows;
    for (const std::vector<std::string>& row :
         Query("SELECT id, version, coalesce(payload, '') FROM b")) {
      int64_t id = 0;
      Row value;
      EXPECT_TRUE(absl::SimpleAtoi(row[0], &id) && absl::SimpleAtoi(row[1], &value.version));
      value.payload = row[2];
      rows[id] = value;
    }
    return rows;
  }

  // Applies the changes of table b after position `after` to an empty state, checking on the way
  // that no row's version ever goes back (a READ older than a change delivered before it).
  static Rows ApplyB(const std::vector<v1::Change>& changes, const Position& after,
                     int* regressions) {
    Rows rows;
    std::map<int64_t, int64_t> newest;  // over the whole feed, deletes included
    for (const v1::Change& change : changes) {
      if (change.table() != "b") continue;
      const v1::Column* id = FindColumn(change.key(), "id");
      if (id == nullptr) continue;
      const bool counted = Position{change.lsn(), change.seq()} > after;
      if (change.op() == v1::Change::DELETE) {
        if (counted) rows.erase(id->int_());
        continue;
      }
      if (change.op() == v1::Change::TRUNCATE) continue;
      Row value;
      value.version = FindColumn(change.after(), "version")->int_();
      const v1::Column* payload = FindColumn(change.after(), "payload");
      value.payload = payload == nullptr || payload->has_null() ? "" : payload->text();
      auto [it, first] = newest.emplace(id->int_(), value.version);
      if (!first && value.version < it->second) {
        if (++*regressions <= 5) {
          ADD_FAILURE() << "row " << id->int_() << " went back from version " << it->second
                        << " to " << value.version << " at " << change.cursor() << " ("
                        << v1::Change::Op_Name(change.op()) << ")";
        }
      }
      it->second = std::max(it->second, value.version);
      if (counted) rows[id->int_()] = value;
    }
    return rows;
  }

  void CreateVersionedTable(int rows) {
    Sql("CREATE SEQUENCE ver");
    Sql("CREATE TABLE b (id int PRIMARY KEY, version bigint NOT NULL, payload text)");
    Sql(absl::StrCat("INSERT INTO b SELECT g, nextval('ver') * 1000000, 'first' ",
                     "FROM generate_series(1, ", rows, ") g"));
  }

  RunResult Walfeedctl(std::vector<std::string> args) {
    args.insert(args.begin(), WalfeedctlBinary());
    args.insert(args.end(), {"--server", walfeed_->address()});
    return RunCommand(args, absl::Seconds(120));
  }
};

uint32_t TestSeed() {
  uint32_t seed = 0;
  if (const char* given = std::getenv("WALFEED_TEST_SEED");
      given && absl::SimpleAtoi(given, &seed)) {
    return seed;
  }
  return std::random_device()();
}

TEST_F(Backfill, UnderConcurrentWritesTheFeedEndsAtPostgresStateAndNoRowGoesBack) {
  constexpr int kRows = 6000;
  CreateVersionedTable(kRows);
  StartWalfeed();
  const uint32_t seed = TestSeed();
  RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (rerun with WALFEED_TEST_SEED)"));
  std::vector<v1::Change> before = ReadAll();
  const Position backfill_start =
      before.empty() ? Position() : Position{before.back().lsn(), before.back().seq()};

  // Two writers on the rows the backfill reads, and on ids beyond them.
  std::vector<std::unique_ptr<VersionWriter>> writers;
  for (uint32_t w = 0; w < 2; ++w) {
    writers.push_back(
        std::make_unique<VersionWriter>(SharedPostgres().Conninfo(db_), seed + w, kRows + 300));
  }
  absl::SleepFor(absl::Milliseconds(300));
  const v1::BackfillInfo queued = StartOk("public.b", 50);
  ASSERT_EQ(queued.state(), "queued");
  EXPECT_EQ(queued.key_columns(0), "id");
  const v1::BackfillInfo done = AwaitFinished(queued.id());
  absl::SleepFor(absl::Milliseconds(300));
  for (auto& writer : writers) writer->Stop();
  ASSERT_EQ(done.state(), "done") << done.ShortDebugString();
  int committed = 0;
  for (auto& writer : writers) committed += writer->committed();
  EXPECT_GT(committed, 100) << "the writers wrote while the backfill ran";

  const std::vector<v1::Change> feed = ReadAll();
  int regressions = 0;
  const Rows everything = ApplyB(feed, Position(), &regressions);
  const Rows from_backfill = ApplyB(feed, backfill_start, &regressions);
  EXPECT_EQ(regressions, 0) << "rows delivered older than a change delivered before them";
  const Rows truth = SelectB();
  EXPECT_EQ(everything.size(), truth.size());
  EXPECT_TRUE(everything == truth) << "the whole feed applied is not PostgreSQL's table";
  EXPECT_EQ(from_backfill.size(), truth.size());
  EXPECT_TRUE(from_backfill == truth)
      << "a consumer that lost its state and read from the backfill's start does not end at "
         "PostgreSQL's table";

  uint64_t reads = 0;
  for (const v1::Change& change : feed) {
    if (change.backfill() == 0) continue;
    ++reads;
    EXPECT_EQ(change.backfill(), queued.id());
    EXPECT_EQ(change.op(), v1::Change::READ);
  }
  EXPECT_EQ(reads, done.rows_appended());
  EXPECT_EQ(done.rows_read(), done.rows_appended() + done.rows_superseded());
  EXPECT_GE(done.chunks(), static_cast<uint64_t>(kRows / 50 / 2));
  RecordProperty("rows_superseded", std::to_string(done.rows_superseded()));
  std::cerr << "backfill under writes: " << done.ShortDebugString() << " writes " << committed
            << "\n";
}

TEST_F(Backfill, ResumesAfterAKillFromTheChunkAfterTheLastAppended) {
  if (!kFaultPointsCompiledIn) GTEST_FAIL() << "this build has no fault points";
  constexpr int kRows = 1000;
  CreateVersionedTable(kRows);
  StartWalfeed({}, true, {"WALFEED_FAULT_POINT=backfill.chunk_appended@4"});
  const v1::BackfillInfo queued = StartOk("b", 100);
  ASSERT_TRUE(walfeed_->AwaitExit(absl::Seconds(120))) << "the fault point was not reached";
  EXPECT_THAT(walfeed_->Log(), HasSubstr("fault point backfill.chunk_appended reached"));
  StartWalfeed();
  const v1::BackfillInfo done = AwaitFinished(queued.id());
  EXPECT_EQ(done.state(), "done");
  EXPECT_THAT(walfeed_->Log(), HasSubstr("event=backfill_resumed"));
  EXPECT_EQ(done.chunks(), 11u) << "4 before the kill, 6 after, and the empty last one";
  std::multiset<int64_t> read;
  for (const v1::Change& change : ReadAll()) {
    if (change.backfill() == queued.id()) read.insert(FindColumn(change.key(), "id")->int_());
  }
  const std::vector<int64_t> ids = IdRange(1, kRows);
  EXPECT_EQ(read, std::multiset<int64_t>(ids.begin(), ids.end())) << "every row once";
  EXPECT_EQ(done.rows_appended(), static_cast<uint64_t>(kRows));
  EXPECT_EQ(done.last_key(0), std::to_string(kRows));
}

TEST_F(Backfill, KeyRangesAndConditionsSelectWhatPostgresSelectsWithOddNamesAndACompositeKey) {
  Sql(R"(CREATE SCHEMA "we.ird")");
  Sql(R"(CREATE TABLE "we.ird"."Or""ders 1" ("Region" text, "n" int, amount numeric,
         PRIMARY KEY ("Region", n)))");
  Sql(R"(INSERT INTO "we.ird"."Or""ders 1"
         SELECT r, g, g * 1.5 FROM unnest(ARRAY['eu', 'us', 'é ü']) r,
         generate_series(1, 40) g)");
  StartWalfeed();
  const std::string table = R"("we.ird"."Or""ders 1")";
  struct Case {
    std::vector<std::string> from, to;
    std::string where;
    std::string sql;  // the same rows in SQL
  };
  const std::vector<Case> cases = {
      {{"eu", "10"}, {"us", "5"}, "", R"(("Region", n) BETWEEN ('eu', 10) AND ('us', 5))"},
      {{"us"}, {}, "", R"("Region" >= 'us')"},
      {{}, {"eu"}, "amount > 30", R"("Region" <= 'eu' AND amount > 30)"},
      {{}, {}, "n % 7 = 0 OR \"Region\" = 'é ü'", R"(n % 7 = 0 OR "Region" = 'é ü')"},
  };
  for (const Case& c : cases) {
    v1::BackfillRequest request;
    request.set_table(table);
    request.set_chunk_rows(7);
    for (const std::string& v : c.from) request.add_from_key(v);
    for (const std::string& v : c.to) request.add_to_key(v);
    request.set_where(c.where);
    v1::BackfillInfo info;
    ASSERT_OK(Start(request, &info));
    EXPECT_EQ(info.request().table(), R"("we.ird"."Or""ders 1")");
    EXPECT_THAT(info.key_columns(), ::testing::ElementsAre("Region", "n"));
    const v1::BackfillInfo done = AwaitFinished(info.id());
    ASSERT_EQ(done.state(), "done") << done.ShortDebugString();
    const std::vector<v1::Change> feed = ReadAll();
    std::vector<std::string> delivered;
    for (const v1::Change& change : feed) {
      if (change.backfill() != info.id()) continue;
      EXPECT_EQ(change.schema(), "we.ird");
      EXPECT_EQ(change.table(), "Or\"ders 1");
      delivered.push_back(absl::StrCat(FindColumn(change.key(), "Region")->text(), "/",
                                       FindColumn(change.key(), "n")->int_()));
    }
    std::vector<std::string> expected;
    for (const std::vector<std::string>& row :
         Query(absl::StrCat(R"(SELECT "Region" || '/' || n FROM )", table, " WHERE ", c.sql,
                            R"( ORDER BY "Region", n)"))) {
      expected.push_back(row[0]);
    }
    EXPECT_EQ(delivered, expected) << c.sql;
    EXPECT_FALSE(expected.empty()) << c.sql;
  }
}

TEST_F(Backfill, BadRequestsAreRefusedWithASentenceAndQueueNothing) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("CREATE TABLE nokey (v text)");
  Sql("ALTER TABLE nokey REPLICA IDENTITY FULL");
  StartWalfeed();
  struct Case {
    std::string table;
    std::vector<std::string> from;
    std::string where;
    grpc::StatusCode code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", {}, "", grpc::INVALID_ARGUMENT, "needs a table"},
      {"public.missing", {}, "", grpc::NOT_FOUND, "not in the publication"},
      {"nokey", {}, "", grpc::FAILED_PRECONDITION, "no primary key"},
      {"t", {"1", "2"}, "", grpc::INVALID_ARGUMENT, "gives 2 values but the key"},
      {"t", {"one"}, "", grpc::INVALID_ARGUMENT, "invalid input syntax for type integer"},
      {"t", {}, "no_such_column = 1", grpc::INVALID_ARGUMENT, "no_such_column"},
      {"t", {}, "v = 'a'; DROP TABLE t", grpc::INVALID_ARGUMENT, "holds a ';'"},
      {"t", {}, "v = ", grpc::INVALID_ARGUMENT, "syntax error"},
      {"\"unclosed", {}, "", grpc::INVALID_ARGUMENT, "unclosed"},
  };
  for (const Case& c : cases) {
    v1::BackfillRequest request;
    request.set_table(c.table);
    for (const std::string& v : c.from) request.add_from_key(v);
    request.set_where(c.where);
    v1::BackfillInfo info;
    grpc::Status status = Start(request, &info);
    EXPECT_EQ(status.error_code(), c.code)
        << c.table << " " << c.where << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.says)) << c.table << " " << c.where;
  }
  v1::CancelBackfillRequest cancel;
  cancel.set_id(99);
  v1::BackfillInfo info;
  grpc::ClientContext context;
  grpc::Status status = Admin()->CancelBackfill(&context, cancel, &info);
  EXPECT_EQ(status.error_code(), grpc::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("no backfill 99"));
  EXPECT_EQ(FeedInfo().backfills_size(), 0);
  EXPECT_EQ(Query("SELECT count(*) FROM t")[0][0], "0") << "the table is still there";
}

TEST_F(Backfill, BackfillsQueueInOrderAndCanBeCancelledQueuedOrRunning) {
  CreateVersionedTable(20000);
  StartWalfeed();
  const v1::BackfillInfo first = StartOk("b", 10);
  const v1::BackfillInfo second = StartOk("b", 10);
  const v1::BackfillInfo third = StartOk("b", 5000);
  EXPECT_EQ(second.id(), first.id() + 1);
  EXPECT_EQ(third.id(), second.id() + 1);
  v1::CancelBackfillRequest cancel;
  v1::BackfillInfo info;
  {
    cancel.set_id(second.id());
    grpc::ClientContext context;
    ASSERT_OK(Admin()->CancelBackfill(&context, cancel, &info));
    EXPECT_EQ(info.state(), "cancelled") << "a queued backfill is cancelled at once";
  }
  // The first runs (2,000 chunks take a while): cancel it once it has begun.
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (Find(first.id()).chunks() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  {
    cancel.set_id(first.id());
    grpc::ClientContext context;
    ASSERT_OK(Admin()->CancelBackfill(&context, cancel, &info));
  }
  const v1::BackfillInfo first_end = AwaitFinished(first.id());
  EXPECT_EQ(first_end.state(), "cancelled");
  EXPECT_LT(first_end.rows_read(), 20000u) << "stopped before its end";
  EXPECT_EQ(AwaitFinished(third.id()).state(), "done") << "the next in the queue runs";
  EXPECT_EQ(Find(second.id()).rows_read(), 0u) << "the cancelled queued one never ran";
  EXPECT_THAT(walfeed_->Log(),
              HasSubstr("event=backfill_cancelled id=" + std::to_string(first.id())));
  // Cancelling a finished one answers it as it is.
  cancel.set_id(third.id());
  grpc::ClientContext context;
  ASSERT_OK(Admin()->CancelBackfill(&context, cancel, &info));
  EXPECT_EQ(info.state(), "done");
  // The list survives a restart.
  StartWalfeed();
  EXPECT_EQ(Find(first.id()).state(), "cancelled");
  EXPECT_EQ(Find(third.id()).state(), "done");
}

TEST_F(Backfill, WalfeedctlAndBufCurlRunOneAndMetricsShowIt) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("INSERT INTO t SELECT g, 'v' FROM generate_series(1, 25) g");
  const int metrics_port = FreePort();
  StartWalfeed({"--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port)});
  RunResult started = Walfeedctl({"backfill", "start", "public.t", "--from-key", "11", "--where",
                                  "id % 2 = 1", "--chunk-rows", "3", "--wait"});
  ASSERT_EQ(started.exit_code, 0) << started.output;
  EXPECT_THAT(started.output, HasSubstr(R"("state":"queued")"));
  EXPECT_THAT(started.output, HasSubstr("done, 3 chunks, 8 rows read, 8 appended"));
  RunResult listed = Walfeedctl({"backfill", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_THAT(listed.output, HasSubstr(R"("state":"done")"));
  EXPECT_EQ(Walfeedctl({"backfill", "cancel", "x"}).exit_code, 2);
  RunResult missing = Walfeedctl({"backfill", "start", "public.nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("not in the publication"));

  RunResult buf =
      BufCurl(walfeed_->address(), "walfeed.v1.Admin/Backfill", R"({"table":"t","toKey":["3"]})");
  ASSERT_EQ(buf.exit_code, 0) << buf.output;
  EXPECT_THAT(buf.output, HasSubstr(R"("keyColumns": [)"));
  v1::BackfillInfo done = AwaitFinished(2);
  EXPECT_EQ(done.state(), "done");
  EXPECT_EQ(done.rows_appended(), 3u);
  const std::string metrics = Scrape(metrics_port);
  EXPECT_EQ(Sample(metrics, R"(walfeed_backfill_rows{id="1",table="public.t",rows="appended"})"),
            8);
  EXPECT_EQ(Sample(metrics, R"(walfeed_backfills{state="done"})"), 2);
}

}  // namespace
}  // namespace walfeed::test
