// A thousand concurrent subscribers on one walfeed: most read at full speed, some never read,
// some connect and cancel in a loop. The healthy ones must each get the complete ordered feed,
// the source must keep its pace, and walfeed's memory must stay bounded.
#include <atomic>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"
#include "tests/support/wait.h"

namespace walfeed::test {
namespace {

constexpr int kHealthy = 800;
constexpr int kStalled = 150;
constexpr int kChurning = 50;
constexpr int kChannels = 10;
constexpr int kRows = 2000;
// walfeed's resident memory with a thousand streams open, measured at 120-140 MiB on this
// machine; the bound leaves room, and catches a per-subscriber queue or buffer. Under
// AddressSanitizer (quarantine, redzones) the same run takes about 550 MiB.
constexpr int64_t kRssBoundKib = kUnderAddressSanitizer ? 1024 * 1024 : 300 * 1024;

// One Subscribe stream on the callback API: reads until the "end" marker (healthy), or reads
// nothing at all after it started (stalled) until cancelled.
class Reader : public grpc::ClientReadReactor<v1::SubscribeResponse> {
 public:
  Reader(v1::ChangeFeed::Stub* stub, bool stalled,
         const v1::SubscribeRequest& request = v1::SubscribeRequest())
      : stalled_(stalled) {
    stub->async()->Subscribe(&context_, &request, this);
    if (!stalled_) StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    for (const v1::Change& change : response_.changes()) {
      if (change.op() == v1::Change::MESSAGE && change.message().content() == "end") {
        got_marker_ = true;
        context_.TryCancel();
        return;
      }
      if (const v1::Column* id = FindColumn(change.key(), "id")) ids_.push_back(id->int_());
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;
  }

  void Cancel() { context_.TryCancel(); }
  bool WaitDone(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
  }
  bool got_marker() const { return got_marker_; }
  const std::vector<int64_t>& ids() const { return ids_; }

 private:
  const bool stalled_;
  grpc::ClientContext context_;
  v1::SubscribeResponse response_;
  std::vector<int64_t> ids_;
  bool got_marker_ = false;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

class FanOut : public WalfeedTest {};

TEST_F(FanOut, AThousandSubscribersWithStalledAndChurningOnesStayCompleteAndBounded) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, pad text)");
  StartWalfeed();
  std::vector<std::unique_ptr<v1::ChangeFeed::Stub>> stubs;
  for (int c = 0; c < kChannels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("walfeed.test.channel", c);  // a connection per channel, not one shared
    stubs.push_back(v1::ChangeFeed::NewStub(
        grpc::CreateCustomChannel(walfeed_->address(), grpc::InsecureChannelCredentials(), args)));
  }
  std::vector<std::unique_ptr<Reader>> readers;
  for (int i = 0; i < kHealthy + kStalled; ++i) {
    readers.push_back(std::make_unique<Reader>(stubs[i % kChannels].get(), i >= kHealthy));
  }
  std::atomic<bool> churn{true};
  std::atomic<int> churned{0};
  std::vector<std::thread> churners;
  for (int c = 0; c < 2; ++c) {
    churners.emplace_back([&, c] {
      while (churn.load()) {
        std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
        std::vector<std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>>> streams;
        for (int i = 0; i < kChurning / 2; ++i) {
          contexts.push_back(std::make_unique<grpc::ClientContext>());
          streams.push_back(stubs[c]->Subscribe(contexts.back().get(), v1::SubscribeRequest()));
        }
        v1::SubscribeResponse response;
        for (auto& stream : streams) stream->Read(&response);
        for (auto& context : contexts) context->TryCancel();
        for (auto& stream : streams) stream->Finish();
        churned += kChurning / 2;
      }
    });
  }
  // The churners end on every path, a failed assertion's too (unjoined, they would abort).
  absl::Cleanup stop_churning = [&] {
    churn = false;
    for (std::thread& churner : churners) {
      if (churner.joinable()) churner.join();
    }
  };

  const absl::Time start = absl::Now();
  for (int batch = 0; batch < kRows / 100; ++batch) {
    Sql(absl::StrCat("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(",
                     batch * 100 + 1, ", ", batch * 100 + 100, ") g"));
  }
  Sql(MarkerSql("end"));
  // The source keeps its pace whatever the streams do: the last commit is confirmed to
  // PostgreSQL promptly while 150 streams never read and others come and go.
  SqlSession session(SharedPostgres().Conninfo(db_));
  absl::StatusOr<std::vector<std::vector<std::string>>> wal_end =
      session.Query("SELECT pg_current_wal_lsn()::text");
  ASSERT_OK(wal_end);
  const std::string written = (*wal_end)[0][0];
  const absl::Time marker_committed = absl::Now();
  EXPECT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<std::vector<std::vector<std::string>>> confirmed = session.Query(
            absl::StrCat("SELECT confirmed_flush_lsn >= '", written,
                         "' FROM pg_replication_slots WHERE slot_name = '", slot_, "'"));
        return confirmed.ok() && !confirmed->empty() && (*confirmed)[0][0] == "t";
      },
      absl::Seconds(3), absl::Milliseconds(20)))
      << "the last commit was not confirmed within " << Bound(absl::Seconds(3))
      << " while streams stalled";
  const absl::Duration confirmed_in = absl::Now() - marker_committed;
  for (int i = 0; i < kHealthy; ++i) {
    ASSERT_TRUE(readers[i]->WaitDone(absl::Seconds(120))) << "healthy subscriber " << i;
  }
  const absl::Duration delivered_in = absl::Now() - start;
  const int64_t rss_kib = ProcStatusKib(walfeed_->pid(), "VmRSS");
  const int64_t peak_kib = ProcStatusKib(walfeed_->pid(), "VmHWM");
  const int64_t threads = ProcStatusKib(walfeed_->pid(), "Threads");
  std::move(stop_churning).Invoke();

  std::vector<int64_t> expected;
  for (int i = 1; i <= kRows; ++i) expected.push_back(i);
  for (int i = 0; i < kHealthy; ++i) {
    ASSERT_TRUE(readers[i]->got_marker()) << i;
    ASSERT_EQ(readers[i]->ids(), expected) << "subscriber " << i;
  }
  EXPECT_GT(churned.load(), 0);
  // Cancelled streams leave nothing behind: only the stalled ones are still counted.
  const absl::Time settle = absl::Now() + absl::Seconds(20);
  while (FeedInfo().subscribers() != static_cast<uint32_t>(kStalled) && absl::Now() < settle) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(FeedInfo().subscribers(), static_cast<uint32_t>(kStalled));
  EXPECT_GT(rss_kib, 0);
  EXPECT_LT(peak_kib, kRssBoundKib) << "peak RSS with a thousand streams";
  RecordProperty("peak_rss_kib", static_cast<int>(peak_kib));
  RecordProperty("delivered_ms", static_cast<int>(absl::ToInt64Milliseconds(delivered_in)));
  std::cout << "fan-out: " << kHealthy << " healthy, " << kStalled << " stalled, " << churned.load()
            << " churned; the last commit confirmed in " << absl::FormatDuration(confirmed_in)
            << ", all delivered in " << absl::FormatDuration(delivered_in) << "; walfeed RSS "
            << rss_kib / 1024 << " MiB, peak " << peak_kib / 1024 << " MiB, " << threads
            << " threads\n";
  for (int i = kHealthy; i < kHealthy + kStalled; ++i) readers[i]->Cancel();
  for (int i = kHealthy; i < kHealthy + kStalled; ++i) {
    EXPECT_TRUE(readers[i]->WaitDone(absl::Seconds(30)));
  }
}

// Subscribers that never read hold what walfeed sent them last, and no more: all of them together
// about --max-inflight-bytes, and the memory comes back once they leave. (Before the budget, 500
// stalled streams cost about 0.85 MiB each and most of it stayed after they left.)
TEST_F(FanOut, StalledStreamsHoldABoundedBudgetAndGiveTheMemoryBack) {
  constexpr int kStalledStreams = 1000;
  Sql("CREATE TABLE t (id int PRIMARY KEY, pad text)");
  StartWalfeed({"--max-inflight-bytes", "64MiB"});
  // About 60 MB of changes: every stream could take a full 1 MiB batch without the budget.
  for (int batch = 0; batch < 6; ++batch) {
    Sql(absl::StrCat("INSERT INTO t SELECT g, repeat(md5(g::text), 60) FROM generate_series(",
                     batch * 5000 + 1, ", ", batch * 5000 + 5000, ") g"));
  }
  ASSERT_OK(CommitMarkerAndRead("loaded"));
  absl::SleepFor(absl::Seconds(2));
  const int64_t before_kib = ProcStatusKib(walfeed_->pid(), "VmRSS");

  std::vector<std::unique_ptr<v1::ChangeFeed::Stub>> stubs;
  for (int c = 0; c < kChannels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("walfeed.test.channel", c);
    stubs.push_back(v1::ChangeFeed::NewStub(
        grpc::CreateCustomChannel(walfeed_->address(), grpc::InsecureChannelCredentials(), args)));
  }
  v1::SubscribeRequest request;
  request.set_max_batch_changes(4000);
  request.add_tables("t");  // filtered: every stream reads and frames its own batches
  std::vector<std::unique_ptr<Reader>> readers;
  for (int i = 0; i < kStalledStreams; ++i) {
    readers.push_back(std::make_unique<Reader>(stubs[i % kChannels].get(), true, request));
  }
  int64_t during_kib = 0;
  for (int i = 0; i < 10; ++i) {  // until every stream has filled its window
    absl::SleepFor(absl::Seconds(1));
    during_kib = std::max(during_kib, ProcStatusKib(walfeed_->pid(), "VmRSS"));
  }
  for (auto& reader : readers) reader->Cancel();
  for (auto& reader : readers) ASSERT_TRUE(reader->WaitDone(absl::Seconds(60)));
  readers.clear();
  absl::SleepFor(absl::Seconds(4));
  const int64_t after_kib = ProcStatusKib(walfeed_->pid(), "VmRSS");
  std::cout << "stalled streams: " << kStalledStreams << " with a 64 MiB budget; walfeed RSS "
            << before_kib / 1024 << " MiB before, " << during_kib / 1024 << " MiB during, "
            << after_kib / 1024 << " MiB after" << std::endl;
  if (!kUnderAddressSanitizer) {
    EXPECT_LT(during_kib - before_kib, 400 * 1024) << "stalled streams are not bounded";
    EXPECT_LT(after_kib - before_kib, (during_kib - before_kib) / 2 + 32 * 1024)
        << "the memory of ended streams did not come back";
  }
}

}  // namespace
}  // namespace walfeed::test
