// The C++ client library's retry rules against a scripted ChangeFeed server in this process: a
// bare CANCELLED (what gRPC itself answers a call that reaches walfeed in the last instant of its
// shutdown) and UNAVAILABLE are retried, resuming from the last cursor, while an error retrying
// cannot mend ends Run() at once. The integration tests cover the same library against a real
// walfeed; this one makes the rare answers happen on purpose.
#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "client/subscriber.h"
#include "gtest/gtest.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed {
namespace {

// Answers each Subscribe call with the next scripted step: one change at `cursor` (unless
// empty), then `status`. Records every request.
class ScriptedFeed final : public v1::ChangeFeed::Service {
 public:
  struct Step {
    std::string cursor;
    grpc::Status status;
  };

  explicit ScriptedFeed(std::vector<Step> steps) : steps_(steps.begin(), steps.end()) {}

  grpc::Status Subscribe(grpc::ServerContext*, const v1::SubscribeRequest* request,
                         grpc::ServerWriter<v1::SubscribeResponse>* writer) override {
    Step step;
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(*request);
      if (steps_.empty()) return grpc::Status(grpc::StatusCode::INTERNAL, "the script ended");
      step = steps_.front();
      steps_.pop_front();
    }
    if (!step.cursor.empty()) {
      v1::SubscribeResponse response;
      v1::Change* change = response.add_changes();
      change->set_cursor(step.cursor);
      change->set_op(v1::Change::INSERT);
      response.set_cursor(step.cursor);
      response.set_log_id("log-1");
      writer->Write(response);
    }
    return step.status;
  }

  std::vector<v1::SubscribeRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  mutable absl::Mutex mu_;
  std::deque<Step> steps_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::SubscribeRequest> requests_ ABSL_GUARDED_BY(mu_);
};

class SubscriberRetryTest : public ::testing::Test {
 protected:
  void Serve(std::vector<ScriptedFeed::Step> steps) {
    feed_ = std::make_unique<ScriptedFeed>(std::move(steps));
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(feed_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  // Runs a subscriber until the script ends its stream with OK or an error it does not retry;
  // notes the cursors handed over and the errors retried.
  absl::Status Run() {
    SubscriberOptions options;
    options.server = "127.0.0.1:" + std::to_string(port_);
    options.min_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(10);
    Subscriber subscriber(options);
    return subscriber.Run(
        [&](const v1::Change& change) {
          handed_.push_back(change.cursor());
          return absl::OkStatus();
        },
        nullptr, [&](const absl::Status& error, absl::Duration) { retried_.push_back(error); });
  }

  std::unique_ptr<ScriptedFeed> feed_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::vector<std::string> handed_;
  std::vector<absl::Status> retried_;
};

TEST_F(SubscriberRetryTest, ABareCancelledAndUnavailableAreRetriedFromTheLastCursor) {
  Serve({{"0/10:0", grpc::Status(grpc::StatusCode::CANCELLED, "")},
         {"", grpc::Status(grpc::StatusCode::UNAVAILABLE, "walfeed is shutting down")},
         {"0/20:0", grpc::Status::OK}});
  ASSERT_TRUE(Run().ok());
  EXPECT_EQ(handed_, (std::vector<std::string>{"0/10:0", "0/20:0"}));
  ASSERT_EQ(retried_.size(), 2u);
  EXPECT_EQ(retried_[0].code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(retried_[1].code(), absl::StatusCode::kUnavailable);
  const std::vector<v1::SubscribeRequest> requests = feed_->requests();
  ASSERT_EQ(requests.size(), 3u);
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].cursor(), "0/10:0") << "attempt " << i << " resumes after the change";
    EXPECT_EQ(requests[i].log_id(), "log-1");
  }
}

TEST_F(SubscriberRetryTest, AnErrorRetryingCannotMendEndsTheRunAtOnce) {
  Serve({{"", grpc::Status(grpc::StatusCode::CANCELLED, "")},
         {"", grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "cursor is malformed")}});
  const absl::Status ended = Run();
  EXPECT_EQ(ended.code(), absl::StatusCode::kInvalidArgument) << ended;
  ASSERT_EQ(retried_.size(), 1u) << "CANCELLED is retried, INVALID_ARGUMENT is not";
  EXPECT_EQ(feed_->requests().size(), 2u);
}

}  // namespace
}  // namespace walfeed
