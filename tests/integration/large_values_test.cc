// Rows and messages of any size reach every default client (gRPC's 4 MiB receive limit): large
// values travel out of line as references, each client this project ships fetches them through
// ChangeFeed.ReadValue and hands over the value whole, and compaction never strands one.
#include <google/protobuf/util/json_util.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/subscriber.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/buf_curl.h"
#include "tests/support/change_helpers.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

// 20 MiB of text that does not compress to nothing: 655,360 md5 digests.
constexpr char kTwentyMib[] =
    "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 655360) g)";

class LargeValues : public WalfeedTest {
 protected:
  void SetUp() override {
    WalfeedTest::SetUp();
    Sql("CREATE TABLE big (id int PRIMARY KEY, n int, v text, b bytea)");
    StartWalfeed({"--compaction-interval", "off"});
  }

  // Every response message of a stream read to the head by a default gRPC client.
  std::vector<v1::SubscribeResponse> RawResponses() {
    std::unique_ptr<v1::ChangeFeed::Stub> stub = walfeed_->NewStub();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(3));
    v1::SubscribeRequest request;
    request.set_stop_at_head(true);
    auto reader = stub->Subscribe(&context, request);
    std::vector<v1::SubscribeResponse> responses;
    v1::SubscribeResponse response;
    while (reader->Read(&response)) responses.push_back(response);
    const grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return responses;
  }

  // The value at `ref` read with ReadValue from `offset`; the status's code when it fails.
  std::string ReadValue(const std::string& ref, uint64_t offset = 0,
                        grpc::StatusCode* code = nullptr) {
    std::unique_ptr<v1::ChangeFeed::Stub> stub = walfeed_->NewStub();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(3));
    v1::ReadValueRequest request;
    request.set_ref(ref);
    request.set_offset(offset);
    auto reader = stub->ReadValue(&context, request);
    std::string value;
    v1::ValueChunk chunk;
    while (reader->Read(&chunk)) {
      EXPECT_EQ(chunk.offset(), offset + value.size());
      EXPECT_LE(chunk.data().size(), 256u << 10);
      value += chunk.data();
    }
    const grpc::Status status = reader->Finish();
    if (code != nullptr) *code = status.error_code();
    if (!status.ok()) return status.error_message();
    return value;
  }

  RunResult BufCurl(const std::string& method, const std::string& body) {
    return test::BufCurl(walfeed_->address(), method, body, absl::Seconds(120));
  }

  std::string Value(const std::string& sql) { return Query(sql)[0][0]; }

  // Runs a Subscriber with default options from the start to the head.
  std::vector<v1::Change> SubscribeToHead(
      const std::function<void(const v1::Change&)>& each = nullptr, int* retries = nullptr) {
    SubscriberOptions options;
    options.server = walfeed_->address();
    options.request.set_stop_at_head(true);
    options.min_backoff = absl::Milliseconds(50);
    Subscriber subscriber(options);
    std::vector<v1::Change> changes;
    const absl::Status ended = subscriber.Run(
        [&](const v1::Change& change) {
          changes.push_back(change);
          if (each) each(change);
          return absl::OkStatus();
        },
        nullptr,
        [retries](const absl::Status&, absl::Duration) {
          if (retries != nullptr) ++*retries;
        });
    EXPECT_OK(ended);
    return changes;
  }
};

const v1::Change* RowWithId(const std::vector<v1::Change>& changes, int64_t id,
                            v1::Change::Op op = v1::Change::INSERT) {
  for (const v1::Change& change : changes) {
    const v1::Column* key = FindColumn(change.key(), "id");
    if (change.op() == op && key != nullptr && key->int_() == id) return &change;
  }
  return nullptr;
}

TEST_F(LargeValues, EveryDefaultClientReadsPastA20MibRowAndGetsItWhole) {
  Sql("INSERT INTO big VALUES (1, 0, 'small', NULL)");
  Sql(absl::StrCat("INSERT INTO big SELECT 2, 0, ", kTwentyMib, ", NULL"));
  // 0.99 MB, then 3.3 MB: these once made one 4.29 MB message.
  Sql("INSERT INTO big VALUES (3, 0, repeat('y', 990000), NULL)");
  Sql("INSERT INTO big VALUES (4, 0, repeat('z', 3300000), decode(repeat('ff00', 300000), "
      "'hex'))");
  Sql("INSERT INTO big VALUES (5, 0, 'after', NULL)");
  ASSERT_OK(CommitMarkerAndRead("written"));
  const std::string twenty = Value("SELECT v FROM big WHERE id = 2");
  ASSERT_EQ(twenty.size(), 20u << 20);

  // A raw default client: every message far below 4 MiB, the large values as references.
  std::vector<v1::Change> raw;
  for (const v1::SubscribeResponse& response : RawResponses()) {
    EXPECT_LE(response.ByteSizeLong(), (1u << 20) + (64u << 10));
    for (const v1::Change& change : response.changes()) raw.push_back(change);
  }
  const v1::Change* second = RowWithId(raw, 2);
  ASSERT_NE(second, nullptr);
  const v1::Column* v = FindColumn(second->after(), "v");
  ASSERT_EQ(v->value_case(), v1::Column::kLarge) << v->DebugString();
  EXPECT_EQ(v->large().size(), twenty.size());
  EXPECT_EQ(v->large().kind(), v1::LargeValue::TEXT);
  EXPECT_EQ(v->large().ref(), absl::StrCat(second->cursor(), "/after/2"));
  ASSERT_NE(RowWithId(raw, 5), nullptr) << "the rows after it arrive too";

  // ReadValue: whole, from an offset, and clear errors.
  EXPECT_TRUE(ReadValue(v->large().ref()) == twenty);
  EXPECT_EQ(ReadValue(v->large().ref(), twenty.size() - 7), twenty.substr(twenty.size() - 7));
  grpc::StatusCode code;
  EXPECT_THAT(ReadValue("0/16B3748", 0, &code), HasSubstr("is malformed"));
  EXPECT_EQ(code, grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ReadValue(v->large().ref(), twenty.size() + 1, &code), HasSubstr("past the end"));
  EXPECT_EQ(code, grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(ReadValue(absl::StrCat(second->cursor(), "/after/1"), 0, &code),
              HasSubstr("no value is stored out of line"));
  EXPECT_EQ(code, grpc::StatusCode::NOT_FOUND);

  // The C++ Subscriber with default options hands over whole values.
  const std::vector<v1::Change> whole = SubscribeToHead();
  ASSERT_NE(RowWithId(whole, 2), nullptr);
  EXPECT_TRUE(FindColumn(RowWithId(whole, 2)->after(), "v")->text() == twenty);
  const v1::Change* fourth = RowWithId(whole, 4);
  ASSERT_NE(fourth, nullptr);
  EXPECT_EQ(FindColumn(fourth->after(), "v")->text(), std::string(3300000, 'z'));
  EXPECT_EQ(FindColumn(fourth->after(), "b")->bytes().size(), 600000u);
  EXPECT_EQ(FindColumn(RowWithId(whole, 3)->after(), "v")->text(), std::string(990000, 'y'));

  // walfeedctl prints it whole, or as a reference when asked.
  const RunResult ctl = RunCommand(
      {WalfeedctlBinary(), "subscribe", "--server", walfeed_->address(), "--stop-at-head"},
      absl::Seconds(120));
  ASSERT_EQ(ctl.exit_code, 0) << ctl.output.substr(0, 2000);
  bool found = false;
  for (absl::string_view line : absl::StrSplit(ctl.output, '\n', absl::SkipEmpty())) {
    v1::Change change;
    ASSERT_OK(google::protobuf::util::JsonStringToMessage(std::string(line), &change));
    if (change.cursor() == second->cursor()) {
      found = true;
      EXPECT_TRUE(FindColumn(change.after(), "v")->text() == twenty);
    }
  }
  EXPECT_TRUE(found);
  const RunResult refs =
      RunCommand({WalfeedctlBinary(), "subscribe", "--server", walfeed_->address(),
                  "--stop-at-head", "--format", "text", "--large-values", "ref"},
                 absl::Seconds(120));
  ASSERT_EQ(refs.exit_code, 0) << refs.output;
  EXPECT_THAT(refs.output,
              HasSubstr(absl::StrCat("v=<large 20971520 bytes at ", v->large().ref(), ">")));

  // buf curl (grpcurl's equivalent): the feed with references, then the value in chunks.
  const RunResult feed =
      BufCurl("walfeed.v1.ChangeFeed/Subscribe", R"({"fromLsn":"0","stopAtHead":true})");
  ASSERT_EQ(feed.exit_code, 0) << feed.output.substr(0, 2000);
  EXPECT_THAT(feed.output, HasSubstr(absl::StrCat(R"("ref": ")", v->large().ref(), "\"")));
  const RunResult chunks = BufCurl("walfeed.v1.ChangeFeed/ReadValue",
                                   absl::StrCat(R"({"ref":")", v->large().ref(), R"("})"));
  ASSERT_EQ(chunks.exit_code, 0) << chunks.output.substr(0, 2000);
  std::string fetched;
  for (absl::string_view piece : absl::StrSplit(chunks.output, "\"data\": \"")) {
    if (fetched.empty() && piece.find("\"offset\"") == absl::string_view::npos &&
        piece.size() < 100) {
      continue;  // before the first chunk
    }
    std::string decoded;
    ASSERT_TRUE(absl::Base64Unescape(piece.substr(0, piece.find('"')), &decoded));
    fetched += decoded;
  }
  EXPECT_TRUE(fetched == twenty) << fetched.size();
}

TEST_F(LargeValues, AMessageWithLargeContentArrivesWhole) {
  Sql("SELECT pg_logical_emit_message(true, 'bulk', repeat('m', 5000000))");
  Sql("SELECT pg_logical_emit_message(false, 'bulk', repeat('n', 3000000))");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("done");
  ASSERT_OK(changes);
  ASSERT_EQ(changes->size(), 2u);
  EXPECT_EQ((*changes)[0].message().content(), std::string(5000000, 'm'));
  EXPECT_EQ((*changes)[1].message().content(), std::string(3000000, 'n'));
}

TEST_F(LargeValues, AnUnchangedLargeValueIsFilledAndOutlivesTheRowsOlderChanges) {
  Sql(absl::StrCat("INSERT INTO big SELECT 2, 0, ", kTwentyMib, ", NULL"));
  Sql("UPDATE big SET n = 1 WHERE id = 2");  // v is left out: it did not change
  const std::string twenty = Value("SELECT v FROM big WHERE id = 2");
  absl::StatusOr<std::vector<v1::Change>> changes = CommitMarkerAndRead("updated");
  ASSERT_OK(changes);
  const v1::Change* update = RowWithId(*changes, 2, v1::Change::UPDATE);
  ASSERT_NE(update, nullptr);
  EXPECT_TRUE(FindColumn(update->after(), "v")->text() == twenty);

  const RunResult compacted = RunCommand(
      {WalfeedctlBinary(), "compact", "--server", walfeed_->address(), "--compaction-lag", "0s"},
      absl::Seconds(120));
  ASSERT_EQ(compacted.exit_code, 0) << compacted.output;
  absl::StatusOr<std::vector<v1::Change>> after = ReadToHead(*walfeed_->NewStub(), {});
  ASSERT_OK(after);
  EXPECT_EQ(RowWithId(*after, 2, v1::Change::INSERT), nullptr) << "compacted away";
  ASSERT_NE(RowWithId(*after, 2, v1::Change::UPDATE), nullptr);
  EXPECT_TRUE(FindColumn(RowWithId(*after, 2, v1::Change::UPDATE)->after(), "v")->text() == twenty);
}

// Compaction removes a change after it was sent but before its value was fetched: the
// Subscriber reads on as if compaction had run first (the newer change of the row follows),
// never hands over a change without its value, never stops.
TEST_F(LargeValues, ASubscriberReadsOnWhenAChangeIsCompactedBeforeItsValueIsFetched) {
  Sql("INSERT INTO big VALUES (1, 0, 'first', NULL)");
  Sql("INSERT INTO big VALUES (2, 0, repeat('v', 2000000), NULL)");
  Sql("UPDATE big SET v = 'now short' WHERE id = 2");
  Sql(MarkerSql("end"));
  ASSERT_OK(ReadUntilMarker(*walfeed_->NewStub(), {}, "end"));
  int retries = 0;
  bool compacted = false;
  const std::vector<v1::Change> changes = SubscribeToHead(
      [&](const v1::Change& change) {
        if (compacted) return;
        compacted = true;
        // While the stream holds the insert of row 2 unread: remove it.
        const RunResult run = RunCommand({WalfeedctlBinary(), "compact", "--server",
                                          walfeed_->address(), "--compaction-lag", "0s"},
                                         absl::Seconds(120));
        EXPECT_EQ(run.exit_code, 0) << run.output;
        EXPECT_EQ(FindColumn(change.key(), "id")->int_(), 1);
      },
      &retries);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].op(), v1::Change::INSERT);
  EXPECT_EQ(changes[1].op(), v1::Change::UPDATE);
  EXPECT_EQ(FindColumn(changes[1].after(), "v")->text(), "now short");
  EXPECT_EQ(changes[2].op(), v1::Change::MESSAGE);
  EXPECT_EQ(retries, 1);
}

}  // namespace
}  // namespace walfeed::test
