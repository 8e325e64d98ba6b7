// The log replicated into NATS JetStream (--replicate-to), against a real 3-node JetStream cluster
// on loopback: whatever crashes (the stream's leader, a follower, the whole cluster for 30 s,
// walfeed itself at ten points), the stream read from its start with the NATS C client - not
// walfeed - is exactly the gRPC feed: the same changes, byte for byte, same cursors, same order,
// none missing, none twice. Under --confirm-after=replicated PostgreSQL is never told a change is
// safe before JetStream has it; a second walfeed on the same stream is fenced; compaction never
// removes what is not replicated yet.
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/subscriber.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/nats_test.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/steady_writer.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/nats_cluster.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"
#include "tests/support/wait.h"
#include "tests/support/walfeed_process.h"

namespace walfeed::test {
namespace {

using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

// The stream as a consumer reads it: its changes in order, the values sent out of line (by ref),
// and the log ids it names.
struct StreamContent {
  std::vector<v1::Change> changes;
  std::map<std::string, std::string> values;
  std::set<std::string> log_ids;
  size_t messages = 0;
  // Messages by their Walfeed-Compression header ("" for none).
  std::map<std::string, size_t> compressions;
};

// Reads `stream` from its first message and checks that each message continues the one before
// it (Walfeed-Start = the previous Walfeed-Next; the first starts at 0/0:0).
StreamContent ReadStream(const NatsCluster& nats, const std::string& stream) {
  StreamContent content;
  absl::StatusOr<std::vector<StreamMessage>> messages = nats.ReadStream(stream);
  EXPECT_OK(messages);
  if (!messages.ok()) return content;
  std::string expected_start = "0/0:0";
  for (const StreamMessage& message : *messages) {
    const auto header = [&message](const std::string& name) {
      auto it = message.headers.find(name);
      return it == message.headers.end() ? std::string() : it->second;
    };
    EXPECT_EQ(header("Walfeed-Start"), expected_start) << "message " << message.sequence;
    expected_start = header("Walfeed-Next");
    EXPECT_EQ(header("Walfeed-Log-Id"), message.segment.log_id());
    EXPECT_EQ(header("Walfeed-First-Cursor"), message.segment.first_cursor());
    EXPECT_EQ(header("Walfeed-Last-Cursor"), message.segment.last_cursor());
    EXPECT_EQ(header("Nats-Msg-Id"),
              absl::StrCat(message.segment.log_id(), "@", header("Walfeed-Start"), "..",
                           header("Walfeed-Next"), "#", header("Walfeed-Writer")));
    EXPECT_FALSE(header("Walfeed-Writer").empty());
    ++content.compressions[header("Walfeed-Compression")];
    content.log_ids.insert(message.segment.log_id());
    for (const v1::LargeValueChunk& chunk : message.segment.values()) {
      std::string& value = content.values[chunk.ref()];
      if (chunk.offset() == 0) value.clear();
      EXPECT_EQ(chunk.offset(), value.size()) << chunk.ref();
      value += chunk.data();
    }
    for (const v1::Change& change : message.segment.changes()) content.changes.push_back(change);
  }
  content.messages = messages->size();
  return content;
}

class Replication : public WalfeedNatsTest {
 protected:
  std::vector<std::string> ReplicationArgs(const std::string& confirm_after) const {
    return {"--replicate-to",  nats_->urls(), "--replication-stream",        stream_,
            "--confirm-after", confirm_after, "--replication-segment-bytes", "64KiB"};
  }

  // Waits until JetStream has everything the log holds.
  void WaitForReplication(absl::Duration timeout = absl::Seconds(300)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      const v1::FeedInfo info = FeedInfo();
      if (info.replication().state() == "caught_up" &&
          info.replication().replicated_cursor() == info.newest_cursor()) {
        return;
      }
      ASSERT_LT(absl::Now(), deadline)
          << "replication never caught up: " << info.replication().ShortDebugString() << "\n"
          << walfeed_->Log();
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

  // The whole feed as a walfeed stores it (values out of line stay references).
  std::vector<v1::Change> RawFeed() { return RawFeed(*walfeed_); }
  static std::vector<v1::Change> RawFeed(const WalfeedProcess& process) {
    std::vector<v1::Change> changes;
    auto stub = process.NewStub();
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(300)));
    v1::SubscribeRequest request;
    request.set_stop_at_head(true);
    auto reader = stub->Subscribe(&context, request);
    v1::SubscribeResponse response;
    while (reader->Read(&response)) {
      for (const v1::Change& change : response.changes()) changes.push_back(change);
    }
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return changes;
  }

  // The stream, read with the NATS client, is exactly the gRPC feed, and every value sent out of
  // line arrives whole.
  void ExpectStreamIsTheFeed() {
    const StreamContent stream = ReadStream(*nats_, stream_);
    const std::vector<v1::Change> feed = RawFeed();
    ASSERT_EQ(stream.log_ids, std::set<std::string>{FeedInfo().log_id()});
    ASSERT_EQ(stream.changes.size(), feed.size()) << "changes in the stream vs the feed";
    for (size_t i = 0; i < feed.size(); ++i) {
      ASSERT_EQ(stream.changes[i].SerializeAsString(), feed[i].SerializeAsString())
          << "change " << i << ": stream " << stream.changes[i].cursor() << " feed "
          << feed[i].cursor();
    }
    absl::StatusOr<std::vector<v1::Change>> inlined =
        ReadToHead(*walfeed_->NewStub(), v1::SubscribeRequest());
    ASSERT_OK(inlined);
    ASSERT_EQ(inlined->size(), feed.size());
    size_t large = 0;
    for (size_t i = 0; i < feed.size(); ++i) {
      for (int c = 0; c < feed[i].after_size(); ++c) {
        if (feed[i].after(c).value_case() != v1::Column::kLarge) continue;
        ++large;
        const std::string& ref = feed[i].after(c).large().ref();
        ASSERT_TRUE(stream.values.count(ref)) << "no chunks of " << ref;
        EXPECT_EQ(stream.values.at(ref), (*inlined)[i].after(c).text()) << ref;
      }
    }
    large_values_seen_ = large;
    compressions_seen_ = stream.compressions;
  }

  // `replica` serves exactly the feed of the walfeed under test, byte for byte, and the values
  // of table big's `large_rows` rows (2.8 MB each) arrive whole from it.
  void ExpectReplicaServesTheFeed(const WalfeedProcess& replica, size_t large_rows) {
    const std::vector<v1::Change> expected = RawFeed();
    const std::vector<v1::Change> copied = RawFeed(replica);
    ASSERT_EQ(copied.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(copied[i].SerializeAsString(), expected[i].SerializeAsString())
          << "change " << i << ": replica " << copied[i].cursor() << " primary "
          << expected[i].cursor();
    }
    absl::StatusOr<std::vector<v1::Change>> inlined =
        ReadToHead(*replica.NewStub(), v1::SubscribeRequest());
    ASSERT_OK(inlined);
    size_t large = 0;
    for (const v1::Change& change : *inlined) {
      if (change.table() != "big") continue;
      ++large;
      ASSERT_EQ(change.after(1).text().size(), 14u * 200000) << change.cursor();
    }
    EXPECT_EQ(large, large_rows);
  }

  size_t large_values_seen_ = 0;
  std::map<std::string, size_t> compressions_seen_;
};

TEST_F(Replication, StreamIsExactlyTheFeedThroughNodeLeaderClusterAndWalfeedCrashes) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("CREATE TABLE big (id int PRIMARY KEY, doc text)");
  Sql("INSERT INTO t SELECT g, 'existing' FROM generate_series(1, 500) g");
  const std::vector<std::string> args = ReplicationArgs("replicated");
  StartWalfeed(args);
  SteadyWriter writer(db_, 1000);
  absl::SleepFor(absl::Seconds(2));

  // The stream's leader dies; a new one is elected (4 to 9 s); the old one comes back.
  absl::StatusOr<int> leader = nats_->Leader(stream_);
  ASSERT_OK(leader);
  ASSERT_OK(nats_->Kill(*leader));
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<int> now = nats_->Leader(stream_);
        return now.ok() && *now != *leader;
      },
      absl::Seconds(30), absl::Milliseconds(500)))
      << "no new leader was elected";
  ASSERT_OK(nats_->StartNode(*leader));
  absl::SleepFor(absl::Seconds(2));

  // A follower dies and comes back.
  leader = nats_->Leader(stream_);
  ASSERT_OK(leader);
  const int follower = *leader % 3 + 1;
  ASSERT_OK(nats_->Kill(follower));
  absl::SleepFor(absl::Seconds(3));
  ASSERT_OK(nats_->StartNode(follower));

  // The whole cluster is down: walfeed says replication is failing, and the outage goes on for
  // a while after that with the writes continuing.
  ASSERT_OK(nats_->StopAll());
  EXPECT_TRUE(
      WaitUntil([&] { return FeedInfo().replication().state() == "failing"; }, absl::Seconds(30)))
      << FeedInfo().replication().state();
  absl::SleepFor(absl::Seconds(8));
  EXPECT_EQ(FeedInfo().replication().state(), "failing");
  ASSERT_OK(nats_->StartAll());

  // walfeed is killed at ten points, some in the middle of a large value's chunks; every other
  // run publishes its segments uncompressed, so the stream holds both kinds of message.
  std::mt19937 random(::testing::UnitTest::GetInstance()->random_seed());
  for (int kill = 0; kill < 10; ++kill) {
    if (kill % 3 == 0) {
      Sql(absl::StrCat("INSERT INTO big VALUES (", kill, ", repeat('", kill,
                       " large value ', 200000))"));  // 2.8 MB: chunks over several segments
    }
    absl::SleepFor(absl::Milliseconds(100 + random() % 1500));
    walfeed_->Kill();
    std::vector<std::string> run_args = args;
    run_args.insert(run_args.end(), {"--replication-compression", kill % 2 ? "zstd" : "none"});
    StartWalfeed(run_args);
  }
  writer.Stop();
  ASSERT_GT(writer.transactions(), 100);

  ASSERT_OK(CommitMarkerAndRead("replication-end"));
  WaitForReplication();
  ExpectStreamIsTheFeed();
  EXPECT_EQ(large_values_seen_, 4u);
  EXPECT_GT(FeedInfo().replication().segments_published(), 0u);
  EXPECT_GT(compressions_seen_["zstd"], 0u);
  EXPECT_GT(compressions_seen_[""], 0u);
  EXPECT_EQ(compressions_seen_.size(), 2u);
}

TEST_F(Replication, ConfirmAfterReplicatedLeavesInPostgresWhatJetStreamLacks) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  const int metrics_port = FreePort();
  StartWalfeed([&] {
    std::vector<std::string> args = ReplicationArgs("replicated");
    args.insert(args.end(), {"--unhealthy-after", "3s", "--status-interval", "1s",
                             "--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port)});
    return args;
  }());
  Sql("INSERT INTO t SELECT g, 'before' FROM generate_series(1, 100) g");
  ASSERT_OK(CommitMarkerAndRead("replicated"));
  WaitForReplication();
  EXPECT_EQ(Health(), HealthCheckResponse::SERVING);
  // Replicated, so confirmed to PostgreSQL.
  const uint64_t head = FeedInfo().newest_lsn();
  const absl::Time confirmed_deadline = absl::Now() + absl::Seconds(60);
  while (SlotConfirmedLsn() <= head) {
    ASSERT_LT(absl::Now(), confirmed_deadline) << "the slot never moved past " << head;
    absl::SleepFor(absl::Milliseconds(100));
  }

  // NATS goes away; PostgreSQL commits 50 more transactions; the local log has them at once.
  ASSERT_OK(nats_->StopAll());
  for (int id = 101; id <= 150; ++id) Sql(absl::StrCat("INSERT INTO t VALUES (", id, ", 'after')"));
  absl::StatusOr<std::vector<v1::Change>> read = CommitMarkerAndRead("local only");
  ASSERT_OK(read);
  uint64_t first_unreplicated = 0;
  for (const v1::Change& change : *read) {
    if (change.op() != v1::Change::INSERT || change.after(1).text() != "after") continue;
    if (first_unreplicated == 0) first_unreplicated = change.lsn();
  }
  ASSERT_NE(first_unreplicated, 0u);

  // PostgreSQL is never told they are safe, and health says why once --unhealthy-after passes.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (Health() != HealthCheckResponse::NOT_SERVING) {
    ASSERT_LT(absl::Now(), deadline) << walfeed_->Log();
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_LE(SlotConfirmedLsn(), first_unreplicated);
  const v1::FeedInfo info = FeedInfo();
  EXPECT_EQ(info.replication().state(), "failing");
  EXPECT_GT(info.replication().lag_changes(), 50u);
  EXPECT_GT(info.replication().failing_seconds(), 3.0);
  EXPECT_FALSE(info.replication().last_error().empty());
  const std::string metrics = Scrape(metrics_port);
  EXPECT_EQ(Sample(metrics, "walfeed_replication_state{state=\"failing\"}"), 1) << metrics;
  EXPECT_GT(Sample(metrics, "walfeed_replication_lag_changes"), 50);
  EXPECT_GT(Sample(metrics, "walfeed_replication_publish_errors_total"), 0);
  EXPECT_GT(Sample(metrics, "walfeed_replication_segments_published_total"), 0);

  // The machine is lost with its disk.
  walfeed_->Kill();
  RemoveTree(dir_ + "/data");
  EXPECT_LE(SlotConfirmedLsn(), first_unreplicated);
  ASSERT_OK(nats_->StartAll());
  const StreamContent stream = ReadStream(*nats_, stream_);
  std::set<std::string> streamed_rows;
  for (const v1::Change& change : stream.changes) {
    if (change.op() == v1::Change::INSERT || change.op() == v1::Change::READ) {
      streamed_rows.insert(change.after(0).DebugString());
    }
    EXPECT_LT(change.lsn(), first_unreplicated) << "acknowledged by JetStream after NATS stopped?";
  }
  EXPECT_EQ(streamed_rows.size(), 100u);
  // Every change JetStream lacks is still PostgreSQL's to send: the slot's pending changes hold
  // the 50 inserts.
  std::vector<std::vector<std::string>> pending;
  const absl::Time peek_deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    absl::StatusOr<std::vector<std::vector<std::string>>> rows = SharedPostgres().Query(
        db_, absl::StrCat("SELECT count(*) FROM pg_logical_slot_peek_binary_changes('", slot_,
                          "', NULL, NULL, 'proto_version', '1', 'publication_names', "
                          "'walfeed') WHERE substr(data, 1, 1) = 'I'"));
    if (rows.ok()) {
      pending = *rows;
      break;
    }
    // The walsender of the killed walfeed may hold the slot a moment longer.
    ASSERT_LT(absl::Now(), peek_deadline) << rows.status();
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0][0], "50");
}

// --confirm-after=local: a NATS outage neither stops ingest nor holds the slot back; the local log
// buffers, compaction keeps what JetStream lacks, and the stream catches up when NATS returns.
TEST_F(Replication, UnderConfirmAfterLocalTheLogBuffersAndCompactionKeepsWhatIsNotReplicated) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v int)");
  // A row of eight values just under the out-of-line value limit (256 KiB) each: about 1 MiB in
  // all, more than one message may carry under NATS's default max_payload (the test cluster's).
  Sql("CREATE TABLE wide (id int PRIMARY KEY, c1 text, c2 text, c3 text, c4 text, c5 text, "
      "c6 text, c7 text, c8 text)");
  StartWalfeed([&] {
    std::vector<std::string> args = ReplicationArgs("local");
    args.insert(args.end(), {"--unhealthy-after", "2s", "--status-interval", "1s"});
    return args;
  }());
  ASSERT_OK(CommitMarkerAndRead("first"));
  WaitForReplication();
  ASSERT_OK(nats_->StopAll());
  for (int id = 1; id <= 30; ++id) Sql(absl::StrCat("INSERT INTO t VALUES (", id, ", 0)"));
  for (int i = 1; i <= 20; ++i) Sql(absl::StrCat("UPDATE t SET v = ", i, " WHERE id = 1"));
  Sql("INSERT INTO wide SELECT 1, repeat('1', 131000), repeat('2', 131000), repeat('3', 131000), "
      "repeat('4', 131000), repeat('5', 131000), repeat('6', 131000), repeat('7', 131000), "
      "repeat('8', 131000)");
  absl::StatusOr<std::vector<v1::Change>> read = CommitMarkerAndRead("local");
  ASSERT_OK(read);
  const uint64_t last_update = read->back().lsn();
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (SlotConfirmedLsn() <= last_update) {
    ASSERT_LT(absl::Now(), deadline) << "the slot did not move under --confirm-after=local";
    absl::SleepFor(absl::Milliseconds(200));
  }
  const auto compact = [this] {
    auto admin = v1::Admin::NewStub(walfeed_->NewChannel());
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    v1::CompactRequest request;
    request.mutable_compaction_lag()->set_seconds(0);
    v1::CompactionResult result;
    grpc::Status status = admin->Compact(&context, request, &result);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return result;
  };
  // Every change of id 1 but the newest is superseded, but none is replicated: none may go.
  EXPECT_EQ(compact().superseded_removed(), 0u);
  const absl::Time failing_deadline = absl::Now() + absl::Seconds(60);
  while (FeedInfo().replication().state() != "failing") {
    ASSERT_LT(absl::Now(), failing_deadline) << walfeed_->Log();
    absl::SleepFor(absl::Milliseconds(200));
  }
  absl::SleepFor(absl::Seconds(3));  // past --unhealthy-after
  EXPECT_EQ(Health(), HealthCheckResponse::SERVING) << "local: a NATS outage is not a problem";

  ASSERT_OK(nats_->StartAll());
  WaitForReplication();
  ExpectStreamIsTheFeed();
  const StreamContent stream = ReadStream(*nats_, stream_);
  int updates = 0;
  for (const v1::Change& change : stream.changes) updates += change.op() == v1::Change::UPDATE;
  EXPECT_EQ(updates, 20);
  // With --replicate-to a change is stored at most 512 KiB: part of the wide row went out of
  // line (and arrived whole, above), though no value of it is over the value limit.
  EXPECT_GE(large_values_seen_, 4u);
  // Once replicated, the superseded changes may go from the log (the stream keeps them).
  EXPECT_GT(compact().superseded_removed(), 0u);
}

TEST_F(Replication, ASecondWalfeedOnTheSameStreamIsFencedAndNothingInterleaves) {
  absl::StatusOr<std::string> other_db = SharedPostgres().CreateDatabase("replication_fence");
  ASSERT_OK(other_db);
  for (const std::string& db : {db_, *other_db}) {
    ASSERT_TRUE(SharedPostgres()
                    .Exec(db,
                          "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT "
                          "g, 'x' FROM generate_series(1, 2000) g")
                    .ok());
  }
  // Both start on an empty stream at the same moment.
  WalfeedOptions first = Options();
  first.extra_args = ReplicationArgs("replicated");
  WalfeedOptions second = first;
  second.conninfo = SharedPostgres().Conninfo(*other_db);
  second.data_dir = dir_ + "/second";
  second.slot = slot_ + "_b";
  second.port = 0;
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> a = WalfeedProcess::Start(first);
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> b = WalfeedProcess::Start(second);
  ASSERT_OK(a);
  ASSERT_OK(b);
  for (const std::string& db : {db_, *other_db}) {
    ASSERT_OK(SharedPostgres().Exec(db, "INSERT INTO t VALUES (5000, 'later')"));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  v1::FeedInfo info_a, info_b;
  while (true) {
    info_a = Describe(**a);
    info_b = Describe(**b);
    const bool one_failed =
        (info_a.replication().state() == "failed") != (info_b.replication().state() == "failed");
    const v1::FeedInfo& winner = info_a.replication().state() == "failed" ? info_b : info_a;
    if (one_failed && winner.replication().state() == "caught_up" &&
        winner.replication().replicated_cursor() == winner.newest_cursor()) {
      break;
    }
    ASSERT_LT(absl::Now(), deadline) << info_a.replication().ShortDebugString() << "\n"
                                     << info_b.replication().ShortDebugString();
    absl::SleepFor(absl::Milliseconds(200));
  }
  const v1::FeedInfo& loser = info_a.replication().state() == "failed" ? info_a : info_b;
  const v1::FeedInfo& winner = info_a.replication().state() == "failed" ? info_b : info_a;
  EXPECT_THAT(loser.replication().last_error(), HasSubstr("another walfeed publishes to it"));
  EXPECT_THAT(loser.replication().last_error(), HasSubstr(winner.log_id()));
  WalfeedProcess& losing_process = info_a.replication().state() == "failed" ? **a : **b;
  EXPECT_THAT(losing_process.Log(), HasSubstr("event=replication_stopped"));
  WalfeedProcess& winning_process = info_a.replication().state() == "failed" ? **b : **a;
  // The winner may still append (and publish) a change after the check above: read the feed
  // and the stream again until both are read with nothing in between.
  absl::StatusOr<std::vector<v1::Change>> winner_feed;
  StreamContent stream;
  for (int attempt = 0; attempt < 50; ++attempt) {
    winner_feed = ReadToHead(*winning_process.NewStub(), v1::SubscribeRequest());
    ASSERT_OK(winner_feed);
    stream = ReadStream(*nats_, stream_);
    if (stream.changes.size() == winner_feed->size()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(stream.log_ids, std::set<std::string>{winner.log_id()});
  EXPECT_EQ(stream.changes.size(), winner_feed->size());
  EXPECT_GE(stream.changes.size(), 2001u);
}

// A replica (--follow) copies the log from the stream and serves the same feed: the same
// changes byte for byte, the same cursors, the same log id and values out of line, also after
// being killed -9 at random moments while the primary writes (transactions split between
// segments, multi-MB values in chunks over several segments).
// Killed exactly where a segment is in JetStream and walfeed has not yet recorded that (its
// replicated cursor, the confirm gate and, with failover, its copy point): at the next start it
// learns from the stream where the stream ends and publishes on from there, nothing twice.
TEST_F(Replication, KilledAfterPublishingBeforeRecordingItPublishesNothingTwice) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("INSERT INTO t SELECT g, 'existing' FROM generate_series(1, 300) g");
  const std::vector<std::string> args = ReplicationArgs("replicated");
  StartWalfeed(args);
  WaitForReplication();
  // Armed for the third segment from now on: the first ones of this run go through.
  StartWalfeed(args, true, {"WALFEED_FAULT_POINT=replication.published_before_copy_point@3"});
  for (int batch = 0; batch < 40 && walfeed_->AwaitExit(absl::Milliseconds(1)) == false; ++batch) {
    Sql(absl::StrCat("INSERT INTO t SELECT g, repeat('x', 2000) FROM generate_series(",
                     1000 * (batch + 1), ", ", 1000 * (batch + 1) + 99, ") g"));
  }
  ASSERT_TRUE(walfeed_->AwaitExit(absl::Seconds(120))) << walfeed_->Log();
  ASSERT_THAT(walfeed_->Log(),
              HasSubstr("fault point replication.published_before_copy_point reached"));

  StartWalfeed(args);
  Sql("INSERT INTO t VALUES (1, 'after') ON CONFLICT (id) DO UPDATE SET v = 'after'");
  ASSERT_OK(CommitMarkerAndRead("published-end"));
  WaitForReplication();
  ExpectStreamIsTheFeed();
}

TEST_F(Replication, AReplicaServesTheSameFeedAcrossItsOwnCrashes) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("CREATE TABLE big (id int PRIMARY KEY, doc text)");
  Sql("INSERT INTO t SELECT g, 'existing' FROM generate_series(1, 500) g");
  // Uncompressed segments (the other tests' replicas read zstd ones).
  std::vector<std::string> args = ReplicationArgs("local");
  args.insert(args.end(), {"--replication-compression", "none"});
  StartWalfeed(args);
  // The stream exists and names the log before the replica starts (a new cluster elects its
  // JetStream leader first, which can outlast the replica's start-up check).
  WaitForReplication();
  SteadyWriter writer(db_, 1000);
  WalfeedOptions replica_options = Options();
  replica_options.data_dir = dir_ + "/replica";
  replica_options.port = 0;
  replica_options.wait_for_streaming = false;
  replica_options.extra_args = {"--follow", nats_->urls(), "--replication-stream", stream_};
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> replica = WalfeedProcess::Start(replica_options);
  ASSERT_OK(replica);
  std::mt19937 random(::testing::UnitTest::GetInstance()->random_seed());
  for (int kill = 0; kill < 5; ++kill) {
    Sql(absl::StrCat("INSERT INTO big VALUES (", kill, ", repeat('", kill,
                     " large value ', 200000))"));  // 2.8 MB: chunks over several segments
    absl::SleepFor(absl::Milliseconds(200 + random() % 1500));
    (*replica)->Kill();
    replica = WalfeedProcess::Start((*replica)->options());
    ASSERT_OK(replica);
  }
  writer.Stop();
  ASSERT_GT(writer.transactions(), 50);
  ASSERT_OK(CommitMarkerAndRead("replica-end"));
  WaitForReplication();

  const v1::FeedInfo primary = FeedInfo();
  const absl::Time deadline = absl::Now() + absl::Seconds(300);
  v1::FeedInfo copy = Describe(**replica);
  while (copy.newest_cursor() != primary.newest_cursor() ||
         copy.replication().state() != "caught_up") {
    ASSERT_LT(absl::Now(), deadline) << copy.replication().ShortDebugString() << "\n"
                                     << (*replica)->Log();
    absl::SleepFor(absl::Milliseconds(200));
    copy = Describe(**replica);
  }
  EXPECT_EQ(copy.log_id(), primary.log_id());
  EXPECT_EQ(copy.source_state(), "following");
  EXPECT_EQ(copy.role(), "replica");
  EXPECT_EQ(primary.role(), "ingester");
  EXPECT_EQ(copy.replication().lag_segments(), 0u);
  EXPECT_EQ(copy.replication().stream_sequence(), primary.replication().stream_sequence());
  // walfeedctl, given a dead address first, describes the replica.
  const RunResult info = RunCommand(
      {WalfeedctlBinary(), "info", "--server", absl::StrCat("127.0.0.1:1,", (*replica)->address())},
      absl::Seconds(60));
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_THAT(info.output, HasSubstr("\"role\": \"replica\""));

  ExpectReplicaServesTheFeed(**replica, 5);
}

// A replica started empty while the stream holds only the newest part of the log copies the rest
// from another instance (--bootstrap-from), values out of line included, then follows the
// stream from its first message: it serves the same feed as the publisher, byte for byte, and
// goes on copying what comes after. Without --bootstrap-from it stops with a sentence.
TEST_F(Replication, AnEmptyReplicaBootstrapsFromAnotherInstanceWhenTheStreamLostTheStart) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("CREATE TABLE big (id int PRIMARY KEY, doc text)");
  Sql("INSERT INTO t SELECT g, 'existing' FROM generate_series(1, 500) g");
  StartWalfeed(ReplicationArgs("local"));
  {
    SteadyWriter writer(db_, 1000);
    for (int i = 0; i < 2; ++i) {
      Sql(absl::StrCat("INSERT INTO big VALUES (", i, ", repeat('", i, " large value ', 200000))"));
      absl::SleepFor(absl::Seconds(1));
    }
  }
  ASSERT_OK(CommitMarkerAndRead("before-purge"));
  WaitForReplication();
  ASSERT_OK(nats_->PurgeStream(stream_, 3));

  WalfeedOptions stuck_options = Options();
  stuck_options.data_dir = dir_ + "/stuck";
  stuck_options.port = 0;
  stuck_options.wait_for_streaming = false;
  stuck_options.extra_args = {"--follow", nats_->urls(), "--replication-stream", stream_};
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> stuck = WalfeedProcess::Start(stuck_options);
  ASSERT_OK(stuck);
  WalfeedOptions replica_options = stuck_options;
  replica_options.data_dir = dir_ + "/replica";
  replica_options.extra_args.insert(replica_options.extra_args.end(),
                                    {"--bootstrap-from", walfeed_->address()});
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> replica = WalfeedProcess::Start(replica_options);
  ASSERT_OK(replica);
  {
    SteadyWriter writer(db_, 100000);
    absl::SleepFor(absl::Seconds(2));
  }
  ASSERT_OK(CommitMarkerAndRead("after-bootstrap"));
  WaitForReplication();

  const v1::FeedInfo primary = FeedInfo();
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (Describe(**replica).newest_cursor() != primary.newest_cursor()) {
    ASSERT_LT(absl::Now(), deadline) << (*replica)->Log();
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_THAT((*replica)->Log(), HasSubstr("event=bootstrap_done"));
  EXPECT_EQ(Describe(**replica).log_id(), primary.log_id());
  ExpectReplicaServesTheFeed(**replica, 2);
  if (HasFatalFailure()) return;

  const v1::FeedInfo stopped = Describe(**stuck);
  EXPECT_EQ(stopped.replication().state(), "failed");
  EXPECT_THAT(stopped.replication().last_error(), HasSubstr("give --bootstrap-from"));
}

// A replica whose data directory holds another log (another database's walfeed, say) is not
// fed this stream's segments: it stops following with a sentence and keeps its own log.
TEST_F(Replication, AReplicaOfAnotherLogIsRefusedWithASentence) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  StartWalfeed(ReplicationArgs("local"));
  ASSERT_OK(CommitMarkerAndRead("published"));
  WaitForReplication();

  absl::StatusOr<std::string> other_db = SharedPostgres().CreateDatabase("replica_other");
  ASSERT_OK(other_db);
  ASSERT_TRUE(SharedPostgres()
                  .Exec(*other_db, "CREATE TABLE o (id int PRIMARY KEY); INSERT INTO o VALUES (1)")
                  .ok());
  WalfeedOptions other = Options();
  other.conninfo = SharedPostgres().Conninfo(*other_db);
  other.data_dir = dir_ + "/other";
  other.slot = slot_ + "_other";
  other.port = 0;
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> own = WalfeedProcess::Start(other);
  ASSERT_OK(own);
  absl::StatusOr<std::vector<v1::Change>> own_feed =
      ReadToHead(*(*own)->NewStub(), v1::SubscribeRequest());
  ASSERT_OK(own_feed);
  ASSERT_FALSE(own_feed->empty());
  ASSERT_EQ((*own)->Terminate(), 0);

  other.wait_for_streaming = false;
  other.extra_args = {"--follow", nats_->urls(), "--replication-stream", stream_};
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> replica = WalfeedProcess::Start(other);
  ASSERT_OK(replica);
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  v1::FeedInfo info;
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    ASSERT_OK((*replica)->NewStub()->GetFeedInfo(&context, {}, &info));
    if (info.replication().state() == "failed") break;
    ASSERT_LT(absl::Now(), deadline) << info.replication().ShortDebugString();
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_THAT(info.replication().last_error(), HasSubstr("wrote from PostgreSQL"));
  EXPECT_THAT(info.replication().last_error(), HasSubstr("give the replica an empty --data-dir"));
  EXPECT_THAT(info.replication().last_error(), HasSubstr(info.log_id()));
  EXPECT_NE(info.log_id(), FeedInfo().log_id());
  EXPECT_THAT((*replica)->Log(), HasSubstr("event=follow_stopped"));
  absl::StatusOr<std::vector<v1::Change>> kept =
      ReadToHead(*(*replica)->NewStub(), v1::SubscribeRequest());
  ASSERT_OK(kept);
  ASSERT_EQ(kept->size(), own_feed->size()) << "its own log, untouched";
}

// A consumer given the publisher's and a replica's address (the C++ Subscriber) moves to the
// replica when the publisher dies and resumes there with its cursor and log id: while the
// publisher stays down it receives the rest of the feed from the replica, every change exactly
// once, in order.
TEST_F(Replication, AConsumerMovesToAReplicaWithItsCursorWhenThePublisherDies) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  StartWalfeed(ReplicationArgs("replicated"));
  WalfeedOptions replica_options = Options();
  replica_options.data_dir = dir_ + "/replica";
  replica_options.port = 0;
  replica_options.wait_for_streaming = false;
  replica_options.extra_args = {"--follow", nats_->urls(), "--replication-stream", stream_};
  {
    SteadyWriter writer(db_, 1000);
    absl::SleepFor(absl::Seconds(3));
  }
  ASSERT_OK(CommitMarkerAndRead("written"));
  WaitForReplication();
  const std::vector<v1::Change> feed = RawFeed();
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> replica = WalfeedProcess::Start(replica_options);
  ASSERT_OK(replica);
  const absl::Time copied_by = absl::Now() + absl::Seconds(120);
  while (RawFeed(**replica).size() < feed.size()) {
    ASSERT_LT(absl::Now(), copied_by) << (*replica)->Log();
    absl::SleepFor(absl::Milliseconds(200));
  }

  // A slow consumer starts on the publisher (the first address).
  SubscriberOptions options;
  options.server = absl::StrCat(walfeed_->address(), ",", (*replica)->address());
  options.request.set_from_lsn(1);
  options.request.set_max_batch_changes(10);
  options.min_backoff = absl::Milliseconds(100);
  options.max_backoff = absl::Seconds(1);
  Subscriber subscriber(options);
  absl::Mutex mu;
  std::vector<v1::Change> received;
  int retries = 0;
  std::thread reader([&] {
    absl::Status ended = subscriber.Run(
        [&](const v1::Change& change) {
          absl::SleepFor(absl::Milliseconds(5));
          absl::MutexLock lock(&mu);
          received.push_back(change);
          return absl::OkStatus();
        },
        nullptr,
        [&](const absl::Status&, absl::Duration) {
          absl::MutexLock lock(&mu);
          ++retries;
        });
    EXPECT_OK(ended);
  });
  // The reader ends on every path, a failed assertion's too (unjoined, it would abort).
  absl::Cleanup stop_reader = [&] {
    subscriber.Stop();
    if (reader.joinable()) reader.join();
  };
  const auto received_count = [&] {
    absl::MutexLock lock(&mu);
    return received.size();
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (received_count() < 50) {
    ASSERT_LT(absl::Now(), deadline);
    absl::SleepFor(absl::Milliseconds(20));
  }
  // The publisher dies and stays down: the rest comes from the replica.
  walfeed_->Kill();
  const size_t at_kill = received_count();
  ASSERT_LT(at_kill, feed.size()) << "the consumer must still have changes to read";
  while (received_count() < feed.size()) {
    ASSERT_LT(absl::Now(), deadline) << received_count() << " of " << feed.size();
    absl::SleepFor(absl::Milliseconds(200));
  }
  absl::SleepFor(absl::Milliseconds(500));  // nothing more may come
  std::move(stop_reader).Invoke();
  absl::MutexLock lock(&mu);
  EXPECT_GE(retries, 1) << "the consumer never lost the publisher";
  ASSERT_EQ(received.size(), feed.size());
  for (size_t i = 0; i < feed.size(); ++i) {
    ASSERT_EQ(received[i].cursor(), feed[i].cursor()) << "change " << i;
  }
  grpc::ClientContext context;
  v1::FeedInfo replica_info;
  ASSERT_OK((*replica)->NewStub()->GetFeedInfo(&context, {}, &replica_info));
  EXPECT_EQ(subscriber.log_id(), replica_info.log_id());
}

}  // namespace
}  // namespace walfeed::test
