// The pure parts of push delivery: signatures, the delivery policy, Retry-After, request bodies
// and headers, settings checks.
#include <google/protobuf/util/json_util.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/push/delivery_policy.h"
#include "server/push/http_poster.h"
#include "server/push/push_request.h"
#include "server/push/push_settings.h"
#include "server/push/webhook_signature.h"
#include "tests/support/transactions.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;

TEST(WebhookSignature, HmacMatchesRfc4231) {
  // RFC 4231, test case 2.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WebhookSignature, SignsTimestampDotBody) {
  const absl::Time at = absl::FromUnixSeconds(1700000000);
  EXPECT_EQ(SignPush("s3cret", at, "{\"a\":1}"),
            "t=1700000000,v1=" + HmacSha256Hex("s3cret", "1700000000.{\"a\":1}"));
  EXPECT_NE(SignPush("s3cret", at, "{\"a\":2}"), SignPush("s3cret", at, "{\"a\":1}"));
  EXPECT_NE(SignPush("other", at, "{\"a\":1}"), SignPush("s3cret", at, "{\"a\":1}"));
}

HttpAnswer Answer(int status, std::string body = "", std::optional<absl::Duration> retry = {}) {
  HttpAnswer answer;
  answer.status = status;
  answer.body_start = std::move(body);
  answer.retry_after = retry;
  if (status == 0) answer.error = "Connection refused";
  return answer;
}

TEST(DeliveryPolicy, TwoHundredsDeliver) {
  for (int status : {200, 201, 202, 204, 299}) {
    EXPECT_EQ(Decide(Answer(status), 1, 0.5).next, DeliveryDecision::Next::kDelivered) << status;
  }
}

TEST(DeliveryPolicy, ServerErrorsTimeoutsAndThrottlingRetry) {
  for (int status : {0, 408, 409, 429, 500, 502, 503, 504}) {
    const DeliveryDecision decision = Decide(Answer(status), 1, 1.0);
    EXPECT_EQ(decision.next, DeliveryDecision::Next::kRetry) << status;
    EXPECT_EQ(decision.wait, kFirstBackoff) << status;
  }
  EXPECT_THAT(Decide(Answer(0), 1, 0).error, HasSubstr("Connection refused"));
}

TEST(DeliveryPolicy, OtherAnswersPauseWithTheBodysStart) {
  for (int status : {301, 400, 401, 403, 404, 410, 413, 422}) {
    EXPECT_EQ(Decide(Answer(status), 1, 0.5).next, DeliveryDecision::Next::kPause) << status;
  }
  const DeliveryDecision decision = Decide(Answer(422, "  bad\nfield \xff 'qty'\n"), 1, 0.5);
  EXPECT_EQ(decision.error, "HTTP 422: bad field \xEF\xBF\xBD 'qty'");
}

TEST(DeliveryPolicy, RetryAfterIsHonouredAndCapped) {
  EXPECT_EQ(Decide(Answer(429, "", absl::Seconds(7)), 5, 0.5).wait, absl::Seconds(7));
  EXPECT_EQ(Decide(Answer(503, "", absl::Hours(30)), 1, 0.5).wait, kMaxRetryAfter);
  // "Retry-After: 0" does not make a tight loop.
  EXPECT_EQ(Decide(Answer(429, "", absl::ZeroDuration()), 3, 1.0).wait, kFirstBackoff);
}

TEST(DeliveryPolicy, BackoffDoublesWithJitterUpToTheCap) {
  EXPECT_EQ(Backoff(1, 1.0), absl::Milliseconds(250));
  EXPECT_EQ(Backoff(1, 0.0), absl::Milliseconds(125));
  EXPECT_EQ(Backoff(3, 1.0), absl::Milliseconds(1000));
  EXPECT_EQ(Backoff(40, 1.0), kMaxBackoff);
  EXPECT_EQ(Backoff(1000000, 0.0), kMaxBackoff / 2);
}

TEST(RetryAfter, SecondsAndDates) {
  const absl::Time now = absl::FromUnixSeconds(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), absl::Seconds(30));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
}

v1::PushBatch Batch(int changes) {
  v1::PushBatch batch;
  const Transaction txn = test::MakeTransaction(0x1000, changes);
  for (const v1::Change& change : txn.changes) *batch.add_changes() = change;
  batch.set_log_id("log-1");
  batch.set_first_cursor(txn.changes.front().cursor());
  batch.set_last_cursor(txn.changes.back().cursor());
  return batch;
}

TEST(PushRequest, JsonBodyIsAPushBatchWithItsKey) {
  v1::PushSubscription settings;
  settings.set_name("orders");
  v1::PushBatch batch = Batch(3);
  batch.set_generation(4);
  const std::string body = PushBody(settings, &batch, "shop", absl::Now());
  v1::PushBatch parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(body, &parsed).ok()) << body;
  EXPECT_EQ(parsed.subscription(), "orders");
  EXPECT_EQ(parsed.idempotency_key(), "log-1.orders.4.0/1000:0.0/1000:2");
  EXPECT_EQ(parsed.changes_size(), 3);
  EXPECT_EQ(parsed.changes(2).cursor(), "0/1000:2");
}

TEST(PushRequest, DebeziumBodyIsOneEnvelopeOrAnArray) {
  v1::PushSubscription settings;
  settings.set_name("dbz");
  settings.set_format(v1::PushSubscription::DEBEZIUM);
  settings.set_batch_changes(1);
  v1::PushBatch one = Batch(1);
  const std::string single = PushBody(settings, &one, "shop", absl::Now());
  EXPECT_EQ(single.front(), '{');
  EXPECT_THAT(single, HasSubstr("\"op\":\"c\""));
  EXPECT_THAT(single, HasSubstr("\"db\":\"shop\""));
  settings.set_batch_changes(10);
  v1::PushBatch three = Batch(3);
  const std::string array = PushBody(settings, &three, "shop", absl::Now());
  EXPECT_EQ(array.front(), '[');
  EXPECT_EQ(array.back(), ']');
}

TEST(PushRequest, HeadersCarryTheKeyCursorsAttemptAndSignature) {
  v1::PushSubscription settings;
  settings.set_name("orders");
  settings.set_secret("k");
  (*settings.mutable_headers())["Authorization"] = "Bearer t";
  v1::PushBatch batch = Batch(2);
  const std::string body = PushBody(settings, &batch, "", absl::Now());
  const absl::Time at = absl::FromUnixSeconds(1700000000);
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : PushHeaders(settings, batch, body, 3, at)) headers[name] = value;
  EXPECT_EQ(headers["Idempotency-Key"], "log-1.orders.0.0/1000:0.0/1000:1");
  EXPECT_EQ(headers["Walfeed-First-Cursor"], "0/1000:0");
  EXPECT_EQ(headers["Walfeed-Last-Cursor"], "0/1000:1");
  EXPECT_EQ(headers["Walfeed-Changes"], "2");
  EXPECT_EQ(headers["Walfeed-Attempt"], "3");
  EXPECT_EQ(headers["Walfeed-Signature"], SignPush("k", at, body));
  EXPECT_EQ(headers["Authorization"], "Bearer t");
  settings.clear_secret();
  for (const auto& [name, value] : PushHeaders(settings, batch, body, 1, at)) {
    EXPECT_NE(name, "Walfeed-Signature");
  }
}

TEST(PushSettings, DefaultsAreFilledIn) {
  v1::PushSubscription settings;
  settings.set_name("a");
  settings.set_url("http://127.0.0.1:8000/hook");
  absl::StatusOr<v1::PushSubscription> complete = CompletePushSettings(settings);
  ASSERT_TRUE(complete.ok()) << complete.status();
  EXPECT_EQ(complete->format(), v1::PushSubscription::JSON);
  EXPECT_EQ(complete->batch_changes(), kDefaultPushBatchChanges);
  EXPECT_EQ(complete->batch_bytes(), kDefaultPushBatchBytes);
  EXPECT_EQ(complete->timeout_ms(), kDefaultPushTimeoutMs);
  settings.set_format(v1::PushSubscription::DEBEZIUM);
  EXPECT_EQ(CompletePushSettings(settings)->batch_changes(), 1u);
}

TEST(PushSettings, BadSettingsAreRefusedWithASentence) {
  const auto refused = [](const std::function<void(v1::PushSubscription*)>& spoil) {
    v1::PushSubscription settings;
    settings.set_name("a");
    settings.set_url("https://example.com/hook");
    spoil(&settings);
    absl::StatusOr<v1::PushSubscription> complete = CompletePushSettings(settings);
    EXPECT_TRUE(absl::IsInvalidArgument(complete.status())) << complete.status();
    return std::string(complete.status().message());
  };
  EXPECT_THAT(refused([](auto* s) { s->set_name("a b"); }), HasSubstr("name"));
  EXPECT_THAT(refused([](auto* s) { s->set_url("ftp://x"); }), HasSubstr("http://"));
  EXPECT_THAT(refused([](auto* s) { s->set_url("http://"); }), HasSubstr("host"));
  EXPECT_THAT(refused([](auto* s) { s->set_url("http://a b/"); }), HasSubstr("no spaces"));
  EXPECT_THAT(refused([](auto* s) { s->set_batch_changes(10001); }), HasSubstr("batch_changes"));
  EXPECT_THAT(refused([](auto* s) { s->set_batch_bytes(10); }), HasSubstr("batch_bytes"));
  EXPECT_THAT(refused([](auto* s) { s->set_timeout_ms(5); }), HasSubstr("timeout_ms"));
  EXPECT_THAT(refused([](auto* s) { (*s->mutable_headers())["Bad Name"] = "x"; }),
              HasSubstr("HTTP token"));
  EXPECT_THAT(refused([](auto* s) { (*s->mutable_headers())["X-A"] = "a\r\nX-B: b"; }),
              HasSubstr("control character"));
  EXPECT_THAT(refused([](auto* s) { (*s->mutable_headers())["X-A"] = "a\x01"; }),
              HasSubstr("control character"));
  EXPECT_THAT(refused([](auto* s) { (*s->mutable_headers())["X-A"] = ""; }), HasSubstr("1 to"));
  EXPECT_THAT(refused([](auto* s) { s->set_url("http://[::1/"); }), HasSubstr("http://"));
  EXPECT_THAT(refused([](auto* s) { (*s->mutable_headers())["Idempotency-Key"] = "x"; }),
              HasSubstr("set by walfeed"));
  EXPECT_THAT(refused([](auto* s) { (*s->mutable_headers())["walfeed-attempt"] = "x"; }),
              HasSubstr("walfeed's own"));
  EXPECT_THAT(refused([](auto* s) { s->set_ca_file("/no/such/ca.pem"); }), HasSubstr("CA file"));
  EXPECT_THAT(refused([](auto* s) { s->set_secret_file("/no/such/secret"); }),
              HasSubstr("secret file"));
  EXPECT_THAT(refused([](auto* s) {
                s->set_start_cursor("0/10:0");
                s->set_from_head(true);
              }),
              HasSubstr("not both"));
  EXPECT_THAT(refused([](auto* s) { s->set_start_cursor("nope"); }), HasSubstr("start_cursor"));
}

}  // namespace
}  // namespace walfeed
