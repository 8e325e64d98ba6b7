// The Compactor: one pass at a time, requests answered exactly once, also at shutdown.
#include "server/log/compactor.h"

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_log_test.h"
#include "tests/support/transactions.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;

class CompactorTest : public test::TempLogTest {
 protected:
  void SetUp() override {
    TempLogTest::SetUp();
    policy_.lag = absl::ZeroDuration();
  }

  CompactionPolicy policy_;
};

TEST_F(CompactorTest, SecondRequestWhileOneIsPendingIsRefused) {
  for (uint64_t lsn = 100; lsn <= 1000; lsn += 100) {
    ASSERT_OK(log_->Append({test::MakeTransaction(lsn, 2)}, lsn + 50));
  }
  Compactor compactor(log_.get(), policy_, absl::InfiniteDuration());
  absl::Notification done;
  absl::StatusOr<v1::CompactionResult> first;
  ASSERT_TRUE(compactor
                  .Request(policy_,
                           [&](absl::StatusOr<v1::CompactionResult> result) {
                             first = std::move(result);
                             done.Notify();
                           })
                  .ok());
  const absl::Status second = compactor.Request(policy_, [](auto) { FAIL() << "not accepted"; });
  EXPECT_EQ(second.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.message(), HasSubstr("already running"));

  compactor.Start();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_OK(first);
  EXPECT_EQ(first->superseded_removed(), 18u);
  // Free again once the pass is done.
  absl::Notification again;
  ASSERT_TRUE(compactor.Request(policy_, [&](auto) { again.Notify(); }).ok());
  ASSERT_TRUE(again.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST_F(CompactorTest, StopAnswersAPendingRequest) {
  Compactor compactor(log_.get(), policy_, absl::InfiniteDuration());
  absl::StatusOr<v1::CompactionResult> answer;
  bool answered = false;
  ASSERT_TRUE(compactor
                  .Request(policy_,
                           [&](absl::StatusOr<v1::CompactionResult> result) {
                             answer = std::move(result);
                             answered = true;
                           })
                  .ok());
  compactor.Stop();
  ASSERT_TRUE(answered);
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(compactor.Request(policy_, [](auto) {}).code(), absl::StatusCode::kUnavailable);
}

TEST_F(CompactorTest, RunsOnItsIntervalInTheBackground) {
  ASSERT_OK(log_->Append({test::MakeTransaction(100, 1)}, 150));
  ASSERT_OK(log_->Append({test::MakeTransaction(200, 1)}, 250));
  Compactor compactor(log_.get(), policy_, absl::Milliseconds(50));
  compactor.Start();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!log_->LastCompaction().has_value() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(log_->LastCompaction().has_value());
  compactor.Stop();
  EXPECT_EQ(log_->Oldest(), (Position{200, 0}));
}

}  // namespace
}  // namespace walfeed
