// SubscriberHub with fake subscribers, no gRPC: when it hands a waiter back (the head reaching
// its position, a wake before or during its wait, a requeue, a tick, shutdown) and when not.
#include "server/feed/subscriber_hub.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/invariant.h"
#include "server/core/table_name.h"

namespace walfeed {
namespace {

// Counts the hub's calls to Pump(), each taking `pump_time`.
class FakeSubscriber : public Pumpable {
 public:
  explicit FakeSubscriber(absl::Duration pump_time = absl::ZeroDuration())
      : pump_time_(pump_time) {}
  void Pump() override {
    absl::SleepFor(pump_time_);
    absl::MutexLock lock(&mu_);
    ++pumps_;
  }
  // True once Pump() has been called `n` times, false after `timeout` without.
  bool AwaitPumps(int n, absl::Duration timeout = absl::Seconds(5)) {
    absl::MutexLock lock(&mu_);
    const auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pumps_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

 private:
  const absl::Duration pump_time_;
  absl::Mutex mu_;
  int pumps_ ABSL_GUARDED_BY(mu_) = 0;
};

constexpr absl::Duration kNoTick = absl::Hours(1);
constexpr absl::Duration kWhile = absl::Milliseconds(150);

TEST(SubscriberHub, AWaiterIsPumpedOnceTheHeadReachesItsPositionAndNotBefore) {
  SubscriberHub hub(Position{10, 0}, kNoTick);
  FakeSubscriber subscriber;
  ASSERT_TRUE(hub.AddWaiter(&subscriber, Position{20, 0}));
  hub.OnHeadAdvanced(Position{15, 3});
  EXPECT_FALSE(subscriber.AwaitPumps(1, kWhile));
  hub.OnHeadAdvanced(Position{20, 0});
  EXPECT_TRUE(subscriber.AwaitPumps(1));
  hub.Stop();
}

TEST(SubscriberHub, AddWaiterKeepsNothingWhenTheHeadIsAlreadyThere) {
  SubscriberHub hub(Position{10, 2}, kNoTick);
  FakeSubscriber subscriber;
  EXPECT_FALSE(hub.AddWaiter(&subscriber, Position{10, 2}));
  EXPECT_FALSE(hub.AddWaiter(&subscriber, Position{5, 0}));
  EXPECT_FALSE(subscriber.AwaitPumps(1, kWhile)) << "a refused waiter is the caller's, not pumped";
  hub.Stop();
}

TEST(SubscriberHub, AWakeBeforeOrDuringTheWaitHandsTheWaiterBackAtOnce) {
  SubscriberHub hub(Position{10, 0}, kNoTick);
  FakeSubscriber early;
  hub.Wake(&early);  // cancelled while a write was in flight: not waiting yet
  ASSERT_TRUE(hub.AddWaiter(&early, Position{100, 0}));
  EXPECT_TRUE(early.AwaitPumps(1));

  FakeSubscriber waiting;
  ASSERT_TRUE(hub.AddWaiter(&waiting, Position{100, 0}));
  EXPECT_FALSE(waiting.AwaitPumps(1, kWhile));
  hub.Wake(&waiting);
  EXPECT_TRUE(waiting.AwaitPumps(1));
  hub.Stop();
}

TEST(SubscriberHub, ARequeuedSubscriberIsPumpedAgain) {
  SubscriberHub hub(Position{10, 0}, kNoTick);
  FakeSubscriber subscriber;
  // As a subscriber does from its Pump(): once handed back, it may be requeued again.
  hub.Requeue(&subscriber);
  EXPECT_TRUE(subscriber.AwaitPumps(1));
  hub.Requeue(&subscriber);
  EXPECT_TRUE(subscriber.AwaitPumps(2));
  hub.Stop();
}

TEST(SubscriberHub, EveryTickPumpsEveryWaiterForItsProgressMessage) {
  SubscriberHub hub(Position{10, 0}, absl::Milliseconds(50));
  FakeSubscriber subscriber;
  ASSERT_TRUE(hub.AddWaiter(&subscriber, Position{100, 0}));
  EXPECT_TRUE(subscriber.AwaitPumps(1));
  hub.Stop();
}

TEST(SubscriberHub, ATickPumpsOnlyTheWaitersWhoseProgressIsDue) {
  SubscriberHub hub(Position{10, 0}, absl::Milliseconds(20));
  FakeSubscriber due;
  FakeSubscriber later;
  ASSERT_TRUE(hub.AddWaiter(&due, Position{100, 0}, nullptr, absl::Now()));
  ASSERT_TRUE(hub.AddWaiter(&later, Position{100, 0}, nullptr, absl::Now() + absl::Hours(1)));
  EXPECT_TRUE(due.AwaitPumps(1));
  EXPECT_FALSE(later.AwaitPumps(1, kWhile)) << "its progress is not due for an hour";
  hub.OnHeadAdvanced(Position{100, 0});
  EXPECT_TRUE(later.AwaitPumps(1)) << "but the head still wakes it";
  hub.Stop();
}

TEST(SubscriberHub, AWaiterTheHeadWakesGoesBeforeACrowdDueForProgress) {
  SubscriberHub hub(Position{10, 0}, absl::Milliseconds(20));
  // 2,000 streams due for progress at the same tick, 1 ms each: two seconds of pumping.
  std::vector<std::unique_ptr<FakeSubscriber>> crowd;
  for (int i = 0; i < 2000; ++i) {
    crowd.push_back(std::make_unique<FakeSubscriber>(absl::Milliseconds(1)));
    ASSERT_TRUE(hub.AddWaiter(crowd.back().get(), Position{100, 0}, nullptr, absl::Now()));
  }
  FakeSubscriber live;
  ASSERT_TRUE(hub.AddWaiter(&live, Position{20, 0}, nullptr, absl::InfiniteFuture()));
  const auto pumped = [&crowd] {
    return absl::c_count_if(crowd,
                            [](const auto& s) { return s->AwaitPumps(1, absl::ZeroDuration()); });
  };
  while (pumped() == 0) absl::SleepFor(absl::Milliseconds(1));  // the crowd is being pumped
  hub.OnHeadAdvanced(Position{20, 0});
  EXPECT_TRUE(live.AwaitPumps(1, absl::Milliseconds(500))) << "waited for the crowd";
  EXPECT_LT(pumped(), 1000);
  hub.Stop();
  EXPECT_EQ(pumped(), 2000) << "every one due is pumped before the hub stops";
}

TEST(SubscriberHub, ShutdownPumpsEveryWaiterAndEveryLaterOneAtOnce) {
  SubscriberHub hub(Position{10, 0}, kNoTick);
  FakeSubscriber waiting;
  ASSERT_TRUE(hub.AddWaiter(&waiting, Position{100, 0}));
  hub.BeginShutdown();
  EXPECT_TRUE(hub.shutting_down());
  EXPECT_TRUE(waiting.AwaitPumps(1));
  FakeSubscriber later;
  ASSERT_TRUE(hub.AddWaiter(&later, Position{100, 0}));
  EXPECT_TRUE(later.AwaitPumps(1));
  hub.Stop();
}

TEST(SubscriberHub, StreamsShareTheBatchBudgetDownToTheFloor) {
  SubscriberHub hub(Position{}, kNoTick);
  EXPECT_EQ(hub.BatchBytesPerStream(4 << 20, 256 << 20), size_t{4} << 20);
  for (int i = 0; i < 1000; ++i) hub.SubscriberStarted();
  EXPECT_EQ(hub.BatchBytesPerStream(4 << 20, 256 << 20), (size_t{256} << 20) / 1000);
  for (int i = 0; i < 9000; ++i) hub.SubscriberStarted();
  EXPECT_EQ(hub.BatchBytesPerStream(4 << 20, 256 << 20), SubscriberHub::kMinBatchBytes);
  hub.Stop();
}

// Tables as subscribers name them (TableKey), and the spans the log tells the hub.
const std::string kOrders = TableKey("public", "orders");
const std::string kUsers = TableKey("public", "users");
const std::string kAudit = TableKey("public", "audit");
std::vector<std::string> Only(std::string table) { return {std::move(table)}; }

TEST(SubscriberHub, ATableWaiterWakesOnlyForItsTables) {
  SubscriberHub hub(Position{10, 0}, kNoTick);
  const absl::flat_hash_set<std::string> tables = {kOrders, kUsers};
  FakeSubscriber subscriber;
  ASSERT_TRUE(hub.AddWaiter(&subscriber, Position{10, 1}, &tables));
  hub.OnHeadAdvanced(Position{10, 0}, Position{20, 4}, Only(kAudit), false);
  hub.OnHeadAdvanced(Position{20, 4}, Position{30, 0}, {}, false);  // a message: no table
  EXPECT_FALSE(subscriber.AwaitPumps(1, kWhile)) << "other tables' changes must not wake it";
  hub.OnHeadAdvanced(Position{30, 0}, Position{40, 2}, Only(kUsers), false);
  EXPECT_TRUE(subscriber.AwaitPumps(1));
  hub.Stop();
}

TEST(SubscriberHub, ATableWaiterWakesWhenTheTablesAreNotTold) {
  SubscriberHub hub(Position{10, 0}, kNoTick);
  const absl::flat_hash_set<std::string> tables = {kOrders};
  FakeSubscriber untold;
  FakeSubscriber after_gap;
  ASSERT_TRUE(hub.AddWaiter(&untold, Position{10, 1}, &tables));
  hub.OnHeadAdvanced(Position{10, 0}, Position{20, 0}, {}, /*all_tables=*/true);
  EXPECT_TRUE(untold.AwaitPumps(1));
  ASSERT_TRUE(hub.AddWaiter(&after_gap, Position{20, 1}, &tables));
  hub.OnHeadAdvanced(Position{20, 0}, Position{30, 0}, Only(kAudit), false);
  EXPECT_FALSE(after_gap.AwaitPumps(1, kWhile));
  hub.Stop();
  EXPECT_TRUE(after_gap.AwaitPumps(1)) << "shutdown hands every waiter back";
}

TEST(SubscriberHub, ATickAndACancelHandATableWaiterBack) {
  SubscriberHub hub(Position{10, 0}, absl::Milliseconds(50));
  const absl::flat_hash_set<std::string> tables = {kOrders};
  FakeSubscriber ticked;
  ASSERT_TRUE(hub.AddWaiter(&ticked, Position{10, 1}, &tables));
  EXPECT_TRUE(ticked.AwaitPumps(1));
  hub.Stop();

  SubscriberHub quiet(Position{10, 0}, kNoTick);
  FakeSubscriber cancelled;
  ASSERT_TRUE(quiet.AddWaiter(&cancelled, Position{10, 1}, &tables));
  quiet.Wake(&cancelled);
  EXPECT_TRUE(cancelled.AwaitPumps(1));
  // Forgotten under every table it waited for: a later change of one pumps it no more.
  quiet.OnHeadAdvanced(Position{10, 0}, Position{20, 0}, Only(kOrders), false);
  EXPECT_FALSE(cancelled.AwaitPumps(2, kWhile));
  quiet.Stop();
}

TEST(SubscriberHub, FirstPossibleSkipsOnlyWhatTheHubHeardInFull) {
  SubscriberHub hub(Position{10, 0}, kNoTick);
  const absl::flat_hash_set<std::string> orders = {kOrders};
  // Before anything was heard: the hub knows nothing of what lies at or before its start.
  EXPECT_EQ(hub.FirstPossible(orders, Position{5, 0}), (Position{5, 0}));
  hub.OnHeadAdvanced(Position{10, 0}, Position{20, 3}, Only(kUsers), false);
  hub.OnHeadAdvanced(Position{20, 3}, Position{30, 1}, Only(kOrders), false);
  hub.OnHeadAdvanced(Position{30, 1}, Position{40, 0}, Only(kAudit), false);
  EXPECT_EQ(hub.FirstPossible(orders, Position{10, 1}), (Position{10, 1})) << "orders at 30";
  EXPECT_EQ(hub.FirstPossible(orders, Position{30, 1}), (Position{30, 1}));
  EXPECT_EQ(hub.FirstPossible(orders, Position{30, 2}), (Position{40, 0}).Successor());
  EXPECT_EQ(hub.FirstPossible({kUsers, kAudit}, Position{30, 2}), (Position{30, 2}));
  EXPECT_EQ(hub.FirstPossible(orders, Position{40, 1}), (Position{40, 1})) << "past the head";
  // An advance heard without its tables, or after one that was missed, ends what is known.
  hub.OnHeadAdvanced(Position{40, 0}, Position{50, 0}, {}, true);
  EXPECT_EQ(hub.FirstPossible(orders, Position{40, 1}), (Position{40, 1}));
  hub.OnHeadAdvanced(Position{55, 0}, Position{60, 0}, Only(kAudit), false);  // 50..55 missed
  EXPECT_EQ(hub.FirstPossible(orders, Position{50, 1}), (Position{50, 1}));
  hub.OnHeadAdvanced(Position{60, 0}, Position{70, 0}, Only(kAudit), false);
  EXPECT_EQ(hub.FirstPossible(orders, Position{60, 1}), (Position{70, 0}).Successor());
  hub.Stop();
}

// The one-driver rule (subscriber_hub.h) is checked where invariants are (invariant.h): a
// subscriber handed to the hub while it holds it would be pumped by two threads at once.
TEST(SubscriberHubDeathTest, ASubscriberHandedToTheHubTwiceIsCaught) {
  if (!kInvariantsChecked) {
    GTEST_SKIP() << "invariant checks are compiled into the sanitizer and Debug builds only";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SubscriberHub hub(Position{1, 0}, absl::Seconds(60));
        FakeSubscriber subscriber;
        hub.AddWaiter(&subscriber, Position{5, 0});
        hub.Requeue(&subscriber);
      },
      "two parties drive it");
  EXPECT_DEATH(
      {
        SubscriberHub hub(Position{1, 0}, absl::Seconds(60));
        FakeSubscriber subscriber;
        hub.AddWaiter(&subscriber, Position{5, 0});
        hub.SubscriberEnded(&subscriber);
      },
      "ended while the hub still held it");
}

}  // namespace
}  // namespace walfeed
