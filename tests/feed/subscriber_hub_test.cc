// SubscriberHub with fake subscribers, no gRPC: when it hands a waiter back (the head reaching
// its position, a wake before or during its wait, a requeue, a tick, shutdown) and when not.
#include "server/feed/subscriber_hub.h"

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace walfeed {
namespace {

// Counts the hub's calls to Pump().
class FakeSubscriber : public Pumpable {
 public:
  void Pump() override {
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
  hub.Requeue(&subscriber);
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

}  // namespace
}  // namespace walfeed
