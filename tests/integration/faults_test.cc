// Faults walfeed must survive with a real PostgreSQL: kill -9 at many moments under a steady
// write load, the replication connection cut under an open subscriber, PostgreSQL restarted.
// Every test checks that each committed change is in the feed exactly once, in commit order.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"
#include "tests/support/small_disk.h"
#include "tests/support/status_assertions.h"
#include "tests/support/wait.h"

namespace walfeed::test {
namespace {

// Commits single-row inserts of 1, 2, 3, ... until stopped; knows how many committed. With
// `pad_bytes`, each row also carries that many random (incompressible) bytes in column `pad`.
class SteadyWriter {
 public:
  SteadyWriter(std::string db, absl::Duration pause, int pad_bytes = 0)
      : db_(std::move(db)), pause_(pause) {
    const std::string pad = pad_bytes == 0
                                ? ""
                                : absl::StrCat(", (SELECT string_agg(md5(random()::text), '') ",
                                               "FROM generate_series(1, ", pad_bytes / 32, "))");
    thread_ = std::thread([this, pad] {
      for (int i = 1; !stop_.load(); ++i) {
        // A write may fail while PostgreSQL restarts (perhaps after committing): retry the same
        // row, idempotently, until it is known to be in.
        while (!SharedPostgres()
                    .Exec(db_, absl::StrCat("INSERT INTO t VALUES (", i, pad,
                                            ") ON CONFLICT DO NOTHING"))
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
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  EXPECT_EQ(KeyIds(*changes), IdRange(1, committed))
      << "every committed row exactly once, in order";
  RecordProperty("committed", committed);
  std::cout << "faults: 20 kill -9 under steady writes; " << committed << " rows committed, "
            << KeyIds(*changes).size() << " delivered\n";
}

// Opens one stream, runs `fault` while a steady writer commits, then checks that the same stream
// (never reconnected) delivered every committed row exactly once, in order.
void ExpectOneStreamSurvives(WalfeedProcess& walfeed, const std::string& db,
                             const std::string& fault_name,
                             const std::function<void(const SteadyWriter&)>& fault,
                             int pad_bytes = 0, absl::Duration timeout = absl::Seconds(120)) {
  absl::StatusOr<std::vector<v1::Change>> streamed;
  std::thread subscriber(
      [&] { streamed = ReadUntilMarker(*walfeed.NewStub(), {}, "end", timeout); });
  SteadyWriter writer(db, absl::Milliseconds(3), pad_bytes);
  fault(writer);
  const int committed = writer.Stop();
  // The subscriber is joined on every path (its read ends at its deadline without the marker).
  EXPECT_OK(SharedPostgres().Exec(db, MarkerSql("end")));
  subscriber.join();
  ASSERT_OK(streamed);
  EXPECT_EQ(KeyIds(*streamed), IdRange(1, committed));
  std::cout << "faults: " << fault_name << "; " << committed << " rows committed, "
            << KeyIds(*streamed).size() << " delivered on one open stream\n";
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
    ASSERT_OK(SharedPostgres().Restart());
    // Go on until the writer has committed 50 more rows after the restart: the stream must
    // then carry rows written on both sides of it.
    const int before = writer.committed();
    ASSERT_TRUE(WaitUntil([&] { return writer.committed() >= before + 50; }, absl::Seconds(30)))
        << "PostgreSQL took no writes after its restart";
  });
}

// A fixture whose data directory is a small tmpfs that it can fill up and free again; where
// mounting is not allowed (it needs CAP_SYS_ADMIN) the full disk is simulated instead
// (small_disk.h), so the tests always run.
class DiskFull : public WalfeedTest {
 protected:
  void SetUp() override {
    WalfeedTest::SetUp();
    disk_ = std::make_unique<SmallDisk>();
    if (absl::Status mounted = disk_->Mount(dir_ + "/data", 256); !mounted.ok()) {
      std::cout << "disk full: simulated (" << mounted.message() << ")\n";
      ASSERT_OK(disk_->Simulate(dir_ + "/data"));
    }
    Sql("CREATE TABLE t (id int PRIMARY KEY, pad text)");
  }
  // walfeed on the small disk (told about a simulated one).
  void StartWalfeed() { WalfeedTest::StartWalfeed({}, true, disk_->Environment()); }
  void TearDown() override {
    walfeed_.reset();
    disk_.reset();  // unmounts before the directory is removed
    WalfeedTest::TearDown();
  }

  void FillDisk(int leave_mib) {
    absl::Status filled = disk_->Fill(leave_mib);
    ASSERT_OK(filled);
  }
  void FreeDisk() {
    absl::Status freed = disk_->Free();
    ASSERT_OK(freed);
  }

  // Commits bulk transactions of 2.6 MB (table `big`, keyed by `n`, which the checks of `t`
  // ignore) until walfeed reports a failed write to its log: RocksDB preallocates its WAL, so
  // only a memtable flush finds the disk full. Each batch waits until walfeed has confirmed it
  // (or failed), so PostgreSQL never runs far ahead: the backlog walfeed reads once space returns
  // stays small even when walfeed is slow (under AddressSanitizer, say).
  void FillLogUntilWriteFails() {
    Sql("CREATE TABLE IF NOT EXISTS big (n int PRIMARY KEY, pad text)");
    const absl::Time deadline = absl::Now() + absl::Seconds(240);
    const auto failed = [&] {
      return walfeed_->Log().find("event=log_write_failed") != std::string::npos;
    };
    for (int batch = 0; !failed(); ++batch) {
      ASSERT_LT(absl::Now(), deadline) << "walfeed never reported the full disk:\n"
                                       << walfeed_->Log();
      ASSERT_LT(batch, 200) << "500 MB written and the disk never filled";
      Sql(absl::StrCat("INSERT INTO big SELECT g, (SELECT string_agg(md5(random()::text), ",
                       "'') FROM generate_series(1, 40 + 0 * g)) FROM generate_series(",
                       batch * 2000 + 1, ", ", (batch + 1) * 2000, ") g"));
      const uint64_t written = WalEnd();
      ASSERT_NE(written, 0u);
      while (!failed() && absl::Now() < deadline && SlotConfirmedLsn() < written) {
        absl::SleepFor(absl::Milliseconds(100));
      }
    }
  }

  // While the disk is full and the writer commits: PostgreSQL's slot does not move. The space
  // the failed flush gave back is taken first: with it, RocksDB's recovery may legitimately
  // flush a small memtable and walfeed write (and confirm) on.
  void ExpectSlotHeldWhileFull() {
    ASSERT_OK(disk_->FillCompletely());
    const uint64_t held = SlotConfirmedLsn();
    absl::SleepFor(absl::Seconds(3));
    EXPECT_EQ(SlotConfirmedLsn(), held) << "walfeed confirmed changes it could not store:\n"
                                        << walfeed_->Log();
  }

  std::unique_ptr<SmallDisk> disk_;
};

TEST_F(DiskFull, WritesStopLoudlyAndResumeWhenSpaceReturns) {
  StartWalfeed();
  ExpectOneStreamSurvives(
      *walfeed_, db_, "disk full, then space freed",
      [&](const SteadyWriter& w) {
        absl::SleepFor(absl::Milliseconds(300));
        FillDisk(4);
        FillLogUntilWriteFails();
        ExpectSlotHeldWhileFull();
        FreeDisk();
        ASSERT_TRUE(WaitUntil(
            [&] { return walfeed_->Log().find("event=log_writes_resumed") != std::string::npos; },
            absl::Seconds(60), absl::Milliseconds(100)))
            << "walfeed did not resume writing:\n"
            << walfeed_->Log();
        // 50 more rows committed once space returned, and walfeed confirms them: the log
        // takes writes again (the end of the test checks they reached the open stream).
        const int after = w.committed();
        ASSERT_TRUE(WaitUntil([&] { return w.committed() >= after + 50; }, absl::Seconds(60)));
        const uint64_t written = WalEnd();
        EXPECT_TRUE(WaitUntil([&] { return SlotConfirmedLsn() >= written; }, absl::Seconds(60),
                              absl::Milliseconds(100)))
            << "walfeed confirmed nothing written after space returned";
      },
      /*pad_bytes=*/1280, /*timeout=*/absl::Seconds(300));
}

TEST_F(DiskFull, KilledWhileTheDiskIsFullRestartsWithoutLoss) {
  StartWalfeed();
  SteadyWriter writer(db_, absl::Milliseconds(3), /*pad_bytes=*/1280);
  absl::SleepFor(absl::Milliseconds(300));
  FillDisk(4);
  FillLogUntilWriteFails();
  ExpectSlotHeldWhileFull();
  walfeed_->Kill();
  FreeDisk();
  StartWalfeed();
  absl::SleepFor(absl::Milliseconds(500));
  const int committed = writer.Stop();
  absl::StatusOr<std::vector<v1::Change>> changes =
      CommitMarkerAndRead("end", {}, absl::Seconds(300));
  ASSERT_OK(changes);
  EXPECT_EQ(KeyIds(*changes), IdRange(1, committed))
      << "every committed row exactly once, in order";
  std::cout << "faults: killed while the disk was full; " << committed << " rows committed, "
            << KeyIds(*changes).size() << " delivered\n";
}

}  // namespace
}  // namespace walfeed::test
