// The tools a person uses on the feed: `buf curl` through server reflection (the grpcurl
// equivalent) and walfeedctl.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/position.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/buf_curl.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

class Tools : public WalfeedTest {
 protected:
  void SetUp() override {
    WalfeedTest::SetUp();
    Sql("CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance numeric)");
    StartWalfeed();
    Sql("INSERT INTO accounts VALUES (1, 'ada', 100.25), (2, 'grace', 7)");
    Sql("UPDATE accounts SET balance = 99.75 WHERE id = 1");
    Sql(MarkerSql("ready"));
    ASSERT_OK(ReadUntilMarker(*walfeed_->NewStub(), {}, "ready"));
  }

  RunResult BufCurl(const std::string& method, const std::string& body) {
    return test::BufCurl(walfeed_->address(), method, body);
  }

  RunResult Walfeedctl(std::vector<std::string> args) {
    args.insert(args.begin(), WalfeedctlBinary());
    return RunCommand(args, absl::Seconds(30));
  }

  std::vector<v1::Change> ParseLines(const std::string& output) {
    std::vector<v1::Change> changes;
    for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
      v1::Change change;
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &change).ok())
          << line;
      changes.push_back(change);
    }
    return changes;
  }
};

TEST_F(Tools, BufCurlReadsTheFeedThroughReflection) {
  RunResult result =
      BufCurl("walfeed.v1.ChangeFeed/Subscribe", R"({"fromLsn":"0","stopAtHead":true})");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr(R"("op": "INSERT")"));
  EXPECT_THAT(result.output, HasSubstr(R"("op": "UPDATE")"));
  EXPECT_THAT(result.output, HasSubstr(R"("text": "grace")"));
  EXPECT_THAT(result.output, HasSubstr(R"("numeric": "99.75")"));
  EXPECT_THAT(result.output, HasSubstr(R"("cursor": ")"));
}

TEST_F(Tools, BufCurlGetsFeedInfoAndHealth) {
  RunResult info = BufCurl("walfeed.v1.ChangeFeed/GetFeedInfo", "{}");
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_THAT(info.output, HasSubstr(absl::StrCat(R"("slot": ")", slot_, "\"")));
  EXPECT_THAT(info.output, HasSubstr("public.accounts"));

  RunResult health = BufCurl("grpc.health.v1.Health/Check", "{}");
  ASSERT_EQ(health.exit_code, 0) << health.output;
  EXPECT_THAT(health.output, HasSubstr("SERVING"));
}

TEST_F(Tools, BufCurlShowsTheStatusOfABadRequest) {
  RunResult result = BufCurl("walfeed.v1.ChangeFeed/Subscribe", R"({"cursor":"nonsense"})");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.output, HasSubstr("invalid_argument"));
  EXPECT_THAT(result.output, HasSubstr("cursor 'nonsense' is malformed"));
  EXPECT_THAT(result.output, HasSubstr("google.rpc.ErrorInfo")) << "AIP-193 details ride along";
}

TEST_F(Tools, BufCurlCompactsThroughTheAdminServiceAndGetsClearErrors) {
  RunResult compacted = BufCurl("walfeed.v1.Admin/Compact", R"({"compactionLag":"0s"})");
  ASSERT_EQ(compacted.exit_code, 0) << compacted.output;
  EXPECT_THAT(compacted.output, HasSubstr(R"("supersededRemoved": "1")"));  // the first update

  RunResult negative = BufCurl("walfeed.v1.Admin/Compact", R"({"deleteRetention":"-5s"})");
  EXPECT_NE(negative.exit_code, 0);
  EXPECT_THAT(negative.output, HasSubstr("invalid_argument"));
  EXPECT_THAT(negative.output, HasSubstr("delete_retention"));
}

TEST_F(Tools, WalfeedctlPrintsOneJsonObjectPerChange) {
  RunResult result = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--stop-at-head"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::vector<v1::Change> changes = ParseLines(result.output);
  ASSERT_EQ(changes.size(), 4u);  // two inserts, an update, the marker
  EXPECT_EQ(changes[0].after(1).text(), "ada");
  EXPECT_EQ(changes[2].op(), v1::Change::UPDATE);

  RunResult resumed = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--stop-at-head",
                                  "--cursor", changes[1].cursor()});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(ParseLines(resumed.output).size(), 2u);

  RunResult from_lsn = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--stop-at-head",
                                   "--from-lsn", FormatLsn(changes[2].lsn())});
  ASSERT_EQ(from_lsn.exit_code, 0) << from_lsn.output;
  EXPECT_EQ(ParseLines(from_lsn.output).size(), 2u);

  RunResult filtered = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--stop-at-head",
                                   "--table", "accounts", "--op", "update"});
  ASSERT_EQ(filtered.exit_code, 0) << filtered.output;
  EXPECT_EQ(ParseLines(filtered.output).size(), 1u);
}

TEST_F(Tools, WalfeedctlTextFormatPrintsOneReadableLinePerChange) {
  RunResult result = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--stop-at-head",
                                 "--format", "text", "--op", "INSERT"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::vector<std::string> lines = absl::StrSplit(result.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0],
              HasSubstr(R"(INSERT public.accounts [id=1] id=1 owner="ada" balance=100.25)"));
}

TEST_F(Tools, WalfeedctlDebeziumFormatPrintsDebeziumEnvelopes) {
  Sql("DELETE FROM accounts WHERE id = 2");
  Sql(MarkerSql("deleted"));
  ASSERT_OK(ReadUntilMarker(*walfeed_->NewStub(), {}, "deleted"));
  RunResult result = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--stop-at-head",
                                 "--format", "debezium", "--table", "accounts"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::vector<google::protobuf::Struct> events;
  for (absl::string_view line : absl::StrSplit(result.output, '\n', absl::SkipEmpty())) {
    google::protobuf::Struct event;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &event).ok())
        << line;
    events.push_back(event);
  }
  ASSERT_EQ(events.size(), 4u);  // two inserts, an update, a delete
  std::vector<std::string> ops;
  for (const auto& event : events) ops.push_back(event.fields().at("op").string_value());
  EXPECT_EQ(ops, (std::vector<std::string>{"c", "c", "u", "d"}));
  const auto& first = events[0].fields();
  EXPECT_EQ(first.at("after").struct_value().fields().at("owner").string_value(), "ada");
  EXPECT_EQ(first.at("after").struct_value().fields().at("balance").string_value(), "100.25");
  const auto& source = first.at("source").struct_value().fields();
  EXPECT_EQ(source.at("db").string_value(), db_);
  EXPECT_EQ(source.at("table").string_value(), "accounts");
  EXPECT_GT(source.at("lsn").number_value(), 0);
  EXPECT_GT(source.at("txId").number_value(), 0);
  EXPECT_EQ(events[3].fields().at("before").struct_value().fields().at("id").number_value(), 2);
  EXPECT_TRUE(events[3].fields().at("after").has_null_value());
}

TEST_F(Tools, WalfeedctlInfoPrintsTheFeedDescription) {
  RunResult result = Walfeedctl({"info", "--server", walfeed_->address()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("\"newestCursor\""));
  EXPECT_THAT(result.output, HasSubstr(db_));
  EXPECT_THAT(result.output, HasSubstr(absl::StrCat("\"logId\": \"", FeedInfo().log_id(), "\"")));
}

// --cursor-file keeps the log id beside the cursor; --log-id names it by hand. Either way a
// cursor of another log is refused with a non-zero exit and a sentence on what to do.
TEST_F(Tools, WalfeedctlKeepsTheLogIdWithTheCursorAndRefusesAnotherLogs) {
  const std::string log_id = FeedInfo().log_id();
  const std::string cursor_file = dir_ + "/ctl.cursor";
  RunResult first = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--stop-at-head",
                                "--cursor-file", cursor_file});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::vector<std::string> saved =
      absl::StrSplit(ReadFile(cursor_file), '\n', absl::SkipEmpty());
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[1], "log_id=" + log_id);

  RunResult by_hand = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--stop-at-head",
                                  "--cursor", saved[0], "--log-id", log_id});
  EXPECT_EQ(by_hand.exit_code, 0) << by_hand.output;
  RunResult other = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--stop-at-head",
                                "--cursor", saved[0], "--log-id", "another-log"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_THAT(other.output, HasSubstr("belongs to another log"));

  // The same file, as a rebuilt walfeed's log would see it.
  ASSERT_TRUE(WriteFile(cursor_file, absl::StrCat(saved[0], "\nlog_id=another-log\n")));
  RunResult refused = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--stop-at-head",
                                  "--cursor-file", cursor_file});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.output, HasSubstr("remove that file and read again from the start"));
}

TEST_F(Tools, WalfeedctlHealthSaysServingAndFailsWhenNothingListens) {
  RunResult serving = Walfeedctl({"health", "--server", walfeed_->address()});
  ASSERT_EQ(serving.exit_code, 0) << serving.output;
  EXPECT_THAT(serving.output, HasSubstr("SERVING"));

  RunResult down = Walfeedctl({"health", "--server", absl::StrCat("127.0.0.1:", FreePort())});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_THAT(down.output, HasSubstr("walfeedctl: "));
}

TEST_F(Tools, WalfeedctlRejectsBadInputClearly) {
  RunResult cursor = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--cursor", "12:3"});
  EXPECT_EQ(cursor.exit_code, 2);
  EXPECT_THAT(cursor.output, HasSubstr("cursor '12:3' is malformed"));

  RunResult lsn = Walfeedctl({"subscribe", "--from-lsn", "0/XYZ"});
  EXPECT_EQ(lsn.exit_code, 2);
  EXPECT_THAT(lsn.output, HasSubstr("LSN '0/XYZ' is malformed"));

  RunResult both = Walfeedctl({"subscribe", "--from-head", "--from-lsn", "0/1"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_THAT(both.output, HasSubstr("at most one of"));

  RunResult future = Walfeedctl(
      {"subscribe", "--server", walfeed_->address(), "--from-lsn", "FFFF/0", "--stop-at-head"});
  EXPECT_EQ(future.exit_code, 1);
  EXPECT_THAT(future.output, HasSubstr("beyond the end of PostgreSQL's WAL"));

  RunResult duration = Walfeedctl({"compact", "--delete-retention", "soon"});
  EXPECT_EQ(duration.exit_code, 2);
  EXPECT_THAT(duration.output, HasSubstr("--delete-retention needs a duration"));

  RunResult command = Walfeedctl({"frobnicate"});
  EXPECT_EQ(command.exit_code, 2);
  EXPECT_THAT(command.output, HasSubstr("unknown command"));

  RunResult table = Walfeedctl({"subscribe", "--server", walfeed_->address(), "--table", "nope"});
  EXPECT_EQ(table.exit_code, 1);
  EXPECT_THAT(table.output, HasSubstr("public.nope"));

  RunResult down = Walfeedctl({"info", "--server", absl::StrCat("127.0.0.1:", FreePort())});
  EXPECT_EQ(down.exit_code, 1);
}

}  // namespace
}  // namespace walfeed::test
