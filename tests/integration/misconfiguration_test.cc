// Bad configuration and a misconfigured or unreachable PostgreSQL: walfeed exits non-zero with
// a sentence that names the problem and the fix, and loses nothing already stored.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/change_helpers.h"
#include "tests/support/status_assertions.h"
#include "tests/support/walfeed_process.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

class Misconfiguration : public WalfeedTest {};

TEST_F(Misconfiguration, WalLevelOtherThanLogicalIsRejectedWithTheFix) {
  absl::StatusOr<std::unique_ptr<PostgresCluster>> replica =
      PostgresCluster::Start("wal_level = replica");
  ASSERT_OK(replica);
  RunResult result = RunWalfeed(BaseArgs((*replica)->Conninfo()));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("wal_level=replica"));
  EXPECT_THAT(result.output, HasSubstr("ALTER SYSTEM SET wal_level = logical"));
}

TEST_F(Misconfiguration, RoleWithoutReplicationIsRejectedWithTheFix) {
  Sql("DO $$ BEGIN CREATE ROLE walfeed_norepl LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; "
      "END $$");
  std::string conninfo = SharedPostgres().Conninfo(db_);
  conninfo.replace(conninfo.find("user=postgres"), 13, "user=walfeed_norepl");
  RunResult result = RunWalfeed(BaseArgs(conninfo));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("REPLICATION"));
}

// The README's least-privilege recipe works as written: a role with REPLICATION and SELECT on
// the published tables only (no superuser), the publication made by the tables' owner. The
// snapshot reads the existing rows, the stream follows, and a table outside the publication is
// never seen.
TEST_F(Misconfiguration, ARestrictedRoleWithItsOwnPublicationSnapshotsAndStreams) {
  const std::string role = absl::StrCat("walfeed_", db_);
  Sql("CREATE TABLE orders (id int PRIMARY KEY, customer text)");
  Sql("CREATE TABLE secrets (id int PRIMARY KEY, value text)");
  Sql("INSERT INTO orders SELECT g, 'c' || g FROM generate_series(1, 3) g");
  Sql(absl::StrCat("CREATE ROLE ", role, " LOGIN REPLICATION"));
  Sql(absl::StrCat("GRANT SELECT ON public.orders TO ", role));
  Sql("CREATE PUBLICATION orders_pub FOR TABLE public.orders");
  const std::vector<std::vector<std::string>> rights = Query(
      absl::StrCat("SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = '", role, "'"));
  ASSERT_EQ(rights, (std::vector<std::vector<std::string>>{{"f", "t"}}));

  WalfeedOptions options = Options();
  options.conninfo.replace(options.conninfo.find("user=postgres"), 13, "user=" + role);
  options.publication = "orders_pub";
  absl::StatusOr<std::unique_ptr<WalfeedProcess>> started = WalfeedProcess::Start(options);
  ASSERT_OK(started);
  walfeed_ = *std::move(started);
  Sql("INSERT INTO secrets VALUES (1, 'never in the feed')");
  Sql("INSERT INTO orders VALUES (4, 'c4')");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  EXPECT_EQ(KeyIds(*changes), IdRange(1, 4));
  for (const v1::Change& change : *changes) {
    EXPECT_EQ(change.table(), "orders");
    const int64_t id = FindColumn(change.key(), "id")->int_();
    EXPECT_EQ(change.op(), id <= 3 ? v1::Change::READ : v1::Change::INSERT) << id;
  }
}

TEST_F(Misconfiguration, SlotInUseByAnotherProcessIsRejectedAndTheOwnerKeepsStreaming) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed();
  Sql("INSERT INTO t VALUES (1)");
  std::vector<std::string> args = BaseArgs(SharedPostgres().Conninfo(db_));
  args[3] = dir_ + "/second";
  RunResult result = RunWalfeed(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("in use by another process"));
  EXPECT_THAT(result.output, HasSubstr("--slot"));
  // The first walfeed still has everything and still streams.
  Sql("INSERT INTO t VALUES (2)");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  EXPECT_EQ(changes->size(), 2u);
}

TEST_F(Misconfiguration, DataDirectoryOfAnotherDatabaseIsRefusedAndKept) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed();
  Sql("INSERT INTO t VALUES (1)");
  Sql(MarkerSql("end"));
  ASSERT_OK(ReadUntilMarker(*walfeed_->NewStub(), {}, "end"));
  EXPECT_EQ(walfeed_->Terminate(), 0);

  absl::StatusOr<std::string> other = SharedPostgres().CreateDatabase("other");
  ASSERT_OK(other);
  std::vector<std::string> args = BaseArgs(SharedPostgres().Conninfo(*other));
  args[5] = *other;  // its own slot
  RunResult result = RunWalfeed(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("use a new --data-dir"));
  EXPECT_FALSE(SlotExists(*other)) << "a refused start leaves no slot behind";

  // The refused start changed nothing: the first feed is all there.
  StartWalfeed();
  absl::StatusOr<std::vector<v1::Change>> changes = ReadToHead(*walfeed_->NewStub(), {});
  ASSERT_OK(changes);
  EXPECT_EQ(changes->size(), 2u);
}

TEST_F(Misconfiguration, NamedPublicationThatDoesNotExistIsAClearError) {
  std::vector<std::string> args = BaseArgs(SharedPostgres().Conninfo(db_));
  args.push_back("--publication");
  args.push_back("orders_only");
  RunResult result = RunWalfeed(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("publication 'orders_only' does not exist"));
  EXPECT_THAT(result.output, HasSubstr("CREATE PUBLICATION"));
  EXPECT_FALSE(SlotExists(slot_)) << "nothing was created";

  // With the publication in place, only its table is streamed.
  Sql("CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY)");
  Sql("CREATE PUBLICATION orders_only FOR TABLE orders");
  StartWalfeed({"--publication", "orders_only"});
  Sql("INSERT INTO other VALUES (1); INSERT INTO orders VALUES (2)");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_OK(changes);
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].table(), "orders");
}

// Under --on-slot-lost=fail (the default resynchronises: resync_test.cc).
TEST_F(Misconfiguration, SlotDroppedUnderANonEmptyLogIsRefusedNotSilentlyRecreated) {
  Sql("CREATE TABLE t (id int PRIMARY KEY)");
  StartWalfeed();
  Sql("INSERT INTO t VALUES (1)");
  Sql(MarkerSql("end"));
  ASSERT_OK(ReadUntilMarker(*walfeed_->NewStub(), {}, "end"));
  EXPECT_EQ(walfeed_->Terminate(), 0);
  Sql(absl::StrCat("SELECT pg_drop_replication_slot('", slot_, "')"));
  Sql("INSERT INTO t VALUES (2)");  // would be lost to a new slot
  std::vector<std::string> args = BaseArgs(SharedPostgres().Conninfo(db_));
  args.insert(args.end(), {"--on-slot-lost", "fail"});
  RunResult result = RunWalfeed(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("does not exist"));
  EXPECT_THAT(result.output, HasSubstr("this data directory holds changes up to LSN"));
  EXPECT_FALSE(SlotExists(slot_)) << "no slot was created behind the user's back";
}

TEST_F(Misconfiguration, UnreachablePostgresIsAClearError) {
  RunResult result = RunWalfeed(BaseArgs(absl::StrCat(
      "host=127.0.0.1 port=", FreePort(), " user=postgres dbname=postgres connect_timeout=5")));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("cannot connect to PostgreSQL"));
}

TEST_F(Misconfiguration, PasswordNeverAppearsInTheOutput) {
  RunResult result = RunWalfeed(BaseArgs(absl::StrCat(
      "host=127.0.0.1 port=", FreePort(), " user=postgres password=s3cr3t-pw dbname=postgres")));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, ::testing::Not(HasSubstr("s3cr3t-pw")));
}

TEST_F(Misconfiguration, BadFlagsExitWithUsageErrors) {
  RunResult missing = RunWalfeed({"--data-dir", dir_});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("--pg"));

  RunResult unknown = RunWalfeed({"--pg", "x", "--frobnicate", "1"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.output, HasSubstr("unknown flag --frobnicate"));

  RunResult slot = RunWalfeed({"--pg", "x", "--slot", "Bad-Slot"});
  EXPECT_EQ(slot.exit_code, 2);
  EXPECT_THAT(slot.output, HasSubstr("slot name 'Bad-Slot' is invalid"));

  RunResult duration = RunWalfeed({"--pg", "x", "--progress-interval", "-3s"});
  EXPECT_EQ(duration.exit_code, 2);
  EXPECT_THAT(duration.output, HasSubstr("positive duration"));

  RunResult lag = RunWalfeed({"--pg", "x", "--compaction-lag", "-1s"});
  EXPECT_EQ(lag.exit_code, 2);
  EXPECT_THAT(lag.output, HasSubstr("--compaction-lag='-1s' is not a duration of zero or more"));
  RunResult retention = RunWalfeed({"--pg", "x", "--delete-retention", "soon"});
  EXPECT_EQ(retention.exit_code, 2);
  EXPECT_THAT(retention.output, HasSubstr("--delete-retention='soon'"));

  RunResult help = RunWalfeed({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* setting : {"--pg", "WALFEED_PG", "--listen", "127.0.0.1:50051", "--data-dir",
                              "--slot", "--publication", "--progress-interval", "--log-level"}) {
    EXPECT_THAT(help.output, HasSubstr(setting));
  }
}

TEST_F(Misconfiguration, EnvironmentVariablesConfigureAndFlagsWin) {
  RunResult bad_env = RunCommand({WalfeedBinary(), "--pg", "x"}, absl::Seconds(10),
                                 {"WALFEED_PROGRESS_INTERVAL=soon"});
  EXPECT_EQ(bad_env.exit_code, 2);
  EXPECT_THAT(bad_env.output, HasSubstr("environment variable WALFEED_PROGRESS_INTERVAL"));

  RunResult env_slot =
      RunCommand({WalfeedBinary(), "--pg", "x"}, absl::Seconds(10), {"WALFEED_SLOT=Bad-Slot"});
  EXPECT_EQ(env_slot.exit_code, 2);
  EXPECT_THAT(env_slot.output, HasSubstr("'Bad-Slot'"));

  // The flag replaces the bad value from the environment, so walfeed gets as far as connecting.
  RunResult flag_wins =
      RunCommand({WalfeedBinary(), "--slot", "good_slot", "--data-dir", dir_ + "/flag", "--listen",
                  absl::StrCat("127.0.0.1:", FreePort()), "--pg",
                  absl::StrCat("host=127.0.0.1 port=", FreePort(), " dbname=x connect_timeout=5")},
                 absl::Seconds(30), {"WALFEED_SLOT=Bad-Slot"});
  EXPECT_EQ(flag_wins.exit_code, 1);
  EXPECT_THAT(flag_wins.output, HasSubstr("cannot connect to PostgreSQL"));
}

TEST_F(Misconfiguration, DataDirectoryThatIsAFileIsAClearError) {
  const std::string file = dir_ + "/not-a-dir";
  ASSERT_EQ(RunCommand({"touch", file}, absl::Seconds(5)).exit_code, 0);
  std::vector<std::string> args = BaseArgs(SharedPostgres().Conninfo(db_));
  args[3] = file;
  RunResult result = RunWalfeed(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("cannot open the change log"));
}

}  // namespace
}  // namespace walfeed::test
