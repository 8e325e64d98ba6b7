// The Prometheus endpoint (--metrics-listen): it answers, and its counters move with real
// changes, subscribers and errors.

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/status_assertions.h"
#include "tests/support/wait.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

class Metrics : public WalfeedTest {};

TEST_F(Metrics, EndpointAnswersAndCountersMove) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, note text)");
  const int port = FreePort();
  StartWalfeed({"--metrics-listen", absl::StrCat("127.0.0.1:", port)});
  const std::string before = Scrape(port);
  ASSERT_THAT(before, HasSubstr("# TYPE walfeed_changes_ingested_total counter"));
  EXPECT_EQ(Sample(before, "walfeed_source_state{state=\"streaming\"}"), 1);
  EXPECT_GE(Sample(before, "walfeed_slot_retained_wal_bytes"), 0);
  const double ingested_before = Sample(before, "walfeed_changes_ingested_total");

  Sql("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 50) g");
  Sql("UPDATE t SET note = 'changed' WHERE id <= 10");
  absl::StatusOr<std::vector<v1::Change>> read = CommitMarkerAndRead("counted");
  ASSERT_OK(read);
  ASSERT_EQ(read->size(), 60u);

  // A refused call is counted by its reason.
  grpc::ClientContext context;
  v1::SubscribeRequest bad;
  bad.set_cursor("not-a-cursor");
  v1::SubscribeResponse response;
  auto reader = walfeed_->NewStub()->Subscribe(&context, bad);
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  const std::string after = Scrape(port);
  EXPECT_GE(Sample(after, "walfeed_changes_ingested_total"), ingested_before + 61)
      << "60 row changes and the marker";
  EXPECT_GE(Sample(after, "walfeed_transactions_ingested_total"), 3);
  EXPECT_GE(Sample(after, "walfeed_changes_sent_total"), 61);
  EXPECT_GE(Sample(after, "walfeed_source_lag_seconds"), 0);
  EXPECT_GE(Sample(after, "walfeed_source_lag_bytes"), 0);
  EXPECT_GT(Sample(after, "walfeed_log_bytes"), 0);
  EXPECT_EQ(Sample(after, "walfeed_errors_total{kind=\"call_cursor_malformed\"}"), 1) << after;
  // The streams above have ended (a stream is counted until gRPC is done with it).
  EXPECT_TRUE(WaitUntil(
      [&] {
        const std::string now = Scrape(port);
        return Sample(now, "walfeed_subscribers") == 0 &&
               Sample(now, "walfeed_slowest_subscriber_lag_bytes") == 0;
      },
      absl::Seconds(10), absl::Milliseconds(50)));
  EXPECT_THAT(after, ::testing::Not(HasSubstr("walfeed_last_resync"))) << "none happened";

  // A stream that stops reading after its first message: counted, and the slowest one's lag is
  // the WAL between it and the head. Its channel keeps HTTP/2's flow-control window at 64 KiB
  // (no BDP growth), so 16 MB of rows cannot all be taken in for it.
  grpc::ChannelArguments narrow;
  narrow.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  narrow.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 << 10);
  auto stalled_stub = v1::ChangeFeed::NewStub(
      grpc::CreateCustomChannel(walfeed_->address(), grpc::InsecureChannelCredentials(), narrow));
  // It starts at the last change (from_lsn is inclusive) and reads that one message before the
  // rows are written: its position is then before all of them. The lag is in WAL bytes, so the
  // rows come in eight transactions (a stream inside one transaction has no lag in bytes).
  grpc::ClientContext stalled_context;
  v1::SubscribeRequest from_here;
  from_here.set_from_lsn(read->back().lsn());
  auto stalled = stalled_stub->Subscribe(&stalled_context, from_here);
  ASSERT_TRUE(stalled->Read(&response));
  for (int batch = 0; batch < 8; ++batch) {
    Sql(absl::StrCat("INSERT INTO t SELECT 100 + g, repeat('s', 2000) FROM generate_series(",
                     batch * 1000 + 1, ", ", batch * 1000 + 1000, ") g"));
  }
  std::string during;
  EXPECT_TRUE(WaitUntil(
      [&] {
        during = Scrape(port);
        return Sample(during, "walfeed_subscribers") == 1 &&
               Sample(during, "walfeed_slowest_subscriber_lag_bytes") > (4 << 20);
      },
      absl::Seconds(30), absl::Milliseconds(100)))
      << during;
  stalled_context.TryCancel();
  stalled->Finish();
  EXPECT_TRUE(WaitUntil([&] { return Sample(Scrape(port), "walfeed_subscribers") == 0; },
                        absl::Seconds(30), absl::Milliseconds(100)));
}

TEST_F(Metrics, AResynchronisationAfterALostSlotIsCountedWithItsDifferences) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  Sql("INSERT INTO t VALUES (1), (2)");
  StartWalfeed();
  ASSERT_OK(CommitMarkerAndRead("in"));
  ASSERT_EQ(walfeed_->Terminate(), 0);
  Sql(absl::StrCat("SELECT pg_drop_replication_slot('", slot_, "')"));
  Sql("INSERT INTO t VALUES (3)");
  Sql("DELETE FROM t WHERE id = 1");
  const int port = FreePort();
  StartWalfeed({"--metrics-listen", absl::StrCat("127.0.0.1:", port)});
  const std::string metrics = Scrape(port);
  EXPECT_EQ(Sample(metrics, "walfeed_last_resync_changes{kind=\"insert\"}"), 1) << metrics;
  EXPECT_EQ(Sample(metrics, "walfeed_last_resync_changes{kind=\"delete\"}"), 1);
  EXPECT_EQ(Sample(metrics, "walfeed_last_resync_changes{kind=\"update\"}"), 0);
  EXPECT_GT(Sample(metrics, "walfeed_last_resync_timestamp_seconds"), 1.7e9);
  EXPECT_EQ(Sample(metrics, "walfeed_errors_total{kind=\"resync\"}"), 1);
}

TEST_F(Metrics, ABadOrTakenAddressIsRefusedAtStart) {
  RunResult bad = RunWalfeed([&] {
    std::vector<std::string> args = BaseArgs(SharedPostgres().Conninfo(db_));
    args.insert(args.end(), {"--metrics-listen", "nowhere"});
    return args;
  }());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("--metrics-listen='nowhere' is not host:port"));

  // A port something already listens on: walfeed's own gRPC port.
  StartWalfeed();
  std::vector<std::string> args = BaseArgs(SharedPostgres().Conninfo(db_));
  args[3] = dir_ + "/other";  // its own data directory
  args.insert(args.end(), {"--metrics-listen", walfeed_->address()});
  RunResult taken = RunWalfeed(args);
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_THAT(taken.output, HasSubstr("starting the metrics endpoint"));
}

}  // namespace
}  // namespace walfeed::test
