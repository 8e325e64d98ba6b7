// ConsumerRegistry (server/feed/consumer_registry.h) on a real change log: commits only move
// forward and survive a reopen, concurrent commits all land, one lease per name, and a damaged
// record is refused rather than read as no consumers.
#include "server/feed/consumer_registry.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/metadata_keys.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_log_test.h"

namespace walfeed::test {
namespace {

class ConsumerRegistryTest : public TempLogTest {
 protected:
  std::unique_ptr<ConsumerRegistry> Load() {
    absl::StatusOr<std::unique_ptr<ConsumerRegistry>> registry = ConsumerRegistry::Load(log_.get());
    EXPECT_OK(registry);
    return registry.ok() ? *std::move(registry) : nullptr;
  }
};

TEST_F(ConsumerRegistryTest, CommitsMoveOnlyForwardAndSurviveAReopen) {
  std::unique_ptr<ConsumerRegistry> registry = Load();
  EXPECT_FALSE(registry->Cursor("a").has_value());
  absl::StatusOr<std::pair<Position, bool>> stored = registry->Commit("a", Position{0x200, 1});
  ASSERT_OK(stored);
  EXPECT_TRUE(stored->second);
  stored = registry->Commit("a", Position{0x100, 7});
  ASSERT_OK(stored);
  EXPECT_FALSE(stored->second);
  EXPECT_EQ(stored->first, (Position{0x200, 1}));
  ASSERT_OK(registry->Reset("b", Position{}));  // "the start"
  registry.reset();
  Reopen();
  registry = Load();
  EXPECT_EQ(registry->Cursor("a"), (Position{0x200, 1}));
  EXPECT_EQ(registry->Cursor("b"), Position{});
  ASSERT_OK(registry->Reset("a", Position{0x50, 0}));  // backward, by an operator
  EXPECT_EQ(registry->Cursor("a"), (Position{0x50, 0}));
  ASSERT_OK(registry->Delete("a"));
  EXPECT_EQ(registry->Delete("a").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry->List(Position{0x300, 0}).size(), 1u);
}

TEST_F(ConsumerRegistryTest, ConcurrentCommitsAllLandDurably) {
  std::unique_ptr<ConsumerRegistry> registry = Load();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&registry, t] {
      for (uint64_t i = 1; i <= 50; ++i) {
        EXPECT_OK(registry->Commit(absl::StrCat("c", t), Position{i * 0x10, 0}));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  registry.reset();
  Reopen();
  registry = Load();
  for (int t = 0; t < 8; ++t) {
    EXPECT_EQ(registry->Cursor(absl::StrCat("c", t)), (Position{50 * 0x10, 0})) << t;
  }
}

TEST_F(ConsumerRegistryTest, OneLeasePerNameAndNoResetWhileItStreams) {
  std::unique_ptr<ConsumerRegistry> registry = Load();
  absl::StatusOr<std::unique_ptr<ConsumerRegistry::Lease>> lease = registry->Acquire("w");
  ASSERT_OK(lease);
  EXPECT_EQ(registry->Acquire("w").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(registry->Reset("w", Position{}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_OK(registry->Acquire("other"));
  lease->reset();
  EXPECT_OK(registry->Acquire("w"));
  EXPECT_EQ(registry->Acquire("bad name").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ConsumerRegistryTest, ADamagedRecordIsRefused) {
  for (const char* damaged : {"garbage", "consumers-v1\nname-only\n", "consumers-v1\na\tx\t1\n",
                              "consumers-v1\nbad name\t\t1\n"}) {
    ASSERT_OK(log_->SetMetadata(kConsumersKey, damaged));
    absl::StatusOr<std::unique_ptr<ConsumerRegistry>> registry = ConsumerRegistry::Load(log_.get());
    EXPECT_EQ(registry.status().code(), absl::StatusCode::kDataLoss) << damaged;
  }
}

}  // namespace
}  // namespace walfeed::test
