// HttpPoster against real receivers on loopback: plain HTTP/1.1 (tests/support/http_sink) and
// HTTPS (tests/push/tls_receiver.py, Python's TLS with openssl-made certificates): the CA it is
// given decides whom it trusts, and it asks for HTTP/2 in TLS's ALPN only where the README says
// it does.
#include "server/push/http_poster.h"

#include <csignal>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/http_sink.h"
#include "tests/support/process.h"
#include "tests/support/status_assertions.h"
#include "tests/support/test_certs.h"
#include "tests/support/wait.h"

namespace walfeed {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(HttpPoster, PlainHttpIsHttp11WithoutUpgradeOrExpect) {
  std::vector<test::HttpRequest> seen;
  absl::Mutex mu;
  test::HttpSink sink([&](const test::HttpRequest& request) {
    absl::MutexLock lock(&mu);
    seen.push_back(request);
    test::HttpResponse ok;
    ok.body = "ok";
    return ok;
  });
  std::atomic<bool> cancel{false};
  HttpPoster poster(&cancel);
  // A body above libcurl's 1 MiB threshold for "Expect: 100-continue".
  const std::string body(2 << 20, 'x');
  HttpPost post;
  post.url = sink.url("/hook");
  post.body = body;
  const HttpAnswer answer = poster.Post(post);
  sink.Stop();
  EXPECT_EQ(answer.status, 200) << answer.error;
  EXPECT_EQ(answer.http_version, "HTTP/1.1");
  absl::MutexLock lock(&mu);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].version, "HTTP/1.1");
  EXPECT_EQ(seen[0].body.size(), body.size());
  for (const char* header : {"upgrade", "http2-settings", "expect"}) {
    EXPECT_EQ(seen[0].headers.count(header), 0u) << header;
  }
}

class HttpPosterTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("walfeed-poster-tls");
    ASSERT_OK(test::MakeTestCertificates(dir_ + "/certs"));
  }
  void TearDown() override {
    if (receiver_.running()) receiver_.Stop(SIGTERM);
    test::RemoveTree(dir_);
  }

  // Starts tls_receiver.py offering `alpn` (comma-separated, in order of preference).
  void StartReceiver(const std::string& alpn) {
    const std::string port_file = dir_ + "/port";
    absl::StatusOr<test::ChildProcess> started = test::ChildProcess::Spawn(
        {"/usr/bin/python3", std::string(WALFEED_SOURCE_DIR) + "/tests/push/tls_receiver.py",
         "--cert", dir_ + "/certs/server.pem", "--key", dir_ + "/certs/server.key", "--alpn", alpn,
         "--port-file", port_file, "--log", dir_ + "/received"},
        dir_ + "/receiver.log");
    ASSERT_OK(started.status());
    receiver_ = *std::move(started);
    ASSERT_TRUE(
        test::WaitUntil([&] { return !test::ReadFile(port_file).empty(); }, absl::Seconds(30)))
        << test::ReadFile(dir_ + "/receiver.log");
    url_ = absl::StrCat("https://127.0.0.1:", test::ReadFile(port_file), "/hook");
  }

  HttpAnswer Post(const std::string& ca, HttpVersionChoice version, const std::string& body) {
    std::atomic<bool> cancel{false};
    HttpPoster poster(&cancel);
    HttpPost post;
    post.url = url_;
    post.body = body;
    post.ca_file = dir_ + "/certs/" + ca + ".pem";
    post.version = version;
    return poster.Post(post);
  }

  // What the receiver recorded, one JSON object a line.
  std::vector<std::string> Received() {
    return absl::StrSplit(test::ReadFile(dir_ + "/received"), '\n', absl::SkipEmpty());
  }

  std::string dir_;
  std::string url_;
  test::ChildProcess receiver_;
};

TEST_F(HttpPosterTls, TrustsTheGivenCaAndSpeaksHttp11WhenThatIsAllTheReceiverOffers) {
  StartReceiver("http/1.1");
  const HttpAnswer answer = Post("ca", HttpVersionChoice::kAuto, "hello");
  EXPECT_EQ(answer.status, 200) << answer.error;
  EXPECT_EQ(answer.http_version, "HTTP/1.1");
  EXPECT_EQ(answer.body_start, "ok");
  EXPECT_THAT(Received(), Contains(R"({"alpn": "http/1.1"})"));
  EXPECT_THAT(Received(), Contains(R"({"version": "HTTP/1.1", "path": "/hook", "body": "hello"})"));
}

TEST_F(HttpPosterTls, RefusesAReceiverWhoseCertificateAnotherCaSigned) {
  StartReceiver("http/1.1");
  const HttpAnswer answer = Post("other-ca", HttpVersionChoice::kAuto, "secret");
  EXPECT_EQ(answer.status, 0);
  EXPECT_THAT(answer.error, HasSubstr("certificate"));
  for (const std::string& entry : Received()) EXPECT_THAT(entry, Not(HasSubstr("secret")));
}

TEST_F(HttpPosterTls, AsksForHttp2InAlpnUnlessToldHttp11) {
  StartReceiver("h2,http/1.1");
  // The receiver prefers h2 and gets it; it then closes (it speaks HTTP/1.1 only), so this post
  // has no answer: what is checked is what the poster asked for.
  const HttpAnswer automatic = Post("ca", HttpVersionChoice::kAuto, "first");
  EXPECT_EQ(automatic.status, 0);
  EXPECT_THAT(automatic.error, Not(IsEmpty()));
  EXPECT_THAT(Received(), Contains(R"({"alpn": "h2"})"));

  const HttpAnswer http1 = Post("ca", HttpVersionChoice::kHttp1, "second");
  EXPECT_EQ(http1.status, 200) << http1.error;
  EXPECT_EQ(http1.http_version, "HTTP/1.1");
  EXPECT_THAT(Received(), Contains(R"({"alpn": "http/1.1"})"));
  EXPECT_THAT(Received(),
              Contains(R"({"version": "HTTP/1.1", "path": "/hook", "body": "second"})"));
}

}  // namespace
}  // namespace walfeed
