// The C++ client library (walfeed::Subscriber) against a real walfeed and PostgreSQL: it resumes
// across a walfeed crash and restart without losing or repeating a change, resumes a later run
// from its cursor file, and ends with walfeed's status on errors retrying cannot mend.
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/subscriber.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"

namespace walfeed::testing {
namespace {

class ClientLibrary : public WalfeedTest {
 protected:
  // (Re)starts walfeed on `port`, so that a subscriber's address stays valid.
  void StartOnPort(int port) {
    walfeed_.reset();
    WalfeedOptions options = Options();
    options.port = port;
    absl::StatusOr<std::unique_ptr<WalfeedProcess>> process = WalfeedProcess::Start(options);
    ASSERT_TRUE(process.ok()) << process.status();
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

std::vector<int64_t> Range(int from, int to) {
  std::vector<int64_t> ids;
  for (int i = from; i <= to; ++i) ids.push_back(i);
  return ids;
}

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
  ASSERT_TRUE(first.ended.ok()) << first.ended;
  EXPECT_EQ(first.ids, Range(1, 60)) << "every change once, in order, across the crash";
  EXPECT_GT(first.retries, 0) << "it noticed walfeed was gone";
  absl::StatusOr<std::string> saved = store.Load();
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(*saved, subscriber.cursor());

  // A later run (a restarted application) resumes after the saved cursor.
  Insert(61, 70);
  Sql(MarkerSql("end-2"));
  Subscriber again(Subscribing(&store));
  Collected second;
  Collect(again, "end-2", &second).join();
  ASSERT_TRUE(second.ended.ok()) << second.ended;
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

}  // namespace
}  // namespace walfeed::testing
