// DurableAppender against a recording sink: group commit, back-pressure, staged parts in queue
// order, a failed append that sticks, and the destructor appending what is still queued.
#include "server/source/durable_appender.h"

#include <poll.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/recording_sink.h"
#include "tests/support/status_assertions.h"
#include "tests/support/transactions.h"

namespace walfeed {
namespace {

using test::MakeTransaction;
using test::RecordingSink;
using ::testing::ElementsAre;
using ::testing::Field;
using Call = RecordingSink::Call;

std::vector<v1::Change> Part(uint64_t lsn, int count) {
  return MakeTransaction(lsn, count).changes;
}

// Submits the transaction at 100 and waits until `sink` (held) is appending it, so that what is
// submitted next queues behind it.
void StartHeldAppend(RecordingSink& sink, DurableAppender& appender) {
  ASSERT_TRUE(appender.Submit(MakeTransaction(100, 1), 10));
  sink.AwaitAppendsBegun(1);
}

bool Readable(int fd) {
  pollfd polled{fd, POLLIN, 0};
  return poll(&polled, 1, 0) == 1;
}

TEST(DurableAppender, TransactionsQueuedDuringAnAppendGoInTheNextOneTogether) {
  RecordingSink sink;
  sink.Hold();
  DurableAppender appender(&sink, 1 << 20);
  StartHeldAppend(sink, appender);
  ASSERT_TRUE(appender.Submit(MakeTransaction(200, 2), 10));
  ASSERT_TRUE(appender.Submit(MakeTransaction(300, 1), 10));
  EXPECT_FALSE(appender.idle());
  EXPECT_EQ(appender.durable_lsn(), 0u);
  sink.Release();
  ASSERT_OK(appender.Drain());
  EXPECT_THAT(sink.calls(), ElementsAre(Field(&Call::lsns, ElementsAre(100u)),
                                        Field(&Call::lsns, ElementsAre(200u, 300u))));
  // The resume point of a group is its last transaction's end.
  EXPECT_EQ(sink.calls().back().resume_lsn, MakeTransaction(300, 1).end_lsn);
  EXPECT_EQ(appender.durable_lsn(), MakeTransaction(300, 1).end_lsn);
  EXPECT_TRUE(appender.idle());
  EXPECT_TRUE(Readable(appender.wake_fd()));
}

TEST(DurableAppender, SubmitWaitsWhileTooMuchIsQueuedButAlwaysAdmitsIntoAnEmptyQueue) {
  RecordingSink sink;
  sink.Hold();
  DurableAppender appender(&sink, 100);
  // Larger than the bound, into an empty queue: admitted at once.
  ASSERT_TRUE(appender.Submit(MakeTransaction(100, 1), 500));
  sink.AwaitAppendsBegun(1);
  ASSERT_TRUE(appender.Submit(MakeTransaction(200, 1), 100));  // the queue is now full
  std::atomic<bool> returned{false};
  std::thread blocked([&] {
    EXPECT_TRUE(appender.Submit(MakeTransaction(300, 1), 1));
    returned = true;
  });
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(returned.load()) << "Submit returned while the queue was full";
  sink.Release();
  blocked.join();
  EXPECT_TRUE(returned.load());
  ASSERT_OK(appender.Drain());
  std::vector<uint64_t> appended;
  for (const Call& call : sink.calls()) {
    appended.insert(appended.end(), call.lsns.begin(), call.lsns.end());
  }
  EXPECT_THAT(appended, ElementsAre(100u, 200u, 300u));
}

TEST(DurableAppender, StagedPartsAreWrittenInQueueOrderBeforeTheTransactionsLastPart) {
  RecordingSink sink;
  sink.Hold();
  DurableAppender appender(&sink, 1 << 20);
  StartHeldAppend(sink, appender);
  ASSERT_TRUE(appender.SubmitStaged(Part(200, 2), 10));
  ASSERT_TRUE(appender.SubmitStaged(Part(200, 1), 10));
  ASSERT_TRUE(appender.Submit(MakeTransaction(200, 1), 10));
  sink.Release();
  ASSERT_OK(appender.Drain());
  EXPECT_THAT(sink.calls(),
              ElementsAre(Field(&Call::kind, Call::kAppend), Field(&Call::kind, Call::kStage),
                          Field(&Call::kind, Call::kStage), Field(&Call::kind, Call::kAppend)));
  EXPECT_THAT(sink.calls()[1].lsns, ElementsAre(200u, 200u));
  EXPECT_EQ(appender.durable_lsn(), MakeTransaction(200, 1).end_lsn);
}

TEST(DurableAppender, AFailedAppendSticksAndDropsTheQueueUnconfirmed) {
  RecordingSink sink;
  sink.FailAppend(2);
  DurableAppender appender(&sink, 1 << 20);
  ASSERT_TRUE(appender.Submit(MakeTransaction(100, 1), 10));
  ASSERT_OK(appender.Drain());
  const uint64_t durable = appender.durable_lsn();
  EXPECT_EQ(durable, MakeTransaction(100, 1).end_lsn);

  sink.Hold();
  ASSERT_TRUE(appender.Submit(MakeTransaction(200, 1), 10));
  sink.AwaitAppendsBegun(2);
  ASSERT_TRUE(appender.Submit(MakeTransaction(300, 1), 10));  // queued behind the failing one
  sink.Release();
  const absl::Status drained = appender.Drain();
  EXPECT_TRUE(absl::IsUnavailable(drained)) << drained;
  // Nothing more is taken or written, and what was confirmed stays where it was: PostgreSQL
  // sends the rest again.
  EXPECT_FALSE(appender.Submit(MakeTransaction(400, 1), 10));
  EXPECT_FALSE(appender.SubmitStaged(Part(500, 1), 10));
  EXPECT_EQ(appender.error(), drained);
  EXPECT_EQ(appender.durable_lsn(), durable);
  const std::vector<Call> calls = sink.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(calls[1].failed);
  EXPECT_THAT(calls[1].lsns, ElementsAre(200u));
}

TEST(DurableAppender, TheDestructorAppendsWhatIsStillQueued) {
  RecordingSink sink;
  sink.Hold();
  auto appender = std::make_unique<DurableAppender>(&sink, 1 << 20);
  StartHeldAppend(sink, *appender);
  ASSERT_TRUE(appender->Submit(MakeTransaction(200, 1), 10));
  std::thread destroy([&appender] { appender.reset(); });
  absl::SleepFor(absl::Milliseconds(50));
  sink.Release();
  destroy.join();
  EXPECT_THAT(sink.calls(), ElementsAre(Field(&Call::lsns, ElementsAre(100u)),
                                        Field(&Call::lsns, ElementsAre(200u))));
}

}  // namespace
}  // namespace walfeed
