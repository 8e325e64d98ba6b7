// The one private PostgreSQL shared by an integration test binary, started before the first
// test and stopped after the last. Tests isolate themselves with a database and a slot each.
#ifndef WALFEED_TESTS_INTEGRATION_POSTGRES_ENVIRONMENT_H_
#define WALFEED_TESTS_INTEGRATION_POSTGRES_ENVIRONMENT_H_

#include <memory>

#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/walfeed_process.h"

namespace walfeed::test {

PostgresCluster& SharedPostgres();

// A test with its own database, slot, data directory and (on demand) walfeed process.
class WalfeedTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts (or restarts) walfeed on this test's database and data directory.
  // `env`: "NAME=value" entries added to walfeed's environment.
  void StartWalfeed(std::vector<std::string> extra_args = {}, bool wait_for_streaming = true,
                    std::vector<std::string> env = {});
  WalfeedOptions Options() const;

  void Sql(const std::string& sql) {
    absl::Status done = SharedPostgres().Exec(db_, sql);
    ASSERT_TRUE(done.ok()) << sql << ": " << done;
  }
  std::vector<std::vector<std::string>> Query(const std::string& sql);
  // This test's slot's confirmed_flush_lsn (0 while it has none, or when the slot is gone).
  uint64_t SlotConfirmedLsn();
  // pg_current_wal_lsn(): where PostgreSQL's WAL ends now.
  uint64_t WalEnd();
  v1::FeedInfo FeedInfo();
  // What the standard health service answers for the whole server.
  grpc::health::v1::HealthCheckResponse::ServingStatus Health();

  // walfeed's flags for this test's data directory and slot on `conninfo`, on a free port.
  std::vector<std::string> BaseArgs(const std::string& conninfo);
  // Runs walfeed with `args` until it exits (for starts that must fail).
  RunResult RunWalfeed(std::vector<std::string> args, std::vector<std::string> env = {});
  bool SlotExists(const std::string& slot);
  // Commits a marker message, then reads from `request` until it arrives: the changes before it.
  absl::StatusOr<std::vector<v1::Change>> CommitMarkerAndRead(
      const std::string& marker, const v1::SubscribeRequest& request = {},
      absl::Duration timeout = absl::Seconds(300));

  std::string db_;
  std::string slot_;
  std::string dir_;
  std::unique_ptr<WalfeedProcess> walfeed_;
};

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_INTEGRATION_POSTGRES_ENVIRONMENT_H_
