// Source-side filters: excluded tables and columns never reach the log, in the snapshot and in
// the stream alike, and a filter naming something that does not exist is a clear error.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

class Filters : public WalfeedTest {};

TEST_F(Filters, ExcludedTablesAndColumnsNeverReachTheLog) {
  Sql("CREATE SCHEMA shop");
  Sql("CREATE TABLE shop.users (id int PRIMARY KEY, name text, ssn text)");
  Sql("CREATE TABLE shop.orders (id int PRIMARY KEY, total numeric)");
  Sql("CREATE TABLE shop.audit_log (id int PRIMARY KEY, note text)");
  Sql("CREATE TABLE public.other (id int PRIMARY KEY)");
  Sql("INSERT INTO shop.users VALUES (1, 'ada', 'SECRET-111')");
  Sql("INSERT INTO shop.audit_log VALUES (1, 'AUDIT-SNAPSHOT')");
  StartWalfeed({"--tables", "shop.*", "--exclude-tables", "shop.audit_*", "--exclude-columns",
                "shop.users.ssn"});
  Sql("INSERT INTO shop.users VALUES (2, 'grace', 'SECRET-222')");
  Sql("UPDATE shop.users SET ssn = 'SECRET-333', name = 'ada l.' WHERE id = 1");
  Sql("INSERT INTO shop.orders VALUES (1, 9.5)");
  Sql("INSERT INTO shop.audit_log VALUES (2, 'AUDIT-STREAM')");
  Sql("INSERT INTO public.other VALUES (1)");
  Sql("TRUNCATE shop.audit_log, shop.orders");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("end");
  ASSERT_TRUE(changes.ok()) << changes.status() << walfeed_->Log();
  std::vector<std::string> seen;
  for (const v1::Change& change : *changes) {
    seen.push_back(
        absl::StrCat(v1::Change::Op_Name(change.op()), " ", change.schema(), ".", change.table()));
    const std::string bytes = change.SerializeAsString();
    EXPECT_EQ(bytes.find("SECRET"), std::string::npos) << "an excluded column's value leaked";
    EXPECT_EQ(bytes.find("ssn"), std::string::npos) << "an excluded column's name leaked";
    EXPECT_EQ(bytes.find("AUDIT"), std::string::npos) << "an excluded table's row leaked";
  }
  EXPECT_THAT(seen,
              ::testing::ElementsAre("READ shop.users", "INSERT shop.users", "UPDATE shop.users",
                                     "INSERT shop.orders", "TRUNCATE shop.orders"));
  // The feed describes only the captured tables, and a subscriber cannot filter on the others.
  const v1::FeedInfo info = FeedInfo();
  EXPECT_THAT(info.tables(), ::testing::ElementsAre("shop.orders", "shop.users"));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::SubscribeRequest request;
  request.add_tables("shop.audit_log");
  auto reader = walfeed_->NewStub()->Subscribe(&context, request);
  v1::SubscribeResponse response;
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(Filters, RenamingAnExcludedColumnStopsTheStreamInsteadOfLeakingIt) {
  Sql("CREATE TABLE users (id int PRIMARY KEY, name text, ssn text)");
  StartWalfeed({"--exclude-columns", "users.ssn"});
  Sql("INSERT INTO users VALUES (1, 'ada', 'SECRET-1')");
  Sql(MarkerSql("first"));
  ASSERT_OK(ReadUntilMarker(*walfeed_->NewStub(), {}, "first"));
  Sql("ALTER TABLE users RENAME COLUMN ssn TO national_id");
  Sql("INSERT INTO users VALUES (2, 'grace', 'SECRET-2')");
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline &&
         walfeed_->Log().find("renamed or dropped") == std::string::npos) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_THAT(walfeed_->Log(), HasSubstr("update --exclude-columns"));
  absl::StatusOr<std::vector<v1::Change>> stored = ReadToHead(*walfeed_->NewStub(), {});
  ASSERT_OK(stored);
  for (const v1::Change& change : *stored) {
    EXPECT_EQ(change.SerializeAsString().find("SECRET"), std::string::npos);
  }
}

TEST_F(Filters, ExcludingAKeyColumnIsRefused) {
  Sql("CREATE TABLE users (id int PRIMARY KEY, name text)");
  std::vector<std::string> args = BaseArgs(Options().conninfo);
  for (const char* extra : {"--exclude-columns", "users.id"}) args.push_back(extra);
  RunResult result = RunWalfeed(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("a column of the table's key"));
}

TEST_F(Filters, ExcludingAColumnThatDoesNotExistIsAClearError) {
  Sql("CREATE TABLE users (id int PRIMARY KEY, name text)");
  std::vector<std::string> args = BaseArgs(Options().conninfo);
  for (const char* extra : {"--exclude-columns", "users.ssn"}) args.push_back(extra);
  RunResult result = RunWalfeed(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("public.users.ssn"));
  EXPECT_THAT(result.output, HasSubstr("no such column"));

  RunResult malformed =
      RunCommand({WalfeedBinary(), "--pg", "x", "--tables", "a.b.c"}, absl::Seconds(10));
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_THAT(malformed.output, HasSubstr("'a.b.c'"));
}

}  // namespace
}  // namespace walfeed::test
