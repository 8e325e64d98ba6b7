// Named consumers (SubscribeRequest.consumer, ChangeFeed.Commit, Admin.ResetConsumer and
// DeleteConsumer) against a real walfeed and PostgreSQL: the server keeps each consumer's cursor
// across walfeed restarts, commits only move it forward, one stream per name, compaction's promise
// holds, and gRPC, walfeedctl and buf curl all use them.
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/buf_curl.h"
#include "tests/support/change_helpers.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

class Consumers : public WalfeedTest {
 protected:
  void SetUp() override {
    WalfeedTest::SetUp();
    Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    StartWalfeed();
  }

  // Inserts rows `from` to `to` in one transaction and waits until the log holds them.
  void Insert(int from, int to) {
    Sql(absl::StrCat("INSERT INTO t SELECT g, 'v' FROM generate_series(", from, ", ", to, ") g"));
    const std::string marker = absl::StrCat("inserted-", ++inserts_);
    Sql(MarkerSql(marker));
    v1::SubscribeRequest request;
    request.add_ops(v1::Change::MESSAGE);
    ASSERT_OK(ReadUntilMarker(*walfeed_->NewStub(), request, marker));
  }
  int inserts_ = 0;

  // Reads as consumer `name` up to the head (one transaction per row, so the ids say it all).
  absl::StatusOr<std::vector<v1::Change>> ReadAs(const std::string& name,
                                                 v1::SubscribeRequest request = {}) {
    request.set_consumer(name);
    request.set_stop_at_head(true);
    return ReadToHead(*walfeed_->NewStub(), request);
  }

  grpc::Status Commit(const std::string& name, const std::string& cursor,
                      v1::CommitResponse* response, const std::string& log_id = "") {
    v1::CommitRequest request;
    request.set_consumer(name);
    request.set_cursor(cursor);
    request.set_log_id(log_id);
    grpc::ClientContext context;
    return walfeed_->NewStub()->Commit(&context, request, response);
  }

  // Rows 1-3; consumer "slow" commits after row 1; then row 2 is deleted (a tombstone past it).
  void CommitFirstRowThenDeleteAnother() {
    Insert(1, 3);
    absl::StatusOr<std::vector<v1::Change>> first = ReadAs("slow");
    ASSERT_OK(first);
    ASSERT_FALSE(first->empty());
    v1::CommitResponse response;
    ASSERT_OK(Commit("slow", (*first)[0].cursor(), &response));
    Sql("DELETE FROM t WHERE id = 2");
  }

  RunResult Walfeedctl(std::vector<std::string> args) {
    args.insert(args.begin(), WalfeedctlBinary());
    args.insert(args.end(), {"--server", walfeed_->address()});
    return RunCommand(args, absl::Seconds(60));
  }
};

TEST_F(Consumers, AConsumerResumesAfterItsCommittedCursorAcrossARestart) {
  for (int id = 1; id <= 10; ++id) Insert(id, id);
  v1::SubscribeRequest rows;
  rows.add_ops(v1::Change::INSERT);  // the markers between the rows left out
  absl::StatusOr<std::vector<v1::Change>> first = ReadAs("billing", rows);
  ASSERT_OK(first);
  ASSERT_EQ(KeyIds(*first), IdRange(1, 10)) << "nothing stored yet: from the oldest change";

  v1::CommitResponse response;
  ASSERT_OK(Commit("billing", (*first)[4].cursor(), &response));
  EXPECT_TRUE(response.moved());
  EXPECT_EQ(response.cursor(), (*first)[4].cursor());
  // Backward is ignored: the stored cursor stays.
  ASSERT_OK(Commit("billing", (*first)[2].cursor(), &response));
  EXPECT_FALSE(response.moved());
  EXPECT_EQ(response.cursor(), (*first)[4].cursor());

  Insert(11, 12);
  v1::SubscribeRequest from_head;  // ignored once a cursor is stored
  from_head.set_from_head(true);
  absl::StatusOr<std::vector<v1::Change>> resumed = ReadAs("billing", from_head);
  ASSERT_OK(resumed);
  EXPECT_EQ(KeyIds(*resumed), IdRange(6, 12));

  const v1::FeedInfo info = FeedInfo();
  ASSERT_EQ(info.consumers_size(), 1);
  EXPECT_EQ(info.consumers(0).name(), "billing");
  EXPECT_EQ(info.consumers(0).cursor(), (*first)[4].cursor());
  EXPECT_GT(info.consumers(0).lag_wal_bytes(), 0u);
  EXPECT_FALSE(info.consumers(0).streaming());

  // Durable: a walfeed killed and started again has it, and its metrics show the lag.
  walfeed_->Kill();
  const int metrics_port = FreePort();
  StartWalfeed({"--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port)});
  EXPECT_EQ(Sample(Scrape(metrics_port), "walfeed_consumer_lag_bytes{consumer=\"billing\"}"),
            static_cast<double>(FeedInfo().consumers(0).lag_wal_bytes()));
  absl::StatusOr<std::vector<v1::Change>> after_restart = ReadAs("billing");
  ASSERT_OK(after_restart);
  EXPECT_EQ(KeyIds(*after_restart), IdRange(6, 12));
  // Another name knows nothing of it.
  absl::StatusOr<std::vector<v1::Change>> other = ReadAs("audit");
  ASSERT_OK(other);
  EXPECT_EQ(KeyIds(*other), IdRange(1, 12));
}

TEST_F(Consumers, OneStreamPerNameAtATime) {
  Insert(1, 3);
  auto stub = walfeed_->NewStub();
  grpc::ClientContext live_context;
  v1::SubscribeRequest live_request;
  live_request.set_consumer("worker");
  auto live = stub->Subscribe(&live_context, live_request);
  v1::SubscribeResponse message;
  ASSERT_TRUE(live->Read(&message)) << "the first stream is open";

  absl::StatusOr<std::vector<v1::Change>> second = ReadAs("worker");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("is streaming on another call"));
  EXPECT_TRUE(FeedInfo().consumers(0).streaming());

  live_context.TryCancel();
  while (live->Read(&message)) {
  }
  live->Finish();
  // Once the first stream has ended, the name is free again.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  absl::StatusOr<std::vector<v1::Change>> third = ReadAs("worker");
  while (!third.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    third = ReadAs("worker");
  }
  ASSERT_OK(third);
  EXPECT_EQ(KeyIds(*third), IdRange(1, 3));
}

TEST_F(Consumers, BadNamesAndCursorsAreClearErrorsAndStoreNothing) {
  Insert(1, 2);
  v1::CommitResponse response;
  grpc::Status status = Commit("no spaces!", "0/1:0", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("letters, digits"));
  status = Commit("ok", "not a cursor", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  status = Commit("ok", "FF/0:0", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("past the log's head"));
  status = Commit("ok", "0/1:0", &response, "another-log");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(FeedInfo().consumers_size(), 0) << "nothing was stored";
  absl::StatusOr<std::vector<v1::Change>> bad = ReadAs(std::string(200, 'x'));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

// Compaction's promise holds for a named consumer as for any cursor: behind the purge point it
// is told to start again (OUT_OF_RANGE), never handed a state that misses a delete.
TEST_F(Consumers, AConsumerBehindThePurgePointIsToldToStartAgain) {
  StartWalfeed(
      {"--compaction-lag", "0s", "--delete-retention", "0s", "--compaction-interval", "off"});
  CommitFirstRowThenDeleteAnother();
  Sql(MarkerSql("deleted"));
  ASSERT_OK(ReadUntilMarker(*walfeed_->NewStub(), {}, "deleted"));
  const RunResult compact = Walfeedctl({"compact"});
  ASSERT_EQ(compact.exit_code, 0) << compact.output;
  absl::StatusOr<std::vector<v1::Change>> behind = ReadAs("slow");
  ASSERT_FALSE(behind.ok());
  EXPECT_EQ(behind.status().code(), absl::StatusCode::kOutOfRange) << behind.status();
}

// With --keep-for-consumers, compaction removes nothing a named consumer has not committed: the
// slow consumer reads on with the delete it has not seen yet; once it commits past it, the
// tombstone goes.
TEST_F(Consumers, KeepForConsumersHoldsWhatAConsumerHasNotCommitted) {
  StartWalfeed({"--compaction-lag", "0s", "--delete-retention", "0s", "--compaction-interval",
                "off", "--keep-for-consumers", "true"});
  CommitFirstRowThenDeleteAnother();
  Insert(4, 4);
  RunResult compact = Walfeedctl({"compact"});
  ASSERT_EQ(compact.exit_code, 0) << compact.output;
  EXPECT_THAT(compact.output, ::testing::Not(HasSubstr("tombstonesPurged")))  // 0 is left out
      << compact.output;
  absl::StatusOr<std::vector<v1::Change>> rest = ReadAs("slow");
  ASSERT_OK(rest) << "nothing it still needs was removed";
  bool saw_delete = false;
  for (const v1::Change& change : *rest) saw_delete |= change.op() == v1::Change::DELETE;
  EXPECT_TRUE(saw_delete);

  v1::CommitResponse response;
  ASSERT_OK(Commit("slow", rest->back().cursor(), &response));
  compact = Walfeedctl({"compact"});
  ASSERT_EQ(compact.exit_code, 0) << compact.output;
  EXPECT_THAT(compact.output, HasSubstr(R"("tombstonesPurged": "1")")) << compact.output;
}

TEST_F(Consumers, WalfeedctlSubscribesCommitsListsResetsAndDeletes) {
  Insert(1, 3);
  RunResult run =
      Walfeedctl({"subscribe", "--consumer", "cli", "--stop-at-head", "--op", "INSERT"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(run.output, '\n', absl::SkipEmpty())).size(),
            3u)
      << run.output;
  Insert(4, 4);
  run = Walfeedctl({"subscribe", "--consumer", "cli", "--stop-at-head", "--op", "INSERT"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr(R"("int":"4")"));
  EXPECT_THAT(run.output, ::testing::Not(HasSubstr(R"("int":"3")"))) << "committed as printed";

  RunResult list = Walfeedctl({"consumers", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_THAT(list.output, HasSubstr(R"("name":"cli")"));

  RunResult reset = Walfeedctl({"consumers", "reset", "cli", "--to-start"});
  ASSERT_EQ(reset.exit_code, 0) << reset.output;
  run = Walfeedctl({"subscribe", "--consumer", "cli", "--stop-at-head", "--op", "INSERT"});
  EXPECT_THAT(run.output, HasSubstr(R"("int":"1")")) << "read again from the start";

  ASSERT_EQ(Walfeedctl({"consumers", "delete", "cli"}).exit_code, 0);
  RunResult again = Walfeedctl({"consumers", "delete", "cli"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.output, HasSubstr("no consumer 'cli'"));
  EXPECT_EQ(Walfeedctl({"consumers", "reset", "cli"}).exit_code, 2) << "needs a target";
}

TEST_F(Consumers, BufCurlCommitsAndReadsAsAConsumer) {
  Insert(1, 2);
  const auto buf = [&](const std::string& method, const std::string& body) {
    return test::BufCurl(walfeed_->address(), method, body);
  };
  absl::StatusOr<std::vector<v1::Change>> all = ReadAs("probe");
  ASSERT_OK(all);
  ASSERT_FALSE(all->empty());
  RunResult commit =
      buf("walfeed.v1.ChangeFeed/Commit",
          absl::StrCat(R"({"consumer":"buf","cursor":")", (*all)[0].cursor(), "\"}"));
  ASSERT_EQ(commit.exit_code, 0) << commit.output;
  EXPECT_THAT(commit.output, HasSubstr(R"("moved": true)"));
  RunResult read =
      buf("walfeed.v1.ChangeFeed/Subscribe", R"({"consumer":"buf","stopAtHead":true})");
  ASSERT_EQ(read.exit_code, 0) << read.output;
  EXPECT_THAT(read.output, HasSubstr(R"("int": "2")"));
  EXPECT_THAT(read.output, ::testing::Not(HasSubstr(R"("int": "1")")));
}

}  // namespace
}  // namespace walfeed::test
