// Ingest failover (--ingest=auto) with real processes on loopback: a 3-node NATS JetStream
// cluster, PostgreSQL, three walfeeds of one ingest group and steady writes, with consumers
// (the C++ Subscriber, given every member's address) starting on different members. The active
// ingester is killed with -9 again and again, and once paused with SIGSTOP until another member
// has taken over. Every consumer must end with every change exactly once, in order, the order
// of PostgreSQL's own test_decoding, and, applied to an empty state, what SELECT says; the paused
// ingester, resumed, must go back to following without writing to the stream again. The measured
// failover times (kill to the first change committed after it on a surviving member) are
// printed.
#include <signal.h>

#include <algorithm>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/subscriber.h"
#include "gtest/gtest.h"
#include "tests/integration/decoding_oracle.h"
#include "tests/integration/feed_state.h"
#include "tests/integration/nats_test.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/steady_writer.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/nats_cluster.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"
#include "tests/support/walfeed_process.h"

namespace walfeed::test {
namespace {

constexpr int kMembers = 3;

// A consumer on its own thread, collecting what its Subscriber hands over.
class Consumer {
 public:
  explicit Consumer(const std::string& servers) {
    SubscriberOptions options;
    options.server = servers;
    options.request.set_from_lsn(1);
    options.min_backoff = absl::Milliseconds(100);
    options.max_backoff = absl::Seconds(1);
    subscriber_ = std::make_unique<Subscriber>(options);
    thread_ = std::thread([this] {
      absl::Status ended = subscriber_->Run(
          [this](const v1::Change& change) {
            absl::MutexLock lock(&mu_);
            received_.push_back(change);
            return absl::OkStatus();
          },
          nullptr, nullptr);
      EXPECT_OK(ended);
    });
  }
  ~Consumer() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    subscriber_->Stop();
    thread_.join();
  }
  std::vector<v1::Change> received() const {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  bool HasMessage(const std::string& prefix) const {
    absl::MutexLock lock(&mu_);
    return std::any_of(received_.begin(), received_.end(), [&prefix](const v1::Change& change) {
      return change.op() == v1::Change::MESSAGE && change.message().prefix() == prefix;
    });
  }

 private:
  std::unique_ptr<Subscriber> subscriber_;
  mutable absl::Mutex mu_;
  std::vector<v1::Change> received_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class IngestGroup : public WalfeedNatsTest {
 protected:
  void SetUp() override {
    WalfeedNatsTest::SetUp();
    for (int i = 0; i < kMembers; ++i) ports_.push_back(FreePort());
    for (int i = 0; i < kMembers; ++i) metrics_ports_.push_back(FreePort());
  }

  // Member `i`: its own data directory and port, the shared slot and stream. A paused
  // ingester's walsender is ended after 5 s without an answer (wal_sender_timeout), which
  // frees the slot for another member.
  WalfeedOptions MemberOptions(int i) const {
    WalfeedOptions options = Options();
    options.conninfo += " options='-c wal_sender_timeout=5s'";
    options.data_dir = absl::StrCat(dir_, "/member", i);
    options.port = ports_[i];
    options.wait_for_streaming = false;
    options.extra_args = {"--ingest",
                          "auto",
                          "--replicate-to",
                          nats_->urls(),
                          "--replication-stream",
                          stream_,
                          "--confirm-after",
                          "replicated",
                          "--instance-name",
                          absl::StrCat("member", i),
                          "--replication-segment-bytes",
                          "64KiB",
                          "--metrics-listen",
                          absl::StrCat("127.0.0.1:", metrics_ports_[i])};
    return options;
  }

  void StartMember(int i) {
    absl::StatusOr<std::unique_ptr<WalfeedProcess>> started =
        WalfeedProcess::Start(MemberOptions(i));
    ASSERT_OK(started);
    members_[i] = *std::move(started);
  }

  // Every member's address, starting with member `first`'s.
  std::string Addresses(int first) const {
    std::vector<std::string> addresses;
    for (int i = 0; i < kMembers; ++i) {
      addresses.push_back(absl::StrCat("127.0.0.1:", ports_[(first + i) % kMembers]));
    }
    return absl::StrJoin(addresses, ",");
  }

  // The member that ingests and streams, other than `except`; -1 when none does yet.
  int Ingester(int except = -1) const {
    for (int i = 0; i < kMembers; ++i) {
      if (i == except || members_[i] == nullptr) continue;
      std::optional<v1::FeedInfo> info = InfoOf(*members_[i]);
      if (info && info->role() == "ingester" && info->source_state() == "streaming") return i;
    }
    return -1;
  }

  uint64_t CurrentWalLsn() {
    const auto rows = Query("SELECT (pg_current_wal_lsn() - '0/0')::bigint");
    uint64_t lsn = 0;
    EXPECT_TRUE(!rows.empty() && absl::SimpleAtoi(rows[0][0], &lsn));
    return lsn;
  }

  // Waits until a member other than `gone` holds a change committed after `lsn` (only a new
  // ingester can have read it), and returns how long that took from `since`.
  absl::Duration WaitForIngestAfter(uint64_t lsn, int gone, absl::Time since) {
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (absl::Now() < deadline) {
      for (int i = 0; i < kMembers; ++i) {
        if (i == gone || members_[i] == nullptr) continue;
        std::optional<v1::FeedInfo> info = InfoOf(*members_[i]);
        if (info && info->newest_lsn() > lsn) return absl::Now() - since;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "no member took over ingest within 120 s\n" << Logs();
    return absl::InfiniteDuration();
  }

  std::string Logs() const {
    std::string logs;
    for (int i = 0; i < kMembers; ++i) {
      if (members_[i] != nullptr) absl::StrAppend(&logs, "--- member", i, "\n", members_[i]->Log());
    }
    return logs;
  }

  void TearDown() override {
    if (HasFailure()) std::cout << Logs() << std::endl;
    for (auto& member : members_) member.reset();
    WalfeedTest::TearDown();
  }

  std::vector<int> ports_;
  std::vector<int> metrics_ports_;
  std::unique_ptr<WalfeedProcess> members_[kMembers];
};

TEST_F(IngestGroup, KilledAndPausedIngestersAreReplacedAndConsumersGetEveryChangeOnce) {
  Sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
  Sql("INSERT INTO t SELECT g, 'existing' FROM generate_series(1, 200) g");
  const std::string decoding_slot = slot_ + "_td";
  Sql(absl::StrCat("SELECT pg_create_logical_replication_slot('", decoding_slot,
                   "', 'test_decoding')"));
  // The first member finds an empty stream and a free slot: it starts the group's log.
  StartMember(0);
  ASSERT_FALSE(HasFatalFailure());
  const absl::Time first_by = absl::Now() + absl::Seconds(60);
  while (Ingester() != 0) {
    ASSERT_LT(absl::Now(), first_by) << Logs();
    absl::SleepFor(absl::Milliseconds(100));
  }
  for (int i = 1; i < kMembers; ++i) {
    StartMember(i);
    ASSERT_FALSE(HasFatalFailure());
  }
  std::vector<std::unique_ptr<Consumer>> consumers;
  for (int i = 0; i < kMembers; ++i) consumers.push_back(std::make_unique<Consumer>(Addresses(i)));

  SteadyWriter writer(db_, 1000);
  absl::SleepFor(absl::Seconds(3));
  std::vector<double> kill_seconds;
  double pause_seconds = 0;
  for (int round = 0; round < 6; ++round) {
    const absl::Time find_by = absl::Now() + absl::Seconds(60);
    int ingester = Ingester();
    while (ingester < 0) {
      ASSERT_LT(absl::Now(), find_by) << "no member ingests\n" << Logs();
      absl::SleepFor(absl::Milliseconds(100));
      ingester = Ingester();
    }
    absl::SleepFor(absl::Milliseconds(500 + 300 * round));
    const bool pause = round == 2;
    const std::optional<v1::FeedInfo> before = InfoOf(*members_[ingester]);
    ASSERT_TRUE(before.has_value());
    const std::string paused_writer = before->replication().writer();
    const absl::Time cut = absl::Now();
    if (pause) {
      ASSERT_EQ(kill(members_[ingester]->pid(), SIGSTOP), 0);
    } else {
      members_[ingester]->Kill();
    }
    // Read after the cut: whatever commits after this point only a new ingester reads.
    const uint64_t lsn = CurrentWalLsn();
    const absl::Duration took = WaitForIngestAfter(lsn, ingester, cut);
    ASSERT_FALSE(HasFailure());
    std::cout << "ingest group: " << (pause ? "paused" : "killed") << " member" << ingester
              << ", another ingested within " << absl::FormatDuration(took) << std::endl;
    if (!pause) {
      kill_seconds.push_back(absl::ToDoubleSeconds(took));
      StartMember(ingester);  // it comes back as a replica of the new ingester
      ASSERT_FALSE(HasFatalFailure());
      continue;
    }
    pause_seconds = absl::ToDoubleSeconds(took);
    // Resumed, it finds another member publishing: it goes back to following.
    ASSERT_EQ(kill(members_[ingester]->pid(), SIGCONT), 0);
    const absl::Time demoted_by = absl::Now() + absl::Seconds(60);
    while (true) {
      std::optional<v1::FeedInfo> info = InfoOf(*members_[ingester]);
      if (info && info->role() == "replica" && info->replication().state() != "switching") break;
      ASSERT_LT(absl::Now(), demoted_by) << "the resumed ingester did not step down\n" << Logs();
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_NE(members_[ingester]->Log().find("event=ingest_demoted"), std::string::npos);
    // Nothing it sent reached the stream after the new ingester's first segment.
    absl::SleepFor(absl::Seconds(2));
    absl::StatusOr<std::vector<StreamMessage>> messages = nats_->ReadStream(stream_);
    ASSERT_OK(messages);
    // Its messages form one run: none after another writer's that follows them.
    bool wrote = false;
    bool taken_over = false;
    std::string runs;  // who wrote which messages, for a failure's message
    std::string last_by = "-";
    for (const StreamMessage& message : *messages) {
      const auto header = message.headers.find("Walfeed-Writer");
      const std::string by = header == message.headers.end() ? "" : header->second;
      if (by != last_by) absl::StrAppend(&runs, " ", message.sequence, ":", by);
      last_by = by;
    }
    for (const StreamMessage& message : *messages) {
      const auto header = message.headers.find("Walfeed-Writer");
      const std::string by = header == message.headers.end() ? "" : header->second;
      if (by == paused_writer) {
        ASSERT_FALSE(taken_over) << "the paused ingester (" << paused_writer << ") wrote message "
                                 << message.sequence
                                 << " after another member took over; writers:" << runs;
        wrote = true;
      } else if (wrote) {
        taken_over = true;
      }
    }
    ASSERT_TRUE(taken_over);
  }
  writer.Stop();
  ASSERT_GT(writer.transactions(), 100);
  Sql("SELECT pg_logical_emit_message(true, 'walfeed-group-end', 'end')");

  // Every consumer reaches the end; every member holds the same feed.
  const absl::Time deadline = absl::Now() + absl::Seconds(180);
  for (const auto& consumer : consumers) {
    while (!consumer->HasMessage("walfeed-group-end")) {
      ASSERT_LT(absl::Now(), deadline) << consumer->received().size() << " changes\n" << Logs();
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
  std::vector<std::vector<v1::Change>> feeds;
  for (int i = 0; i < kMembers; ++i) {
    while (true) {
      absl::StatusOr<std::vector<v1::Change>> feed =
          ReadToHead(*members_[i]->NewStub(), v1::SubscribeRequest());
      ASSERT_OK(feed);
      if (!feed->empty() && feed->back().op() == v1::Change::MESSAGE &&
          feed->back().message().prefix() == "walfeed-group-end") {
        feeds.push_back(*std::move(feed));
        break;
      }
      ASSERT_LT(absl::Now(), deadline) << "member" << i << " never copied the end\n" << Logs();
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
  const std::vector<v1::Change>& feed = feeds[0];
  // A table filter works on every member, replicas included (they read no publication).
  const size_t t_changes = std::count_if(
      feed.begin(), feed.end(), [](const v1::Change& change) { return change.table() == "t"; });
  for (int i = 0; i < kMembers; ++i) {
    v1::SubscribeRequest only_t;
    only_t.add_tables("public.t");
    absl::StatusOr<std::vector<v1::Change>> filtered = ReadToHead(*members_[i]->NewStub(), only_t);
    ASSERT_TRUE(filtered.ok()) << "member" << i << ": " << filtered.status();
    EXPECT_EQ(filtered->size(), t_changes) << "member" << i;
  }
  for (int i = 1; i < kMembers; ++i) {
    ASSERT_EQ(feeds[i].size(), feed.size()) << "member" << i;
    for (size_t c = 0; c < feed.size(); ++c) {
      ASSERT_EQ(feeds[i][c].cursor(), feed[c].cursor()) << "member" << i << " change " << c;
      // The same change; only what a replication session gives of its own may differ between
      // members that read it from PostgreSQL themselves: whether the table was described afresh
      // in that session, and when a non-transactional message was sent.
      v1::Change mine = feeds[i][c];
      v1::Change theirs = feed[c];
      for (v1::Change* change : {&mine, &theirs}) {
        change->clear_relation_redescribed();
        if (change->op() == v1::Change::MESSAGE && !change->message().transactional()) {
          change->clear_commit_time();
        }
      }
      ASSERT_EQ(mine.SerializeAsString(), theirs.SerializeAsString())
          << "member" << i << " change " << c;
    }
  }
  // Every member names the group's ingester; each its own role.
  const int ingester = Ingester();
  ASSERT_GE(ingester, 0);
  const std::string writer_name = InfoOf(*members_[ingester])->replication().writer();
  ASSERT_EQ(writer_name.rfind(absl::StrCat("member", ingester, "/"), 0), 0u) << writer_name;
  for (int i = 0; i < kMembers; ++i) {
    const std::string role = i == ingester ? "ingester" : "replica";
    const std::string writer =
        absl::StrCat("walfeed_replication_writer{writer=\"", writer_name, "\"}");
    // A member restarted last may not have read the stream's newest message yet: wait for it
    // (bounded), rather than sampling once.
    std::string metrics = Scrape(metrics_ports_[i]);
    for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
         Sample(metrics, writer) != 1 && absl::Now() < deadline;) {
      absl::SleepFor(absl::Milliseconds(200));
      metrics = Scrape(metrics_ports_[i]);
    }
    EXPECT_EQ(Sample(metrics, absl::StrCat("walfeed_role{role=\"", role, "\"}")), 1) << i;
    EXPECT_EQ(Sample(metrics, writer), 1) << "member" << i << "\n" << metrics;
  }
  // Exactly once, in order, for every consumer, wherever it was served from.
  for (size_t k = 0; k < consumers.size(); ++k) {
    consumers[k]->Stop();
    const std::vector<v1::Change> received = consumers[k]->received();
    ASSERT_EQ(received.size(), feed.size()) << "consumer " << k;
    for (size_t c = 0; c < feed.size(); ++c) {
      ASSERT_EQ(received[c].cursor(), feed[c].cursor()) << "consumer " << k << " change " << c;
    }
    ExpectFeedMatchesSelect(received, [this](const std::string& sql) { return Query(sql); });
  }
  // PostgreSQL's order.
  const auto decoded =
      Query(absl::StrCat("SELECT data FROM pg_logical_slot_peek_changes('", decoding_slot,
                         "', NULL, NULL, 'skip-empty-xacts', '1')"));
  const std::vector<std::string> expected_order = DecodedOrder(decoded);
  const std::vector<std::string> actual_order = FeedOrder(feed);
  ASSERT_EQ(actual_order.size(), expected_order.size());
  for (size_t i = 0; i < expected_order.size(); ++i) {
    ASSERT_EQ(actual_order[i], expected_order[i]) << "at change " << i;
  }
  Sql(absl::StrCat("SELECT pg_drop_replication_slot('", decoding_slot, "')"));
  std::cout << "ingest group: failover after kill -9: "
            << absl::StrJoin(kill_seconds, " s, ",
                             [](std::string* out, double s) { absl::StrAppend(out, s); })
            << " s; after SIGSTOP (wal_sender_timeout 5 s): " << pause_seconds << " s" << std::endl;
  for (double seconds : kill_seconds) EXPECT_LT(seconds, 15.0);
}

}  // namespace
}  // namespace walfeed::test
