#include "server/feed/change_feed_service.h"

#include <atomic>
#include <limits>
#include <random>
#include <thread>

#include "absl/algorithm/container.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "server/feed/feed_server.h"
#include "tests/support/grpc_reason.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_log_test.h"
#include "tests/support/transactions.h"
#include "tests/support/wait.h"
#include "tests/support/walfeed_process.h"

namespace walfeed {
namespace {

using test::ErrorInfoOf;
using test::MakeTransaction;
using test::ReasonOf;
using ::testing::HasSubstr;

std::vector<std::string> Cursors(const std::vector<v1::Change>& changes) {
  std::vector<std::string> out;
  for (const v1::Change& change : changes) out.push_back(change.cursor());
  return out;
}

class ChangeFeedServiceTest : public test::TempLogTest {
 protected:
  void TearDown() override {
    if (compactor_) compactor_->Stop();
    if (server_) server_->Shutdown();
    server_.reset();
    TempLogTest::TearDown();
  }

  void StartServer(FeedOptions options = {}) {
    options.listen_address = "127.0.0.1:0";
    CompactionPolicy policy;
    policy.lag = absl::ZeroDuration();
    policy.delete_retention = absl::ZeroDuration();
    compactor_ = std::make_unique<Compactor>(log_.get(), policy, absl::InfiniteDuration());
    compactor_->Start();
    absl::StatusOr<std::unique_ptr<FeedServer>> server =
        FeedServer::Start(options, log_.get(), compactor_.get(), [] {
          SourceStatus status;
          status.database = "db";
          status.slot = "walfeed";
          status.publication = "walfeed";
          status.tables = {"public.a", "public.b", "public.t"};
          status.state = "streaming";
          return status;
        });
    ASSERT_OK(server);
    server_ = std::move(*server);
    stub_ = test::NewStub(absl::StrCat("127.0.0.1:", server_->port()));
    admin_ = v1::Admin::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                                    grpc::InsecureChannelCredentials()));
  }

  grpc::Status Compact(v1::CompactionResult* result, v1::CompactRequest request = {}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return admin_->Compact(&context, request, result);
  }

  // Appends transactions of `per_txn` changes at LSNs 100, 200, ...
  // Waits until `n` streams are open: each one's start is then fixed, so what is appended after
  // is theirs to deliver.
  void AwaitSubscribers(uint32_t n) {
    uint32_t open = 0;
    ASSERT_TRUE(test::WaitUntil(
        [&] {
          grpc::ClientContext context;
          v1::FeedInfo info;
          open = stub_->GetFeedInfo(&context, v1::GetFeedInfoRequest(), &info).ok()
                     ? info.subscribers()
                     : 0;
          return open == n;
        },
        absl::Seconds(10), absl::Milliseconds(5)))
        << open << " streams open, not " << n;
  }

  void AppendTransactions(int count, int per_txn, const std::string& table = "t") {
    for (int i = 0; i < count; ++i) {
      const uint64_t lsn = next_lsn_;
      next_lsn_ += 100;
      ASSERT_OK(log_->Append({MakeTransaction(lsn, per_txn, table)}, lsn + 50));
    }
  }

  std::vector<v1::Change> ReadToHead(v1::SubscribeRequest request = {}) {
    absl::StatusOr<std::vector<v1::Change>> changes = test::ReadToHead(*stub_, request);
    EXPECT_OK(changes);
    return changes.ok() ? *changes : std::vector<v1::Change>{};
  }

  grpc::Status SubscribeStatus(const v1::SubscribeRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto reader = stub_->Subscribe(&context, request);
    v1::SubscribeResponse response;
    while (reader->Read(&response)) {
    }
    return reader->Finish();
  }

  std::unique_ptr<Compactor> compactor_;
  std::unique_ptr<FeedServer> server_;
  std::unique_ptr<v1::ChangeFeed::Stub> stub_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  uint64_t next_lsn_ = 100;
};

TEST_F(ChangeFeedServiceTest, ReadsEveryChangeInOrderFromZeroAndStopsAtHead) {
  StartServer();
  AppendTransactions(30, 3);
  const std::vector<v1::Change> changes = ReadToHead();
  ASSERT_EQ(changes.size(), 90u);
  for (size_t i = 1; i < changes.size(); ++i) {
    EXPECT_LT((Position{changes[i - 1].lsn(), changes[i - 1].seq()}),
              (Position{changes[i].lsn(), changes[i].seq()}));
  }
  EXPECT_EQ(changes.front().cursor(), "0/64:0");
}

TEST_F(ChangeFeedServiceTest, StopAtHeadOnAnEmptyLogEndsAtOnce) {
  StartServer();
  EXPECT_TRUE(ReadToHead().empty());
}

TEST_F(ChangeFeedServiceTest, CursorResumesRightAfterTheChangeItNames) {
  StartServer();
  AppendTransactions(10, 4);
  const std::vector<v1::Change> all = ReadToHead();
  for (size_t k : {size_t{0}, size_t{3}, size_t{17}, all.size() - 1}) {
    v1::SubscribeRequest request;
    request.set_cursor(all[k].cursor());
    const std::vector<v1::Change> rest = ReadToHead(request);
    EXPECT_EQ(Cursors(rest), Cursors({all.begin() + k + 1, all.end()}))
        << "after " << all[k].cursor();
  }
}

TEST_F(ChangeFeedServiceTest, FromLsnIsInclusive) {
  StartServer();
  AppendTransactions(5, 2);
  v1::SubscribeRequest request;
  request.set_from_lsn(300);
  const std::vector<v1::Change> changes = ReadToHead(request);
  ASSERT_EQ(changes.size(), 6u);
  EXPECT_EQ(changes.front().lsn(), 300u);
  EXPECT_EQ(changes.front().seq(), 0u);
  request.set_from_lsn(301);
  EXPECT_EQ(ReadToHead(request).front().lsn(), 400u);
}

TEST_F(ChangeFeedServiceTest, BadRequestsGetAStatusWithASentence) {
  StartServer();
  v1::SubscribeRequest request;
  request.set_cursor("0/XYZ:1");
  grpc::Status status = SubscribeStatus(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("'0/XYZ:1' is malformed"));

  EXPECT_EQ(ReasonOf(status), "CURSOR_MALFORMED");

  request.set_cursor("0/10:1");
  request.set_from_lsn(5);
  status = SubscribeStatus(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(status), "START_CONFLICT");

  request.Clear();
  request.add_tables("public.missing");
  status = SubscribeStatus(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("public.missing"));
  EXPECT_EQ(ReasonOf(status), "TABLE_NOT_FOUND");
}

// Every reason the README promises a client can switch on arrives in the status's ErrorInfo.
TEST_F(ChangeFeedServiceTest, RefusalsCarryTheReasonsTheReadmeLists) {
  StartServer();
  AppendTransactions(2, 3);
  v1::SubscribeRequest request;
  request.set_where("id >");
  grpc::Status status = SubscribeStatus(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(status), "FILTER_INVALID");

  request.Clear();
  request.set_consumer("not a name");
  status = SubscribeStatus(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(status), "REQUEST_MALFORMED");
  {
    grpc::ClientContext context;
    v1::CommitRequest commit;
    commit.set_consumer("not a name");
    commit.set_cursor("0/64:0");
    v1::CommitResponse committed;
    status = stub_->Commit(&context, commit, &committed);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(ReasonOf(status), "REQUEST_MALFORMED");
  }
  {
    grpc::ClientContext context;
    v1::DeleteConsumerRequest remove;
    remove.set_consumer("nobody");
    v1::DeleteConsumerResponse removed;
    status = admin_->DeleteConsumer(&context, remove, &removed);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(ReasonOf(status), "CONSUMER_NOT_FOUND");
  }
  {
    // One stream per consumer name.
    grpc::ClientContext first_context;
    v1::SubscribeRequest named;
    named.set_consumer("billing");
    auto first = stub_->Subscribe(&first_context, named);
    v1::SubscribeResponse response;
    ASSERT_TRUE(first->Read(&response));
    status = SubscribeStatus(named);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(ReasonOf(status), "CONSUMER_BUSY");
    first_context.TryCancel();
    while (first->Read(&response)) {
    }
    (void)first->Finish();
  }
  // A stored change that cannot be decoded, met by a stream that must decode it (a row filter).
  const Position bad{next_lsn_, 0};
  ASSERT_OK(log_->AppendStored({}, {LogRecord{bad, std::string("\xff\xff\xff not a change")}},
                               /*commit=*/true, {}));
  request.Clear();
  request.set_where("id = 1");
  request.set_stop_at_head(true);
  status = SubscribeStatus(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(ReasonOf(status), "LOG_UNREADABLE");
  EXPECT_THAT(status.error_message(), HasSubstr(FormatCursor(bad)));
}

TEST_F(ChangeFeedServiceTest, LiveSubscriberSeesANewCommitPromptly) {
  StartServer();
  AppendTransactions(2, 1);
  grpc::ClientContext context;
  v1::SubscribeRequest request;
  request.set_from_head(true);
  auto reader = stub_->Subscribe(&context, request);
  AwaitSubscribers(1);
  const absl::Time committed = absl::Now();
  AppendTransactions(1, 2);
  v1::SubscribeResponse response;
  ASSERT_TRUE(reader->Read(&response));
  const absl::Duration latency = absl::Now() - committed;
  ASSERT_EQ(response.changes_size(), 2);
  EXPECT_EQ(response.changes(0).lsn(), 300u);
  EXPECT_EQ(response.cursor(), "0/12C:1");
  EXPECT_LT(latency, test::Bound(absl::Milliseconds(500)));
  context.TryCancel();
  reader->Finish();
}

TEST_F(ChangeFeedServiceTest, IdleSubscriberGetsProgressAtTheHead) {
  FeedOptions options;
  options.progress_interval = absl::Milliseconds(200);
  StartServer(options);
  AppendTransactions(3, 2);
  grpc::ClientContext context;
  auto reader = stub_->Subscribe(&context, v1::SubscribeRequest());
  v1::SubscribeResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.changes_size(), 6);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.changes_size(), 0) << "a progress message";
  EXPECT_EQ(response.cursor(), "0/12C:1");
  EXPECT_EQ(response.head_cursor(), "0/12C:1");
  context.TryCancel();
  reader->Finish();
}

TEST_F(ChangeFeedServiceTest, FilteredOutChangesStillAdvanceTheCursor) {
  FeedOptions options;
  options.progress_interval = absl::Milliseconds(200);
  StartServer(options);
  AppendTransactions(1, 1, "a");
  AppendTransactions(50, 3, "b");
  grpc::ClientContext context;
  v1::SubscribeRequest request;
  request.add_tables("a");
  auto reader = stub_->Subscribe(&context, request);
  v1::SubscribeResponse response;
  ASSERT_TRUE(reader->Read(&response));
  ASSERT_EQ(response.changes_size(), 1);
  EXPECT_EQ(response.changes(0).table(), "a");
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.changes_size(), 0);
  EXPECT_EQ(response.cursor(), FormatCursor(log_->Head())) << "resuming never re-scans table b";
  context.TryCancel();
  reader->Finish();
}

// Live subscribers filtered to tables wait for their tables only and skip the rest unread (see
// SubscriberHub): whatever the mix of tables in the transactions appended while they wait, each
// receives exactly its tables' changes, in order. Seeded; the progress interval is short so that
// ticks and skips interleave with the appends.
TEST_F(ChangeFeedServiceTest, LiveTableFilteredSubscribersGetExactlyTheirTablesWhileOthersWrite) {
  FeedOptions options;
  options.progress_interval = absl::Milliseconds(30);
  StartServer(options);
  AppendTransactions(1, 1, "a");
  const std::string start = FormatCursor(log_->Head());
  const std::vector<std::vector<std::string>> filters = {{"a"}, {"b"}, {"a", "t"}, {"t"}, {}};
  std::mt19937 random(20261203);
  std::vector<Transaction> appended;
  for (int i = 0; i < 300; ++i) {
    Transaction txn = MakeTransaction(next_lsn_, 1 + static_cast<int>(random() % 3), "a");
    next_lsn_ += 100;
    // Mostly table b (the busy one), now and then a or t, several tables in one transaction.
    for (v1::Change& change : txn.changes) {
      const uint32_t roll = random() % 10;
      change.set_table(roll < 7 ? "b" : roll < 9 ? "a" : "t");
    }
    appended.push_back(std::move(txn));
  }
  std::vector<std::vector<std::string>> expected(filters.size());
  for (const Transaction& txn : appended) {
    for (const v1::Change& change : txn.changes) {
      for (size_t f = 0; f < filters.size(); ++f) {
        if (filters[f].empty() || absl::c_linear_search(filters[f], change.table())) {
          expected[f].push_back(change.cursor());
        }
      }
    }
  }
  std::vector<std::vector<std::string>> received(filters.size());
  std::vector<std::thread> readers;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  for (size_t f = 0; f < filters.size(); ++f) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::SubscribeRequest request;
    request.set_cursor(start);
    for (const std::string& table : filters[f]) request.add_tables(table);
    readers.emplace_back([&, f, request] {
      auto reader = stub_->Subscribe(contexts[f].get(), request);
      v1::SubscribeResponse response;
      while (received[f].size() < expected[f].size() && reader->Read(&response)) {
        for (const v1::Change& change : response.changes()) received[f].push_back(change.cursor());
      }
      contexts[f]->TryCancel();
      reader->Finish();
    });
  }
  // A failed assertion below ends the readers rather than leaving them unjoined (an abort).
  absl::Cleanup end_readers = [&] {
    for (auto& context : contexts) context->TryCancel();
    for (std::thread& reader : readers) {
      if (reader.joinable()) reader.join();
    }
  };
  AwaitSubscribers(static_cast<uint32_t>(readers.size()));
  for (const Transaction& txn : appended) {
    ASSERT_OK(log_->Append({txn}, txn.commit_lsn + 50));
    if (random() % 4 == 0) absl::SleepFor(absl::Milliseconds(random() % 20));
  }
  for (std::thread& reader : readers) reader.join();
  for (size_t f = 0; f < filters.size(); ++f) {
    EXPECT_EQ(received[f], expected[f]) << "subscriber to " << absl::StrJoin(filters[f], ",");
  }
}

// Streams behind the head read their next batch while the last one is on the wire. Whatever
// the interleaving of reads ahead, completed writes and appends, every stream gets every change
// of its filter exactly once, in order: from 0 to the head and stopping there, following on past
// it while the log grows, filtered to one table, and with batches of a few changes (many
// hand-overs between the reading thread and gRPC's).
TEST_F(ChangeFeedServiceTest, StreamsReadingAheadGetEveryChangeOnceInOrderWhileTheLogGrows) {
  FeedOptions options;
  options.progress_interval = absl::Milliseconds(100);  // a stream waiting at the head looks again
  StartServer(options);
  std::vector<std::string> all;
  std::vector<std::string> of_a;
  const auto append = [&](int transactions) {
    for (int i = 0; i < transactions; ++i) {
      Transaction txn = MakeTransaction(next_lsn_, 5, i % 3 == 0 ? "a" : "b");
      next_lsn_ += 64 << 10;  // WAL's worth: streams more than a batch behind read ahead
      for (const v1::Change& change : txn.changes) {
        all.push_back(change.cursor());
        if (change.table() == "a") of_a.push_back(change.cursor());
      }
      ASSERT_OK(log_->Append({txn}, txn.commit_lsn + 50));
    }
  };
  append(600);
  const std::vector<std::string> before_growth = all;

  struct Stream {
    v1::SubscribeRequest request;
    std::vector<std::string> received;
    size_t expected = 0;
  };
  std::vector<Stream> streams(4);
  streams[0].request.set_stop_at_head(true);
  streams[0].request.set_max_batch_changes(7);
  streams[1].request.set_max_batch_changes(3);
  streams[2].request.add_tables("a");
  streams[2].request.set_max_batch_changes(2);
  streams[3].request.set_max_batch_changes(1000);
  std::vector<std::thread> readers;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::atomic<int> started{0};
  for (size_t i = 0; i < streams.size(); ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  }
  // The expected counts are known once the log stops growing; the readers read until then.
  absl::Mutex mu;
  bool growth_done = false;
  for (size_t i = 0; i < streams.size(); ++i) {
    readers.emplace_back([&, i] {
      Stream& stream = streams[i];
      auto reader = stub_->Subscribe(contexts[i].get(), stream.request);
      started.fetch_add(1);
      v1::SubscribeResponse response;
      while (reader->Read(&response)) {
        for (const v1::Change& change : response.changes()) {
          stream.received.push_back(change.cursor());
        }
        absl::MutexLock lock(&mu);
        if (growth_done && stream.received.size() >= stream.expected) break;
      }
      contexts[i]->TryCancel();
      reader->Finish();
    });
  }
  while (started.load() < static_cast<int>(streams.size())) absl::SleepFor(absl::Milliseconds(1));
  append(400);  // while the streams catch up
  {
    absl::MutexLock lock(&mu);
    streams[0].expected = std::numeric_limits<size_t>::max();  // ends by itself at its head
    streams[1].expected = all.size();
    streams[2].expected = of_a.size();
    streams[3].expected = all.size();
    growth_done = true;
  }
  for (std::thread& reader : readers) reader.join();
  // stop_at_head stops at the head of its start: a prefix of everything, at least what was
  // there before the growth.
  ASSERT_GE(streams[0].received.size(), before_growth.size());
  EXPECT_EQ(streams[0].received,
            std::vector<std::string>(all.begin(), all.begin() + streams[0].received.size()));
  EXPECT_EQ(streams[1].received, all);
  EXPECT_EQ(streams[2].received, of_a);
  EXPECT_EQ(streams[3].received, all);
}

TEST_F(ChangeFeedServiceTest, StopAtHeadWithFiltersEndsWithTheStopPointAsProgress) {
  StartServer();
  AppendTransactions(1, 1, "a");
  AppendTransactions(5, 3, "b");
  const std::string head = FormatCursor(log_->Head());
  for (const bool ops_filter : {false, true}) {
    grpc::ClientContext context;
    v1::SubscribeRequest request;
    request.set_stop_at_head(true);
    if (ops_filter) {
      request.add_ops(v1::Change::DELETE);  // matches nothing
    } else {
      request.add_tables("a");
    }
    auto reader = stub_->Subscribe(&context, request);
    std::vector<v1::SubscribeResponse> responses;
    v1::SubscribeResponse response;
    while (reader->Read(&response)) responses.push_back(response);
    ASSERT_OK(reader->Finish());
    ASSERT_FALSE(responses.empty());
    EXPECT_EQ(responses.back().changes_size(), 0) << "a last progress message";
    EXPECT_EQ(responses.back().cursor(), head) << "resuming never re-scans table b";
    int changes = 0;
    for (const v1::SubscribeResponse& r : responses) changes += r.changes_size();
    EXPECT_EQ(changes, ops_filter ? 0 : 1);
  }
  // Unfiltered, the last change is the stop point: no extra message.
  grpc::ClientContext context;
  v1::SubscribeRequest request;
  request.set_stop_at_head(true);
  auto reader = stub_->Subscribe(&context, request);
  v1::SubscribeResponse response;
  std::vector<v1::SubscribeResponse> responses;
  while (reader->Read(&response)) responses.push_back(response);
  ASSERT_OK(reader->Finish());
  ASSERT_FALSE(responses.empty());
  EXPECT_GT(responses.back().changes_size(), 0);
  EXPECT_EQ(responses.back().cursor(), head);
}

TEST_F(ChangeFeedServiceTest, EveryResponseNamesTheLogAndACursorOfAnotherLogIsRefused) {
  StartServer();
  AppendTransactions(2, 2);
  const std::string log_id = log_->LogId();
  grpc::ClientContext info_context;
  v1::FeedInfo info;
  ASSERT_OK(stub_->GetFeedInfo(&info_context, v1::GetFeedInfoRequest(), &info));
  EXPECT_EQ(info.log_id(), log_id);

  v1::SubscribeRequest request;
  request.set_stop_at_head(true);
  request.set_max_batch_changes(1);
  std::string last_cursor;
  {
    grpc::ClientContext context;
    auto reader = stub_->Subscribe(&context, request);
    v1::SubscribeResponse response;
    int responses = 0;
    while (reader->Read(&response)) {
      ++responses;
      EXPECT_EQ(response.log_id(), log_id);
      if (response.changes_size() > 0) last_cursor = response.cursor();
    }
    ASSERT_OK(reader->Finish());
    EXPECT_GE(responses, 4);
  }

  request.set_cursor(last_cursor);
  request.set_log_id(log_id);
  {
    grpc::ClientContext context;
    auto reader = stub_->Subscribe(&context, request);
    v1::SubscribeResponse response;
    while (reader->Read(&response)) {
    }
    EXPECT_TRUE(reader->Finish().ok()) << "its own log's id";
  }
  request.set_log_id("0b8a5c1e-0000-4000-8000-000000000000");
  grpc::ClientContext context;
  auto reader = stub_->Subscribe(&context, request);
  v1::SubscribeResponse response;
  EXPECT_FALSE(reader->Read(&response));
  const grpc::Status refused = reader->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("another log"));
  const google::rpc::ErrorInfo error = ErrorInfoOf(refused);
  EXPECT_EQ(error.reason(), "LOG_MISMATCH");
  EXPECT_EQ(error.metadata().at("log_id"), log_id);
  EXPECT_EQ(error.metadata().at("requested_log_id"), request.log_id());
}

TEST_F(ChangeFeedServiceTest, BatchesAreCutByBytesWellUnderTheDefaultMessageLimit) {
  StartServer();
  for (int i = 0; i < 4; ++i) {
    const uint64_t lsn = next_lsn_;
    next_lsn_ += 100;
    ASSERT_TRUE(
        log_->Append({MakeTransaction(lsn, 10, "t", v1::Change::INSERT, 0, 200 << 10)}, lsn + 1)
            .ok());
  }
  grpc::ClientContext context;
  v1::SubscribeRequest request;
  request.set_stop_at_head(true);
  auto reader = stub_->Subscribe(&context, request);
  v1::SubscribeResponse response;
  int changes = 0;
  std::vector<size_t> sizes;
  while (reader->Read(&response)) {
    // The README's promise: batches are cut at about 1 MiB (the bound, plus the message's framing).
    EXPECT_LE(response.ByteSizeLong(), (size_t{1} << 20) + (64 << 10));
    changes += response.changes_size();
    if (response.changes_size() > 0) sizes.push_back(response.ByteSizeLong());
  }
  EXPECT_OK(reader->Finish());
  EXPECT_EQ(changes, 40);
  // Cut by bytes, not much earlier: five 200 KiB changes fit in a message, six do not.
  EXPECT_EQ(sizes.size(), 8u);
  for (size_t i = 0; i + 1 < sizes.size(); ++i) EXPECT_GE(sizes[i], size_t{5} * (200 << 10));
}

TEST_F(ChangeFeedServiceTest, ConcurrentSubscribersSeeIdenticalSequences) {
  StartServer();
  AppendTransactions(5, 2);
  constexpr int kSubscribers = 20;
  constexpr size_t kExpected = 5 * 2 + 40 * 3;
  std::vector<std::vector<std::string>> seen(kSubscribers);
  std::vector<std::thread> readers;
  for (int i = 0; i < kSubscribers; ++i) {
    readers.emplace_back([this, i, &seen] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      auto reader = stub_->Subscribe(&context, v1::SubscribeRequest());
      v1::SubscribeResponse response;
      while (seen[i].size() < kExpected && reader->Read(&response)) {
        for (const v1::Change& change : response.changes()) seen[i].push_back(change.cursor());
      }
      context.TryCancel();
      reader->Finish();
    });
  }
  AppendTransactions(40, 3);
  for (std::thread& reader : readers) reader.join();
  for (int i = 0; i < kSubscribers; ++i) {
    ASSERT_EQ(seen[i].size(), kExpected) << "subscriber " << i;
    EXPECT_EQ(seen[i], seen[0]);
  }
}

TEST_F(ChangeFeedServiceTest, FeedInfoDescribesTheLogAndCountsSubscribers) {
  StartServer();
  AppendTransactions(3, 2);
  grpc::ClientContext stream_context;
  v1::SubscribeRequest request;
  request.set_from_head(true);
  auto reader = stub_->Subscribe(&stream_context, request);
  AwaitSubscribers(1);

  grpc::ClientContext context;
  v1::FeedInfo info;
  ASSERT_OK(stub_->GetFeedInfo(&context, v1::GetFeedInfoRequest(), &info));
  EXPECT_EQ(info.oldest_cursor(), "0/64:0");
  EXPECT_EQ(info.newest_cursor(), "0/12C:1");
  EXPECT_EQ(info.newest_lsn(), 300u);
  EXPECT_EQ(info.slot(), "walfeed");
  EXPECT_EQ(info.subscribers(), 1u);
  EXPECT_THAT(info.tables(), ::testing::ElementsAre("public.a", "public.b", "public.t"));

  stream_context.TryCancel();
  reader->Finish();
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  uint32_t subscribers = 1;
  while (subscribers != 0 && absl::Now() < deadline) {
    grpc::ClientContext again;
    ASSERT_OK(stub_->GetFeedInfo(&again, v1::GetFeedInfoRequest(), &info));
    subscribers = info.subscribers();
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(subscribers, 0u) << "a cancelled subscriber is released";
}

TEST_F(ChangeFeedServiceTest, CompactCallRemovesSupersededChangesAndReportsCounts) {
  StartServer();
  for (int i = 0; i < 20; ++i) AppendTransactions(1, 5);  // ids 0..4, twenty times over
  v1::CompactionResult result;
  const grpc::Status status = Compact(&result);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(result.changes_examined(), 100u);
  EXPECT_EQ(result.superseded_removed(), 95u);
  EXPECT_EQ(result.live_keys(), 5u);
  const std::vector<v1::Change> changes = ReadToHead();
  ASSERT_EQ(changes.size(), 5u);
  EXPECT_EQ(changes.front().lsn(), next_lsn_ - 100);

  grpc::ClientContext context;
  v1::FeedInfo info;
  ASSERT_OK(stub_->GetFeedInfo(&context, v1::GetFeedInfoRequest(), &info));
  EXPECT_EQ(info.live_keys(), 5u);
  EXPECT_EQ(info.last_compaction().superseded_removed(), 95u);
  EXPECT_GT(info.log_bytes(), 0u);
  EXPECT_EQ(info.oldest_cursor(), changes.front().cursor());
}

TEST_F(ChangeFeedServiceTest, CompactRejectsNegativeDurations) {
  StartServer();
  v1::CompactRequest request;
  request.mutable_compaction_lag()->set_seconds(-5);
  v1::CompactionResult result;
  const grpc::Status status = Compact(&result, request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("compaction_lag"));
}

TEST_F(ChangeFeedServiceTest, CursorOlderThanAPurgedTombstoneIsOutOfRange) {
  StartServer();
  AppendTransactions(1, 3);  // ids 0, 1, 2
  const std::vector<v1::Change> before_delete = ReadToHead();
  ASSERT_TRUE(log_->Append({MakeTransaction(next_lsn_, 1, "t", v1::Change::DELETE, 1)},
                           next_lsn_ + 50)
                  .ok());  // delete id 1
  next_lsn_ += 100;
  v1::CompactionResult result;
  ASSERT_OK(Compact(&result));
  ASSERT_EQ(result.tombstones_purged(), 1u);
  ASSERT_FALSE(result.purge_cursor().empty());

  v1::SubscribeRequest request;
  request.set_cursor(before_delete.back().cursor());
  const grpc::Status status = SubscribeStatus(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(status.error_message(), HasSubstr("from_lsn=0"));
  EXPECT_EQ(ReasonOf(status), "CURSOR_PURGED");

  // From 0 a consumer rebuilds the state without the deleted row; from the purge point on,
  // resuming is fine.
  const std::vector<v1::Change> rebuilt = ReadToHead();
  ASSERT_EQ(rebuilt.size(), 2u);
  EXPECT_EQ(rebuilt[0].key(0).int_(), 0);
  EXPECT_EQ(rebuilt[1].key(0).int_(), 2);
  request.set_cursor(result.purge_cursor());
  EXPECT_TRUE(ReadToHead(request).empty());
}

TEST_F(ChangeFeedServiceTest, StreamBehindAPurgeEndsWithOutOfRangeInsteadOfMissingADelete) {
  StartServer();
  AppendTransactions(1, 20000);  // far more than gRPC's flow-control window lets through unread
  // A fixed, small window (no BDP probing, which would grow it while the client is idle).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  auto stalled_stub = v1::ChangeFeed::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::SubscribeRequest request;
  request.set_from_lsn(1);  // a resuming consumer: it holds state
  request.set_max_batch_changes(1);
  auto reader = stalled_stub->Subscribe(&context, request);
  v1::SubscribeResponse response;
  ASSERT_TRUE(reader->Read(&response));

  // While the consumer is stalled, row 19990 is deleted and its tombstone purged.
  ASSERT_TRUE(
      log_->Append({MakeTransaction(next_lsn_, 1, "t", v1::Change::DELETE, 19990)}, next_lsn_ + 50)
          .ok());
  v1::CompactionResult result;
  ASSERT_OK(Compact(&result));
  ASSERT_EQ(result.tombstones_purged(), 1u);

  size_t received = 0;
  bool saw_deleted_row = false;
  while (reader->Read(&response)) {
    for (const v1::Change& change : response.changes()) {
      ++received;
      saw_deleted_row = saw_deleted_row || change.key(0).int_() == 19990;
    }
  }
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE) << status.error_message();
  EXPECT_LT(received, 20000u);
  EXPECT_FALSE(saw_deleted_row);
}

// The batch after a stall reads across the purge point: every change before the purged delete
// was superseded and removed, so the read lands past it at once. The consumer received updates
// of the row, so without the delete its state is wrong; it must be told (OUT_OF_RANGE). Checked
// for a filtered stream and for an unfiltered one (which reads through the shared batches).
TEST_F(ChangeFeedServiceTest, BatchReadingAcrossThePurgePointStillEndsWithOutOfRange) {
  StartServer();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  auto stalled_stub = v1::ChangeFeed::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials(), args));
  int64_t row = 5;
  for (const bool filtered : {true, false}) {
    SCOPED_TRACE(filtered ? "filtered" : "unfiltered (shared batches)");
    // The consumer resumes from the head: it holds state.
    const std::string resume_cursor = FormatCursor(log_->Head());
    // 20,000 updates of one row: more than the flow-control window lets through unread.
    Transaction updates = MakeTransaction(next_lsn_, 20000, "t", v1::Change::UPDATE);
    for (v1::Change& change : updates.changes) {
      change.mutable_key(0)->set_int_(row);
      change.mutable_after(0)->set_int_(row);
    }
    ASSERT_OK(log_->Append({updates}, next_lsn_ + 50));
    next_lsn_ += 100;

    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::SubscribeRequest request;
    request.set_cursor(resume_cursor);
    request.set_max_batch_changes(100);
    if (filtered) request.add_tables("t");
    auto reader = stalled_stub->Subscribe(&context, request);
    v1::SubscribeResponse response;
    ASSERT_TRUE(reader->Read(&response));
    ASSERT_GT(response.changes_size(), 0);

    // While it stalls: the row is deleted, another row written, the tombstone purged.
    ASSERT_TRUE(
        log_->Append({MakeTransaction(next_lsn_, 1, "t", v1::Change::DELETE, row)}, next_lsn_ + 50)
            .ok());
    next_lsn_ += 100;
    AppendTransactions(1, 1);
    v1::CompactionResult result;
    ASSERT_OK(Compact(&result));
    ASSERT_EQ(result.tombstones_purged(), 1u);

    bool saw_delete = false;
    while (reader->Read(&response)) {
      for (const v1::Change& change : response.changes()) {
        saw_delete = saw_delete || change.op() == v1::Change::DELETE;
      }
    }
    const grpc::Status status = reader->Finish();
    if (!saw_delete) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE)
          << "the consumer missed the purged delete silently: " << status.error_message();
    }
    ++row;
  }
}

TEST_F(ChangeFeedServiceTest, ShutdownEndsOpenStreamsWithUnavailable) {
  StartServer();
  AppendTransactions(1, 1);
  grpc::ClientContext context;
  auto reader = stub_->Subscribe(&context, v1::SubscribeRequest());
  v1::SubscribeResponse response;
  ASSERT_TRUE(reader->Read(&response));
  std::thread stopper([this] { server_->Shutdown(); });
  while (reader->Read(&response)) {
  }
  grpc::Status status = reader->Finish();
  stopper.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("resume from your last cursor"));
  EXPECT_EQ(ReasonOf(status), "SHUTTING_DOWN");
}

}  // namespace
}  // namespace walfeed
