// The C++ client library (walfeed::Subscriber) against a real walfeed and PostgreSQL: it resumes
// across a walfeed crash and restart without losing or repeating a change, resumes a later run
// from its cursor file, ends with walfeed's status on errors retrying cannot mend, and refuses to
// resume on a log its cursor does not belong to (a rebuilt data directory, another database).
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/subscriber.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

std::vector<int64_t> Range(int from, int to) {
  std::vector<int64_t> ids;
  for (int i = from; i <= to; ++i) ids.push_back(i);
  return ids;
}

class ClientLibrary : public WalfeedTest {
 protected:
  // (Re)starts walfeed on `port`, so that a subscriber's address stays valid.
  void StartOnPort(int port) {
    walfeed_.reset();
    WalfeedOptions options = Options();
    options.port = port;
    absl::StatusOr<std::unique_ptr<WalfeedProcess>> process = WalfeedProcess::Start(options);
    ASSERT_OK(process);
    walfeed_ = *std::move(process);
  }

  // Runs `subscriber` on a thread, collecting the ids of table t until the marker arrives.
  struct Collected {
    std::vector<int64_t> ids;
    int retries = 0;
    absl::Status ended;
  };
  std::thread Collect(Subscriber& subscriber, const std::string& marker, Collected* out) {
    return std::thread([&subscriber, marker, out] {
      out->ended = subscriber.Run(
          [&](const v1::Change& change) {
            if (change.op() == v1::Change::MESSAGE && change.message().content() == marker) {
              subscriber.Stop();
            } else if (const v1::Column* id = FindColumn(change.key(), "id")) {
              out->ids.push_back(id->int_());
            }
            return absl::OkStatus();
          },
          nullptr, [out](const absl::Status&, absl::Duration) { ++out->retries; });
    });
  }

  // Starts walfeed on table t holding rows 1..`rows`, reads them all with a subscriber saving
  // to `store`, and returns the log id that subscriber kept.
  std::string ReadRowsIntoStore(int rows, CursorStore* store) {
    Sql("CREATE TABLE t (id int PRIMARY KEY)");
    StartWalfeed();
    Insert(1, rows);
    Sql(MarkerSql("read-rows"));
    Subscriber subscriber(Subscribing(store));
    Collected read;
    Collect(subscriber, "read-rows", &read).join();
    EXPECT_OK(read.ended);
    EXPECT_EQ(read.ids, Range(1, rows));
    return subscriber.log_id();
  }

  SubscriberOptions Subscribing(CursorStore* store) {
    SubscriberOptions options;
    options.server = walfeed_->address();
    options.store = store;
    options.min_backoff = absl::Milliseconds(100);
    options.max_backoff = absl::Milliseconds(400);
    return options;
  }

  void Insert(int from, int to) {
    Sql(absl::StrCat("INSERT INTO t SELECT g FROM generate_series(", from, ", ", to, ") g"));
  }
};

TEST_F(ClientLibrary, ResumesAcrossAWalfeedCrashAndFromItsCursorFile) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed();
  const int port = walfeed_->options().port;
  FileCursorStore store(dir_ + "/app.cursor");

  Subscriber subscriber(Subscribing(&store));
  Collected first;
  std::thread reader = Collect(subscriber, "end-1", &first);
  Insert(1, 20);
  absl::SleepFor(absl::Milliseconds(500));
  walfeed_->Kill();
  Insert(21, 40);  // committed while walfeed is down
  absl::SleepFor(absl::Milliseconds(500));
  StartOnPort(port);
  Insert(41, 60);
  Sql(MarkerSql("end-1"));
  reader.join();
  ASSERT_OK(first.ended);
  EXPECT_EQ(first.ids, Range(1, 60)) << "every change once, in order, across the crash";
  EXPECT_GT(first.retries, 0) << "it noticed walfeed was gone";
  absl::StatusOr<SavedCursor> saved = store.Load();
  ASSERT_OK(saved);
  EXPECT_EQ(saved->cursor, subscriber.cursor());
  EXPECT_EQ(saved->log_id, FeedInfo().log_id()) << "the log's id is kept beside the cursor";

  // A later run (a restarted application) resumes after the saved cursor.
  Insert(61, 70);
  Sql(MarkerSql("end-2"));
  Subscriber again(Subscribing(&store));
  Collected second;
  Collect(again, "end-2", &second).join();
  ASSERT_OK(second.ended);
  EXPECT_EQ(second.ids, Range(61, 70));
}

TEST_F(ClientLibrary, ErrorsRetryingCannotMendEndRunWithWalfeedsStatus) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed();
  SubscriberOptions options = Subscribing(nullptr);
  options.request.add_tables("nope");
  Subscriber subscriber(options);
  const absl::Status ended = subscriber.Run([](const v1::Change&) { return absl::OkStatus(); });
  EXPECT_EQ(ended.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ended.message()), ::testing::HasSubstr("public.nope"));

  // A handler's error ends Run() with that error.
  Insert(1, 3);
  Subscriber failing(Subscribing(nullptr));
  const absl::Status refused = failing.Run(
      [](const v1::Change&) { return absl::FailedPreconditionError("the application said no"); });
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
}

// The consumer read rows 1..20; then walfeed's data directory is lost and rebuilt (the slot
// dropped and created again, as an operator does), and rows 1..10 are deleted meanwhile. The new
// log's positions mean other changes: resuming with the old cursor would silently skip the new
// snapshot's rows and never report the deletes. It must be refused, and a re-read from
// from_lsn=0 must then give exactly the table.
TEST_F(ClientLibrary, ACursorOfARebuiltDataDirectoryIsRefusedNotMisread) {
  FileCursorStore store(dir_ + "/app.cursor");
  const std::string old_log_id = ReadRowsIntoStore(20, &store);
  ASSERT_FALSE(old_log_id.empty());
  const int port = walfeed_->options().port;

  walfeed_.reset();
  RemoveTree(dir_ + "/data");
  Sql(absl::StrCat("SELECT pg_drop_replication_slot('", slot_, "')"));
  Sql("DELETE FROM t WHERE id <= 10");
  StartOnPort(port);
  Insert(21, 25);
  const std::string new_log_id = FeedInfo().log_id();
  EXPECT_NE(new_log_id, old_log_id);

  Subscriber resumed(Subscribing(&store));
  Collected misread;
  Collect(resumed, "end-2", &misread).join();
  EXPECT_TRUE(IsLogMismatch(misread.ended)) << misread.ended;
  EXPECT_EQ(misread.ended.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FeedErrorReason(misread.ended), "LOG_MISMATCH");
  EXPECT_THAT(std::string(misread.ended.message()), ::testing::HasSubstr("from_lsn=0"));
  EXPECT_TRUE(misread.ids.empty()) << "nothing handed over from the wrong log";
  EXPECT_EQ(misread.retries, 0) << "retrying cannot mend it";

  // What the error says to do: read the new log from the start into a fresh state.
  Sql(MarkerSql("end-3"));
  FileCursorStore fresh_store(dir_ + "/fresh.cursor");
  Subscriber fresh(Subscribing(&fresh_store));
  Collected reread;
  Collect(fresh, "end-3", &reread).join();
  ASSERT_OK(reread.ended);
  EXPECT_EQ(reread.ids, Range(11, 25));
  EXPECT_EQ(fresh.log_id(), new_log_id);
}

// The same cursor file pointed at another database's walfeed.
TEST_F(ClientLibrary, ACursorOfAnotherDatabasesFeedIsRefused) {
  FileCursorStore store(dir_ + "/app.cursor");
  ASSERT_FALSE(ReadRowsIntoStore(5, &store).empty());

  absl::StatusOr<std::string> other_db = SharedPostgres().CreateDatabase("t_other_feed");
  ASSERT_OK(other_db);
  ASSERT_OK(SharedPostgres().Exec(*other_db, "CREATE TABLE t (id int PRIMARY KEY)"));
  ASSERT_OK(SharedPostgres().Exec(*other_db, "INSERT INTO t SELECT generate_series(1, 50)"));
  WalfeedOptions other_options;
  other_options.conninfo = SharedPostgres().Conninfo(*other_db);
  other_options.data_dir = dir_ + "/other-data";
  other_options.slot = *other_db;
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> other = WalfeedProcess::Start(other_options);
  ASSERT_OK(other);

  SubscriberOptions options = Subscribing(&store);
  options.server = (*other)->address();
  Subscriber misdirected(options);
  Collected misread;
  Collect(misdirected, "never", &misread).join();
  EXPECT_TRUE(IsLogMismatch(misread.ended)) << misread.ended;
  EXPECT_TRUE(misread.ids.empty());
  other->reset();
  (void)SharedPostgres().Exec("postgres",
                              absl::StrCat("SELECT pg_drop_replication_slot('", *other_db, "')"));
}

}  // namespace
}  // namespace walfeed::test
