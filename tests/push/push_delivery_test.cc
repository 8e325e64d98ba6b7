// PushManager delivering a log to an HTTP receiver in-process (HttpSink): order, batching,
// keep-alive, the same idempotency key on every attempt and after a restart, pause and resume,
// filters.
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/push/push_manager.h"
#include "tests/support/http_sink.h"
#include "tests/support/temp_log_test.h"
#include "tests/support/transactions.h"

namespace walfeed {
namespace {

using test::HttpRequest;
using test::HttpResponse;
using test::MakeTransaction;
using ::testing::HasSubstr;

// What the receiver got, and what it answers next.
class Receiver {
 public:
  Receiver() : sink_([this](const HttpRequest& request) { return Take(request); }) {}

  std::string url() const { return sink_.url("/hook"); }
  int connections() const { return sink_.connections(); }
  // The next answers, in order; 200 once they are used up.
  void Script(std::vector<HttpResponse> answers) {
    absl::MutexLock lock(&mu_);
    script_ = std::move(answers);
  }
  std::vector<HttpRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  // The cursors of the changes in the requests answered 2xx, in order.
  std::vector<std::string> delivered() const {
    absl::MutexLock lock(&mu_);
    return delivered_;
  }

 private:
  HttpResponse Take(const HttpRequest& request) {
    absl::MutexLock lock(&mu_);
    requests_.push_back(request);
    HttpResponse answer;
    if (!script_.empty()) {
      answer = script_.front();
      script_.erase(script_.begin());
    }
    if (answer.status / 100 == 2) {
      v1::PushBatch batch;
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(request.body, &batch).ok());
      for (const v1::Change& change : batch.changes()) delivered_.push_back(change.cursor());
    }
    return answer;
  }

  mutable absl::Mutex mu_;
  std::vector<HttpResponse> script_ ABSL_GUARDED_BY(mu_);
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> delivered_ ABSL_GUARDED_BY(mu_);
  test::HttpSink sink_;  // last: stopped first, while the rest is still there
};

class PushDeliveryTest : public test::TempLogTest {
 protected:
  void TearDown() override {
    manager_.reset();
    TempLogTest::TearDown();
  }

  void StartManager() {
    absl::StatusOr<std::unique_ptr<PushManager>> manager = PushManager::Load(
        log_.get(),
        [] {
          SourceStatus status;
          status.database = "shop";
          status.tables = {"public.t", "public.u"};
          return status;
        },
        "");
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = *std::move(manager);
    manager_->Start();
  }

  v1::PushSubscription Settings(const std::string& url, uint32_t batch_changes = 50) {
    v1::PushSubscription settings;
    settings.set_name("hook");
    settings.set_url(url);
    settings.set_batch_changes(batch_changes);
    settings.set_timeout_ms(2000);
    return settings;
  }

  // Appends `transactions` transactions of `per` changes to table `table`.
  std::vector<std::string> Append(int transactions, int per, const std::string& table = "t") {
    std::vector<std::string> cursors;
    for (int i = 0; i < transactions; ++i) {
      const Transaction txn = MakeTransaction(next_lsn_, per, table, v1::Change::INSERT, next_lsn_);
      next_lsn_ += 0x100;
      EXPECT_TRUE(log_->Append({txn}, txn.end_lsn).ok());
      for (const v1::Change& change : txn.changes) cursors.push_back(change.cursor());
    }
    return cursors;
  }

  v1::PushSubscriptionInfo Info() {
    for (const v1::PushSubscriptionInfo& info : manager_->List()) {
      if (info.subscription().name() == "hook") return info;
    }
    ADD_FAILURE() << "no subscription";
    return {};
  }

  // Waits up to 30 s for `condition` on the subscription.
  v1::PushSubscriptionInfo WaitFor(
      const std::function<bool(const v1::PushSubscriptionInfo&)>& condition) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    v1::PushSubscriptionInfo info = Info();
    while (!condition(info) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
      info = Info();
    }
    EXPECT_TRUE(condition(info)) << info.DebugString();
    return info;
  }

  std::unique_ptr<PushManager> manager_;
  uint64_t next_lsn_ = 0x1000;
};

bool CaughtUp(const v1::PushSubscriptionInfo& info, const std::string& head) {
  return info.cursor() == head && info.state() == "caught_up";
}

TEST_F(PushDeliveryTest, DeliversEveryChangeOnceInOrderInBatchesOverOneConnection) {
  Receiver receiver;
  const std::vector<std::string> cursors = Append(7, 30);
  StartManager();
  ASSERT_TRUE(manager_->Create(Settings(receiver.url())).ok());
  std::vector<std::string> more = Append(3, 30);
  const std::string head = more.back();
  WaitFor([&](const auto& info) { return CaughtUp(info, head); });
  std::vector<std::string> all = cursors;
  all.insert(all.end(), more.begin(), more.end());
  EXPECT_EQ(receiver.delivered(), all);
  for (const HttpRequest& request : receiver.requests()) {
    EXPECT_LE(std::stoi(request.headers.at("walfeed-changes")), 50);
    EXPECT_EQ(request.version, "HTTP/1.1");
    EXPECT_EQ(request.headers.count("upgrade"), 0u);
    EXPECT_EQ(request.headers.count("expect"), 0u);
  }
  EXPECT_EQ(receiver.connections(), 1);
  const v1::PushSubscriptionInfo info = Info();
  EXPECT_EQ(info.delivered_changes(), 300u);
  EXPECT_EQ(info.delivered_batches(), receiver.requests().size());
  EXPECT_EQ(info.lag_changes(), 0u);
}

TEST_F(PushDeliveryTest, RetriesTheSameBatchUnderTheSameKey) {
  Receiver receiver;
  HttpResponse failing;
  failing.status = 503;
  HttpResponse throttled;
  throttled.status = 429;
  throttled.headers = {{"Retry-After", "1"}};
  receiver.Script({failing, failing, throttled});
  const std::vector<std::string> cursors = Append(1, 10);
  StartManager();
  ASSERT_TRUE(manager_->Create(Settings(receiver.url())).ok());
  const absl::Time start = absl::Now();
  WaitFor([&](const auto& info) { return CaughtUp(info, cursors.back()); });
  const std::vector<HttpRequest> requests = receiver.requests();
  ASSERT_EQ(requests.size(), 4u);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].headers.at("idempotency-key"), requests[0].headers.at("idempotency-key"));
    EXPECT_EQ(requests[i].headers.at("walfeed-attempt"), std::to_string(i + 1));
    EXPECT_EQ(requests[i].body, requests[0].body);
  }
  // Two backoffs (125-250 ms, 250-500 ms), then the 1 s Retry-After.
  EXPECT_GE(requests[3].received_at - requests[2].received_at, absl::Milliseconds(950));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1300));
  EXPECT_EQ(receiver.delivered(), cursors);
  EXPECT_EQ(Info().retries(), 3u);
}

TEST_F(PushDeliveryTest, AFourHundredPausesUntilResumedThenItGoesOnFromTheCursor) {
  Receiver receiver;
  HttpResponse refused;
  refused.status = 422;
  refused.body = "{\"detail\": \"qty must be positive\"}";
  const std::vector<std::string> first = Append(1, 5);
  StartManager();
  ASSERT_TRUE(manager_->Create(Settings(receiver.url())).ok());
  WaitFor([&](const auto& info) { return CaughtUp(info, first.back()); });
  receiver.Script({refused});
  const std::vector<std::string> second = Append(1, 5);
  const v1::PushSubscriptionInfo paused =
      WaitFor([](const auto& info) { return info.state() == "paused"; });
  EXPECT_EQ(paused.pause_reason(), "HTTP_4XX");
  EXPECT_EQ(paused.last_status(), 422);
  EXPECT_THAT(paused.last_error(), HasSubstr("qty must be positive"));
  EXPECT_EQ(paused.cursor(), first.back());
  EXPECT_EQ(paused.pending_first_cursor(), second.front());
  const std::vector<std::string> third = Append(1, 5);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(receiver.requests().size(), 2u) << "delivered while paused";
  v1::PushSubscriptionRequest resume;
  resume.set_name("hook");
  ASSERT_TRUE(manager_->Resume(resume).ok());
  WaitFor([&](const auto& info) { return CaughtUp(info, third.back()); });
  std::vector<std::string> all = first;
  all.insert(all.end(), second.begin(), second.end());
  all.insert(all.end(), third.begin(), third.end());
  EXPECT_EQ(receiver.delivered(), all);
  const std::vector<HttpRequest> requests = receiver.requests();
  EXPECT_EQ(requests[2].headers.at("idempotency-key"), requests[1].headers.at("idempotency-key"));
}

TEST_F(PushDeliveryTest, ARestartSendsTheBatchInFlightAgainUnderTheSameKey) {
  const std::vector<std::string> cursors = Append(3, 20);
  std::string first_key;
  Receiver receiver;
  {
    Receiver slow;
    HttpResponse hanging;
    hanging.delay = absl::Seconds(20);
    slow.Script({hanging});
    StartManager();
    ASSERT_TRUE(manager_->Create(Settings(slow.url(), 100)).ok());
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (slow.requests().empty() && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(10));
    ASSERT_EQ(slow.requests().size(), 1u);
    first_key = slow.requests()[0].headers.at("idempotency-key");
    // Same name, other settings: refused through the API.
    EXPECT_TRUE(absl::IsAlreadyExists(manager_->Create(Settings(receiver.url(), 100)).status()));
    manager_.reset();  // stops with the request in flight, unanswered
  }
  Append(1, 20);  // the batch in flight was cut by the head: one read now would be longer
  // A config file moves the subscription to the new receiver: its settings are taken, its cursor
  // and batch in flight kept.
  const std::string config = dir_ + "-push.json";
  {
    std::ofstream file(config);
    file << "{\"subscriptions\": [{\"name\": \"hook\", \"url\": \"" << receiver.url()
         << "\", \"batchChanges\": 100, \"timeoutMs\": 2000}]}";
  }
  absl::StatusOr<std::unique_ptr<PushManager>> reloaded = PushManager::Load(
      log_.get(), [] { return SourceStatus(); }, config);
  std::remove(config.c_str());
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  manager_ = *std::move(reloaded);
  manager_->Start();
  const std::string head = FormatCursor(log_->Head());
  WaitFor([&](const auto& info) { return CaughtUp(info, head); });
  const std::vector<HttpRequest> requests = receiver.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests[0].headers.at("idempotency-key"), first_key);
  EXPECT_EQ(requests[0].headers.at("walfeed-changes"), "60");
  const std::vector<std::string> delivered = receiver.delivered();
  ASSERT_EQ(delivered.size(), 80u);
  EXPECT_EQ(std::vector<std::string>(delivered.begin(), delivered.begin() + 60), cursors);
  EXPECT_EQ(std::set<std::string>(delivered.begin(), delivered.end()).size(), delivered.size());
}

TEST_F(PushDeliveryTest, ResumeFromTheStartDeliversEverythingAgain) {
  Receiver receiver;
  const std::vector<std::string> cursors = Append(2, 10);
  StartManager();
  ASSERT_TRUE(manager_->Create(Settings(receiver.url())).ok());
  WaitFor([&](const auto& info) { return CaughtUp(info, cursors.back()); });
  ASSERT_TRUE(manager_->Pause("hook").ok());
  v1::PushSubscriptionRequest resume;
  resume.set_name("hook");
  resume.set_to_start(true);
  resume.set_to_head(true);
  EXPECT_TRUE(absl::IsInvalidArgument(manager_->Resume(resume).status()));
  resume.set_to_head(false);
  ASSERT_TRUE(manager_->Resume(resume).ok());
  WaitFor([&](const auto& info) {
    return CaughtUp(info, cursors.back()) && info.delivered_changes() == 40;
  });
  std::vector<std::string> twice = cursors;
  twice.insert(twice.end(), cursors.begin(), cursors.end());
  EXPECT_EQ(receiver.delivered(), twice);
  EXPECT_TRUE(absl::IsNotFound(manager_->Pause("nobody").status()));
  ASSERT_TRUE(manager_->Delete("hook").ok());
  EXPECT_TRUE(manager_->List().empty());
  EXPECT_TRUE(absl::IsNotFound(manager_->Delete("hook")));
}

TEST_F(PushDeliveryTest, FilteredOutChangesMoveTheCursorWithoutARequest) {
  Receiver receiver;
  StartManager();
  v1::PushSubscription settings = Settings(receiver.url());
  settings.add_tables("public.u");
  ASSERT_TRUE(manager_->Create(settings).ok());
  const std::vector<std::string> other = Append(5, 10, "t");
  const std::vector<std::string> wanted = Append(1, 3, "u");
  const std::vector<std::string> tail = Append(2, 10, "t");
  WaitFor([&](const auto& info) { return CaughtUp(info, tail.back()); });
  EXPECT_EQ(receiver.delivered(), wanted);
  EXPECT_EQ(receiver.requests().size(), 1u);
  settings.set_name("bad");
  settings.clear_tables();
  settings.add_tables("public.nope");
  EXPECT_TRUE(absl::IsNotFound(manager_->Create(settings).status()));
}

}  // namespace
}  // namespace walfeed
