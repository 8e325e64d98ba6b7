// A WalfeedTest with its own 3-node NATS JetStream cluster on loopback and a stream name of its
// own, for the tests of the log replicated into JetStream, replicas and ingest groups.
#ifndef WALFEED_TESTS_INTEGRATION_NATS_TEST_H_
#define WALFEED_TESTS_INTEGRATION_NATS_TEST_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/nats_cluster.h"
#include "tests/support/walfeed_process.h"

namespace walfeed::test {

class WalfeedNatsTest : public WalfeedTest {
 protected:
  void SetUp() override {
    WalfeedTest::SetUp();
    absl::StatusOr<std::unique_ptr<NatsCluster>> nats = NatsCluster::Start(3);
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    stream_ = absl::StrCat("wf_", slot_);
  }

  // What `process` says of its feed; nullopt when it does not answer within 10 s.
  static std::optional<v1::FeedInfo> InfoOf(const WalfeedProcess& process) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::FeedInfo info;
    if (!process.NewStub()->GetFeedInfo(&context, {}, &info).ok()) return std::nullopt;
    return info;
  }

  // The same, a failure of the test when it does not answer.
  static v1::FeedInfo Describe(const WalfeedProcess& process) {
    std::optional<v1::FeedInfo> info = InfoOf(process);
    EXPECT_TRUE(info.has_value()) << "GetFeedInfo failed";
    return info.value_or(v1::FeedInfo());
  }

  std::unique_ptr<NatsCluster> nats_;
  std::string stream_;
};

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_INTEGRATION_NATS_TEST_H_
