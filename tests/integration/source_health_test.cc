// A source that cannot make progress is visible: once it has failed for longer than
// --unhealthy-after, the standard health service answers NOT_SERVING (Check and Watch),
// FeedInfo says why and the log has event=health_not_serving; it answers SERVING again once the
// source streams. Before, a dropped or invalidated slot was retried for ever while health said
// SERVING and consumers got nothing and no error.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

class SourceHealth : public WalfeedTest {
 protected:
  // Waits until Health answers `want`; fails after `timeout`.
  void WaitForHealth(HealthCheckResponse::ServingStatus want, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (Health() != want) {
      ASSERT_LT(absl::Now(), deadline)
          << "health never became " << HealthCheckResponse::ServingStatus_Name(want) << "\n"
          << walfeed_->Log();
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
};

TEST_F(SourceHealth, PostgresDownPastTheGracePeriodIsNotServingAndServingAgainOnceBack) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed({"--unhealthy-after", "3s"});
  EXPECT_EQ(Health(), HealthCheckResponse::SERVING);
  auto stub = grpc::health::v1::Health::NewStub(walfeed_->NewChannel());
  grpc::ClientContext watch_context;
  watch_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(180)));
  auto watch = stub->Watch(&watch_context, HealthCheckRequest());
  HealthCheckResponse watched;
  ASSERT_TRUE(watch->Read(&watched));
  EXPECT_EQ(watched.status(), HealthCheckResponse::SERVING);

  ASSERT_OK(SharedPostgres().StopServer());
  const absl::Time stopped = absl::Now();
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(Health(), HealthCheckResponse::SERVING) << "within the grace period";
  ASSERT_TRUE(watch->Read(&watched)) << "the watch hears the change";
  EXPECT_EQ(watched.status(), HealthCheckResponse::NOT_SERVING);
  // (The source may have noticed a moment before StopServer() returned.)
  EXPECT_GE(absl::Now() - stopped, absl::Seconds(2)) << "not before the grace period";
  EXPECT_EQ(Health(), HealthCheckResponse::NOT_SERVING);
  const v1::FeedInfo info = FeedInfo();
  EXPECT_THAT(info.source_problem(), HasSubstr("no progress for"));
  EXPECT_FALSE(info.source_last_error().empty());
  EXPECT_THAT(walfeed_->Log(), HasSubstr("event=health_not_serving"));

  ASSERT_OK(SharedPostgres().StartServer());
  WaitForHealth(HealthCheckResponse::SERVING, absl::Seconds(60));
  ASSERT_TRUE(watch->Read(&watched));
  EXPECT_EQ(watched.status(), HealthCheckResponse::SERVING);
  EXPECT_EQ(FeedInfo().source_problem(), "");
  EXPECT_EQ(FeedInfo().source_last_error(), "");
  Sql("INSERT INTO t VALUES (1)");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("after");
  ASSERT_OK(changes);
  ASSERT_EQ(changes->size(), 1u);
  watch_context.TryCancel();
  (void)watch->Finish();
}

// The slot is dropped under a running walfeed (as a failover or an operator would lose it), and
// --on-slot-lost=fail forbids a resynchronisation: the source cannot go on, and says so instead
// of retrying silently.
TEST_F(SourceHealth, ADroppedSlotIsNotServingWithTheReasonInFeedInfo) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed({"--unhealthy-after", "2s", "--on-slot-lost", "fail"});
  Sql("INSERT INTO t VALUES (1)");
  ASSERT_OK(CommitMarkerAndRead("in"));
  // walfeed reconnects at once: end its walsender and drop the slot until the drop wins.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (SlotExists(slot_)) {
    ASSERT_LT(absl::Now(), deadline) << "could not drop the slot";
    (void)SharedPostgres().Exec("postgres",
                                absl::StrCat("SELECT pg_terminate_backend(active_pid) FROM "
                                             "pg_replication_slots WHERE slot_name = '",
                                             slot_, "' AND active_pid IS NOT NULL"));
    (void)SharedPostgres().Exec("postgres",
                                absl::StrCat("SELECT pg_drop_replication_slot('", slot_, "')"));
  }
  WaitForHealth(HealthCheckResponse::NOT_SERVING, absl::Seconds(60));
  const v1::FeedInfo info = FeedInfo();
  EXPECT_THAT(info.source_problem(), HasSubstr("no progress for"));
  EXPECT_THAT(info.source_problem(), HasSubstr(slot_));
  EXPECT_THAT(info.source_problem(), HasSubstr("--on-slot-lost=resync"));
  EXPECT_NE(info.source_state(), "streaming");
}

}  // namespace
}  // namespace walfeed::test
