#include "server/config.h"

#include <fstream>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;

EnvLookup Env(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::MakeTempDir("walfeed-config"); }
  void TearDown() override { test::RemoveTree(dir_); }
  std::string Write(const std::string& text) {
    const std::string path = dir_ + "/walfeed.conf";
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(ConfigFile, SettingsComeFromTheFileAndFlagsThenVariablesWin) {
  const std::string path = Write(
      "# walfeed settings\n"
      "pg = \"host=db dbname=shop\"\n"
      "listen = 127.0.0.1:6000   # trailing comment\n"
      "slot = from_file\n"
      "publication = from_file\n"
      "\n"
      "progress-interval = 2s\n");
  absl::StatusOr<Config> config =
      ParseConfig({"--config", path, "--slot", "from_flag"},
                  Env({{"WALFEED_SLOT", "from_env"}, {"WALFEED_PUBLICATION", "from_env"}}));
  ASSERT_OK(config);
  EXPECT_EQ(config->source.conninfo, "host=db dbname=shop");
  EXPECT_EQ(config->feed.listen_address, "127.0.0.1:6000");
  EXPECT_EQ(config->feed.progress_interval, absl::Seconds(2));
  EXPECT_EQ(config->source.slot, "from_flag") << "a flag wins over everything";
  EXPECT_EQ(config->source.publication, "from_env") << "a variable wins over the file";

  absl::StatusOr<Config> by_env = ParseConfig({}, Env({{"WALFEED_CONFIG", path}}));
  ASSERT_OK(by_env);
  EXPECT_EQ(by_env->source.slot, "from_file");
}

TEST_F(ConfigFile, BadFilesAreRefusedWithTheLine) {
  absl::StatusOr<Config> missing = ParseConfig({"--config", dir_ + "/nope.conf"}, Env({}));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("cannot read the config file"));

  absl::StatusOr<Config> unknown =
      ParseConfig({"--config", Write("pg = x\nslto = typo\n")}, Env({}));
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("line 2: unknown setting 'slto'"));

  absl::StatusOr<Config> bad_value =
      ParseConfig({"--config", Write("pg = x\nprogress-interval = soon\n")}, Env({}));
  EXPECT_THAT(std::string(bad_value.status().message()),
              HasSubstr("line 2: --progress-interval='soon' is not a positive duration"));

  absl::StatusOr<Config> no_equals = ParseConfig({"--config", Write("pg x\n")}, Env({}));
  EXPECT_THAT(std::string(no_equals.status().message()),
              HasSubstr("line 1: expected name = value"));
}

TEST(ReplicationSettings, ComeFromFlagsAndVariablesAndBadOnesAreRefusedWithTheSetting) {
  absl::StatusOr<Config> config = ParseConfig(
      {"--pg", "x", "--replicate-to", "nats://a:4222, nats://b:4222", "--confirm-after",
       "replicated", "--replication-replicas", "5", "--replication-segment-bytes", "256KiB"},
      Env({{"WALFEED_REPLICATION_STREAM", "orders_feed"},
           {"WALFEED_NATS_PASSWORD", "secret"},
           {"WALFEED_REPLICATION_IN_FLIGHT", "3"},
           {"WALFEED_REPLICATION_COMPRESSION", "none"}}));
  ASSERT_OK(config);
  EXPECT_EQ(config->replication.servers,
            (std::vector<std::string>{"nats://a:4222", "nats://b:4222"}));
  EXPECT_EQ(config->replication.stream, "orders_feed");
  EXPECT_EQ(config->replication.subject(), "orders_feed.log");
  EXPECT_EQ(config->replication.replicas, 5);
  EXPECT_EQ(config->replication.confirm_after, ConfirmAfter::kReplicated);
  EXPECT_EQ(config->replication.segment_bytes, 256u << 10);
  EXPECT_EQ(config->replication.password, "secret");
  EXPECT_EQ(config->replication.in_flight, 3);
  EXPECT_EQ(config->replication.compression, SegmentCompression::kNone);
  // A replicated change fits a stream message under NATS's default max_payload.
  EXPECT_EQ(config->log.out_of_line.change_bytes, ReplicationOptions::kMaxChangeBytes);

  absl::StatusOr<Config> off = ParseConfig({"--pg", "x"}, Env({}));
  ASSERT_OK(off);
  EXPECT_FALSE(off->replication.enabled());
  EXPECT_EQ(off->replication.confirm_after, ConfirmAfter::kLocal);
  EXPECT_EQ(off->replication.compression, SegmentCompression::kZstd);
  EXPECT_EQ(off->log.out_of_line.change_bytes, OutOfLineLimits{}.change_bytes);

  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"--replicate-to", "localhost:4222"}, "expected nats://host:port"},
      {{"--confirm-after", "replicated"}, "needs --replicate-to"},
      {{"--confirm-after", "later"}, "must be local or replicated"},
      {{"--replicate-to", "nats://a:1", "--replication-stream", "a.b"}, "letters, digits"},
      {{"--replicate-to", "nats://a:1", "--replication-replicas", "7"}, "from 1 to 5"},
      {{"--replicate-to", "nats://a:1", "--replication-replicas", "three"}, "from 1 to 5"},
      {{"--replicate-to", "nats://a:1", "--nats-tls-cert", "c.pem"}, "go together"},
      {{"--replicate-to", "nats://a:1", "--replication-in-flight", "0"}, "from 1 to 32"},
      {{"--replication-compression", "gzip"}, "must be zstd or none"},
      {{"--replicate-to", "nats://a:1", "--replication-in-flight", "many"}, "from 1 to 32"},
  };
  for (const auto& [flags, why] : refused) {
    std::vector<std::string> args = {"--pg", "x"};
    args.insert(args.end(), flags.begin(), flags.end());
    absl::StatusOr<Config> bad = ParseConfig(args, Env({}));
    EXPECT_FALSE(bad.ok()) << flags.back();
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(why)) << flags.back();
  }
}

TEST(ReplicaSettings, FollowNeedsNoPostgresAndExcludesPublishing) {
  absl::StatusOr<Config> replica = ParseConfig(
      {"--follow", "nats://a:4222,nats://b:4222", "--replication-stream", "orders"}, Env({}));
  ASSERT_OK(replica);
  EXPECT_EQ(replica->follow, (std::vector<std::string>{"nats://a:4222", "nats://b:4222"}));
  EXPECT_EQ(replica->replication.stream, "orders");
  EXPECT_FALSE(replica->replication.enabled()) << "a replica publishes nothing";

  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"--follow", "nats://a:1", "--replicate-to", "nats://a:1"}, "exclude each other"},
      {{"--follow", "nats://a:1", "--confirm-after", "replicated"}, "not a replica"},
      {{"--follow", "a:1"}, "expected nats://host:port"},
      {{"--follow", "nats://a:1", "--replication-stream", "a b"}, "letters, digits"},
  };
  for (const auto& [flags, why] : refused) {
    absl::StatusOr<Config> bad = ParseConfig(flags, Env({}));
    EXPECT_FALSE(bad.ok()) << flags.back();
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(why)) << flags.back();
  }
}

TEST(IngestGroupSettings, AutoNeedsTheStreamAndConfirmingAfterReplication) {
  absl::StatusOr<Config> member =
      ParseConfig({"--pg", "x", "--ingest", "auto", "--replicate-to", "nats://a:1",
                   "--confirm-after", "replicated", "--instance-name", "walfeed-2"},
                  Env({}));
  ASSERT_OK(member);
  EXPECT_TRUE(member->ingest_auto);
  EXPECT_TRUE(member->replication.failover);
  EXPECT_EQ(member->instance_name, "walfeed-2");
  absl::StatusOr<Config> plain = ParseConfig({"--pg", "x"}, Env({{"WALFEED_INGEST", "always"}}));
  ASSERT_OK(plain);
  EXPECT_FALSE(plain->ingest_auto);
  EXPECT_FALSE(plain->replication.failover);

  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"--pg", "x", "--ingest", "auto"}, "needs --replicate-to"},
      {{"--pg", "x", "--ingest", "auto", "--replicate-to", "nats://a:1"},
       "needs --confirm-after=replicated"},
      {{"--pg", "x", "--ingest", "sometimes"}, "must be always or auto"},
      {{"--ingest", "auto", "--follow", "nats://a:1"}, "exclude each other"},
      {{"--ingest", "auto", "--replicate-to", "nats://a:1", "--confirm-after", "replicated"},
       "--pg"},
  };
  for (const auto& [flags, why] : refused) {
    absl::StatusOr<Config> bad = ParseConfig(flags, Env({}));
    EXPECT_FALSE(bad.ok()) << flags.back();
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(why)) << flags.back();
  }
}

TEST(ConfigHelp, ListsEverySettingWithItsDefaultAndThePrecedence) {
  const std::string help = ConfigHelp();
  for (const char* flag :
       {"--pg", "--listen", "--config", "--metrics-listen", "--compaction-lag", "--replicate-to",
        "--confirm-after", "--nats-credentials", "--follow", "--ingest", "--instance-name"}) {
    EXPECT_THAT(help, HasSubstr(flag));
  }
  EXPECT_THAT(help, HasSubstr("wins over the environment variable"));
}

}  // namespace
}  // namespace walfeed
