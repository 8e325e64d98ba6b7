// Faults walfeed must survive with a real PostgreSQL: kill -9 at many moments under a steady
// write load, the replication connection cut under an open subscriber, PostgreSQL restarted.
// Every test checks that each committed change is in the feed exactly once, in commit order.
#include <atomic>
#include <functional>
#include <iostream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"

namespace walfeed::testing {
namespace {

// Commits single-row inserts of 1, 2, 3, ... until stopped; knows how many committed.
class SteadyWriter {
 public:
  SteadyWriter(std::string db, absl::Duration pause) : db_(std::move(db)), pause_(pause) {
    thread_ = std::thread([this] {
      for (int i = 1; !stop_.load(); ++i) {
        // A write may fail while PostgreSQL restarts (perhaps after committing): retry the same
        // row, idempotently, until it is known to be in.
        while (
            !SharedPostgres()
                 .Exec(db_, absl::StrCat("INSERT INTO t VALUES (", i, ") ON CONFLICT DO NOTHING"))
                 .ok()) {
          if (stop_.load()) return;
          absl::SleepFor(absl::Milliseconds(100));
        }
        committed_.store(i);
        absl::SleepFor(pause_);
      }
    });
  }
  ~SteadyWriter() { Stop(); }

  // Stops and returns the number of rows committed.
  int Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    return committed_.load();
  }
  int committed() const { return committed_.load(); }

 private:
  const std::string db_;
  const absl::Duration pause_;
  std::atomic<bool> stop_{false};
  std::atomic<int> committed_{0};
  std::thread thread_;
};

std::vector<int64_t> Ids(const std::vector<v1::Change>& changes) {
  std::vector<int64_t> ids;
  for (const v1::Change& change : changes) {
    if (const v1::Column* id = FindColumn(change.key(), "id")) ids.push_back(id->int_());
  }
  return ids;
}

std::vector<int64_t> OneTo(int n) {
  std::vector<int64_t> ids;
  for (int i = 1; i <= n; ++i) ids.push_back(i);
  return ids;
}

class Faults : public WalfeedTest {};

TEST_F(Faults, TwentyKillsDuringSteadyWritesLoseAndDuplicateNothing) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed();
  SteadyWriter writer(db_, absl::Milliseconds(2));
  std::mt19937 random(7);
  for (int kill = 0; kill < 20; ++kill) {
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(20, 300)(random)));
    walfeed_->Kill();
    StartWalfeed();
  }
  const int committed = writer.Stop();
  ASSERT_GT(committed, 100);
  absl::StatusOr<std::vector<v1::Change>> changes =
      CommitMarkerAndRead("end", {}, absl::Seconds(120));
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_EQ(Ids(*changes), OneTo(committed)) << "every committed row exactly once, in order";
  RecordProperty("committed", committed);
  std::cout << "faults: 20 kill -9 under steady writes; " << committed << " rows committed, "
            << Ids(*changes).size() << " delivered\n";
}

// Opens one stream, runs `fault` while a steady writer commits, then checks that the same stream
// (never reconnected) delivered every committed row exactly once, in order.
void ExpectOneStreamSurvives(WalfeedProcess& walfeed, const std::string& db,
                             const std::string& fault_name,
                             const std::function<void(const SteadyWriter&)>& fault) {
  absl::StatusOr<std::vector<v1::Change>> streamed;
  std::thread subscriber(
      [&] { streamed = ReadUntilMarker(*walfeed.NewStub(), {}, "end", absl::Seconds(120)); });
  SteadyWriter writer(db, absl::Milliseconds(3));
  fault(writer);
  const int committed = writer.Stop();
  ASSERT_TRUE(SharedPostgres().Exec(db, MarkerSql("end")).ok());
  subscriber.join();
  ASSERT_TRUE(streamed.ok()) << streamed.status();
  EXPECT_EQ(Ids(*streamed), OneTo(committed));
  std::cout << "faults: " << fault_name << "; " << committed << " rows committed, "
            << Ids(*streamed).size() << " delivered on one open stream\n";
}

TEST_F(Faults, CutReplicationConnectionsResumeWhileSubscribersStayOpen) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed();
  ExpectOneStreamSurvives(*walfeed_, db_, "walsender terminated 3 times", [&](const SteadyWriter&) {
    for (int cut = 0; cut < 3; ++cut) {
      absl::SleepFor(absl::Milliseconds(400));
      Sql(absl::StrCat("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots ",
                       "WHERE slot_name = '", slot_, "' AND active_pid IS NOT NULL"));
    }
    absl::SleepFor(absl::Milliseconds(300));
  });
  EXPECT_THAT(walfeed_->Log(), ::testing::HasSubstr("event=source_disconnected"));
}

TEST_F(Faults, PostgresRestartedUnderLoadIsFollowedWithoutLossOrDuplicates) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed();
  ExpectOneStreamSurvives(*walfeed_, db_, "PostgreSQL restarted", [](const SteadyWriter& writer) {
    absl::SleepFor(absl::Milliseconds(500));
    ASSERT_TRUE(SharedPostgres().Restart().ok());
    // Go on until the writer has committed 50 more rows after the restart.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    const int before = writer.committed();
    while (writer.committed() < before + 50 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
  });
}

}  // namespace
}  // namespace walfeed::testing
