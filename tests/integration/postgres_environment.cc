#include "tests/integration/postgres_environment.h"

#include "absl/strings/str_cat.h"
#include "server/core/position.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

std::unique_ptr<PostgresCluster>& Cluster() {
  static auto* cluster = new std::unique_ptr<PostgresCluster>();
  return *cluster;
}

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<PostgresCluster>> cluster = PostgresCluster::Start();
    ASSERT_OK(cluster);
    Cluster() = std::move(*cluster);
  }
  void TearDown() override { Cluster().reset(); }
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment());

}  // namespace

PostgresCluster& SharedPostgres() { return *Cluster(); }

void WalfeedTest::SetUp() {
  ASSERT_NE(Cluster(), nullptr) << "the private PostgreSQL did not start";
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  absl::StatusOr<std::string> db =
      SharedPostgres().CreateDatabase(absl::StrCat("t_", info->name()).substr(0, 40));
  ASSERT_OK(db);
  db_ = *db;
  slot_ = db_;
  dir_ = MakeTempDir("walfeed-it");
}

void WalfeedTest::TearDown() {
  walfeed_.reset();
  // Slots are cluster-wide and limited: give this one back.
  (void)SharedPostgres().Exec(
      "postgres",
      absl::StrCat("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                   "WHERE slot_name = '",
                   slot_, "' AND NOT active"));
  RemoveTree(dir_);
}

WalfeedOptions WalfeedTest::Options() const {
  WalfeedOptions options;
  options.conninfo = SharedPostgres().Conninfo(db_);
  options.data_dir = dir_ + "/data";
  options.slot = slot_;
  return options;
}

void WalfeedTest::StartWalfeed(std::vector<std::string> extra_args, bool wait_for_streaming,
                               std::vector<std::string> env) {
  walfeed_.reset();
  WalfeedOptions options = Options();
  options.extra_args = std::move(extra_args);
  options.env = std::move(env);
  options.wait_for_streaming = wait_for_streaming;
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> process = WalfeedProcess::Start(options);
  ASSERT_OK(process);
  walfeed_ = std::move(*process);
}

std::vector<std::vector<std::string>> WalfeedTest::Query(const std::string& sql) {
  absl::StatusOr<std::vector<std::vector<std::string>>> rows = SharedPostgres().Query(db_, sql);
  EXPECT_OK(rows);
  return rows.ok() ? *rows : std::vector<std::vector<std::string>>{};
}

uint64_t WalfeedTest::SlotConfirmedLsn() {
  const std::vector<std::vector<std::string>> rows = Query(absl::StrCat(
      "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '", slot_, "'"));
  if (rows.empty()) return 0;
  absl::StatusOr<uint64_t> lsn = ParseLsn(rows[0][0]);
  return lsn.ok() ? *lsn : 0;
}

uint64_t WalfeedTest::WalEnd() {
  const std::vector<std::vector<std::string>> rows = Query("SELECT pg_current_wal_lsn()");
  if (rows.empty()) return 0;
  absl::StatusOr<uint64_t> lsn = ParseLsn(rows[0][0]);
  EXPECT_OK(lsn);
  return lsn.ok() ? *lsn : 0;
}

std::vector<std::string> WalfeedTest::BaseArgs(const std::string& conninfo) {
  return {"--pg",   conninfo, "--data-dir", dir_ + "/data",
          "--slot", slot_,    "--listen",   absl::StrCat("127.0.0.1:", FreePort())};
}

RunResult WalfeedTest::RunWalfeed(std::vector<std::string> args, std::vector<std::string> env) {
  args.insert(args.begin(), WalfeedBinary());
  return RunCommand(args, absl::Seconds(30), env);
}

bool WalfeedTest::SlotExists(const std::string& slot) {
  absl::StatusOr<std::vector<std::vector<std::string>>> rows = SharedPostgres().Query(
      "postgres",
      absl::StrCat("SELECT 1 FROM pg_replication_slots WHERE slot_name = '", slot, "'"));
  EXPECT_OK(rows);
  return rows.ok() && !rows->empty();
}

absl::StatusOr<std::vector<v1::Change>> WalfeedTest::CommitMarkerAndRead(
    const std::string& marker, const v1::SubscribeRequest& request, absl::Duration timeout) {
  if (absl::Status s = SharedPostgres().Exec(db_, MarkerSql(marker)); !s.ok()) return s;
  return ReadUntilMarker(*walfeed_->NewStub(), request, marker, timeout);
}

v1::FeedInfo WalfeedTest::FeedInfo() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::FeedInfo info;
  grpc::Status status = walfeed_->NewStub()->GetFeedInfo(&context, v1::GetFeedInfoRequest(), &info);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return info;
}

grpc::health::v1::HealthCheckResponse::ServingStatus WalfeedTest::Health() {
  auto stub = grpc::health::v1::Health::NewStub(walfeed_->NewChannel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

}  // namespace walfeed::test
