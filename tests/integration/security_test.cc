// TLS, mutual TLS and bearer tokens on the gRPC listener, over real loopback connections, with
// certificates made by openssl for each test.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/buf_curl.h"
#include "tests/support/grpc_reason.h"
#include "tests/support/status_assertions.h"
#include "tests/support/test_certs.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

class Security : public WalfeedTest {
 protected:
  void SetUp() override {
    WalfeedTest::SetUp();
    Sql("CREATE TABLE t (id int PRIMARY KEY)");
    certs_ = dir_ + "/certs";
    ASSERT_OK(MakeTestCertificates(certs_));
    ASSERT_TRUE(WriteFile(certs_ + "/tokens", "old-token\n\n  s3cret-token  \n"));
    ASSERT_TRUE(WriteFile(certs_ + "/admin_tokens", "admin-token\n"));
  }

  std::string Pem(const std::string& name) { return ReadFile(certs_ + "/" + name + ".pem"); }
  std::string Key(const std::string& name) { return ReadFile(certs_ + "/" + name + ".key"); }

  // Trusts `ca`; presents `client` ("" for none).
  std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca,
                                                const std::string& client = "") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Pem(ca);
    if (!client.empty()) {
      ssl.pem_cert_chain = Pem(client);
      ssl.pem_private_key = Key(client);
    }
    return grpc::SslCredentials(ssl);
  }

  void StartSecured(std::vector<std::string> args, std::shared_ptr<grpc::ChannelCredentials> creds,
                    const std::string& token = "") {
    walfeed_.reset();
    WalfeedOptions options = Options();
    options.extra_args = std::move(args);
    options.credentials = std::move(creds);
    options.token = token;
    absl::StatusOr<std::unique_ptr<WalfeedProcess>> process = WalfeedProcess::Start(options);
    ASSERT_OK(process);
    walfeed_ = std::move(*process);
  }

  grpc::Status Info(std::shared_ptr<grpc::ChannelCredentials> creds,
                    const std::string& token = "") {
    auto stub = v1::ChangeFeed::NewStub(grpc::CreateChannel(walfeed_->address(), creds));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::FeedInfo info;
    return stub->GetFeedInfo(&context, v1::GetFeedInfoRequest(), &info);
  }

  grpc::Status SubscribeStatus(const std::string& token) {
    auto stub = v1::ChangeFeed::NewStub(
        grpc::CreateChannel(walfeed_->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::SubscribeRequest request;
    request.set_stop_at_head(true);
    auto reader = stub->Subscribe(&context, request);
    v1::SubscribeResponse response;
    size_t changes = 0;
    while (reader->Read(&response)) changes += response.changes_size();
    grpc::Status status = reader->Finish();
    if (status.ok() && changes == 0) return grpc::Status(grpc::StatusCode::INTERNAL, "no changes");
    return status;
  }

  grpc::Status CompactStatus(std::shared_ptr<grpc::ChannelCredentials> creds,
                             const std::string& token = "") {
    auto admin = v1::Admin::NewStub(grpc::CreateChannel(walfeed_->address(), creds));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::CompactRequest request;
    request.mutable_compaction_lag()->set_seconds(0);
    request.mutable_delete_retention()->set_seconds(0);
    v1::CompactionResult result;
    return admin->Compact(&context, request, &result);
  }

  std::string certs_;
};

// A consumer's token reads but never administers: purging everyone's tombstones needs the admin
// credential.
TEST_F(Security, AdminCallsNeedTheAdminTokenAndConsumerTokensAreDenied) {
  StartSecured(
      {"--auth-token-file", certs_ + "/tokens", "--admin-token-file", certs_ + "/admin_tokens"},
      nullptr, "s3cret-token");
  const auto plain = grpc::InsecureChannelCredentials();
  const grpc::Status consumer = CompactStatus(plain, "s3cret-token");
  EXPECT_EQ(consumer.error_code(), grpc::StatusCode::PERMISSION_DENIED) << consumer.error_message();
  EXPECT_EQ(ReasonOf(consumer), "PERMISSION_DENIED");
  EXPECT_THAT(consumer.error_message(), HasSubstr("--admin-token-file"));
  EXPECT_EQ(CompactStatus(plain).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReasonOf(CompactStatus(plain)), "UNAUTHENTICATED");
  EXPECT_EQ(CompactStatus(plain, "guess").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const grpc::Status admin = CompactStatus(plain, "admin-token");
  EXPECT_TRUE(admin.ok()) << admin.error_message();
  EXPECT_TRUE(Info(plain, "admin-token").ok()) << "an admin token reads too";
  EXPECT_THAT(walfeed_->Log(), ::testing::Not(HasSubstr("event=admin_open")));
  // No token, right or wrong, ever reaches the log.
  for (const char* token : {"s3cret-token", "old-token", "admin-token", "guess"}) {
    EXPECT_THAT(walfeed_->Log(), ::testing::Not(HasSubstr(token)));
  }
}

TEST_F(Security, ConsumerTokensWithoutAnAdminTokenFileCloseAdmin) {
  StartSecured({"--auth-token-file", certs_ + "/tokens"}, nullptr, "s3cret-token");
  const grpc::Status denied = CompactStatus(grpc::InsecureChannelCredentials(), "s3cret-token");
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(), HasSubstr("--admin-token-file"));
}

TEST_F(Security, WithNoCredentialsAdminIsOpenAndTheStartLogSaysSo) {
  StartWalfeed();
  EXPECT_OK(CompactStatus(grpc::InsecureChannelCredentials()));
  EXPECT_THAT(walfeed_->Log(), HasSubstr("event=admin_open"));
}

TEST_F(Security, AdminClientNameRuleAdmitsOnlyThatCertificate) {
  StartSecured({"--tls-cert", certs_ + "/server.pem", "--tls-key", certs_ + "/server.key",
                "--tls-client-ca", certs_ + "/ca.pem", "--admin-client-name", "operator"},
               Tls("ca", "client"));
  EXPECT_TRUE(Info(Tls("ca", "client")).ok()) << "any trusted client reads";
  const grpc::Status reader = CompactStatus(Tls("ca", "client"));
  EXPECT_EQ(reader.error_code(), grpc::StatusCode::PERMISSION_DENIED) << reader.error_message();
  const grpc::Status operator_call = CompactStatus(Tls("ca", "operator"));
  EXPECT_TRUE(operator_call.ok()) << operator_call.error_message();
}

TEST_F(Security, TlsServesClientsThatTrustItsCaOnly) {
  StartSecured({"--tls-cert", certs_ + "/server.pem", "--tls-key", certs_ + "/server.key"},
               Tls("ca"));
  EXPECT_OK(Info(Tls("ca")));
  EXPECT_EQ(Info(Tls("other-ca")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(Info(grpc::InsecureChannelCredentials()).ok());
}

TEST_F(Security, MutualTlsRequiresAClientCertificateFromTheConfiguredCa) {
  StartSecured({"--tls-cert", certs_ + "/server.pem", "--tls-key", certs_ + "/server.key",
                "--tls-client-ca", certs_ + "/ca.pem"},
               Tls("ca", "client"));
  EXPECT_OK(Info(Tls("ca", "client")));
  EXPECT_FALSE(Info(Tls("ca")).ok()) << "no client certificate";
  EXPECT_FALSE(Info(Tls("ca", "stranger")).ok()) << "a certificate from another CA";
}

TEST_F(Security, BearerTokenIsRequiredForDataButNotForHealth) {
  StartSecured({"--auth-token-file", certs_ + "/tokens"}, nullptr, "s3cret-token");
  Sql("INSERT INTO t VALUES (1)");
  Sql(MarkerSql("written"));

  const grpc::Status missing = Info(grpc::InsecureChannelCredentials());
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReasonOf(missing), "UNAUTHENTICATED");
  EXPECT_THAT(missing.error_message(), HasSubstr("authorization: Bearer"));
  EXPECT_EQ(Info(grpc::InsecureChannelCredentials(), "guess").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(SubscribeStatus("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(SubscribeStatus("guess").error_code(), grpc::StatusCode::UNAUTHENTICATED);

  EXPECT_OK(Info(grpc::InsecureChannelCredentials(), "s3cret-token"));
  EXPECT_TRUE(Info(grpc::InsecureChannelCredentials(), "old-token").ok()) << "rotation";
  const grpc::Status read = SubscribeStatus("s3cret-token");
  EXPECT_TRUE(read.ok()) << read.error_message();

  // Health checks stay open, so probes need no secret.
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(walfeed_->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext health_context;
  grpc::health::v1::HealthCheckResponse serving;
  const grpc::Status checked =
      health->Check(&health_context, grpc::health::v1::HealthCheckRequest(), &serving);
  EXPECT_TRUE(checked.ok()) << checked.error_message();
  EXPECT_EQ(serving.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  const RunResult refused =
      RunCommand({WalfeedctlBinary(), "info", "--server", walfeed_->address()}, absl::Seconds(30));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.output, HasSubstr("bearer token"));
  const RunResult with_token = RunCommand({WalfeedctlBinary(), "info", "--server",
                                           walfeed_->address(), "--token-file", certs_ + "/tokens"},
                                          absl::Seconds(30));
  EXPECT_EQ(with_token.exit_code, 0) << with_token.output;

  // Server reflection stays open, so grpcurl and buf curl can describe the API without a token.
  const RunResult listed =
      RunCommand({BufBinary(), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                  "--list-methods", absl::StrCat("http://", walfeed_->address())},
                 absl::Seconds(60));
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_THAT(listed.output, HasSubstr("walfeed.v1.ChangeFeed/Subscribe"));
  for (const char* token : {"s3cret-token", "old-token", "guess"}) {
    EXPECT_THAT(walfeed_->Log(), ::testing::Not(HasSubstr(token)));
  }
}

TEST_F(Security, WalfeedctlSpeaksTlsAndMutualTls) {
  StartSecured({"--tls-cert", certs_ + "/server.pem", "--tls-key", certs_ + "/server.key",
                "--tls-client-ca", certs_ + "/ca.pem"},
               Tls("ca", "client"));
  const RunResult info = RunCommand(
      {WalfeedctlBinary(), "info", "--server", walfeed_->address(), "--tls-ca", certs_ + "/ca.pem",
       "--tls-cert", certs_ + "/client.pem", "--tls-key", certs_ + "/client.key"},
      absl::Seconds(30));
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_THAT(info.output, HasSubstr(db_));
}

TEST_F(Security, BadTlsAndTokenSettingsAreRejectedAtStart) {
  RunResult half = RunWalfeed({"--pg", "x", "--tls-cert", certs_ + "/server.pem"});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_THAT(half.output, HasSubstr("--tls-cert and --tls-key go together"));

  std::vector<std::string> args = BaseArgs(SharedPostgres().Conninfo(db_));
  args.insert(args.end(), {"--auth-token-file", certs_ + "/missing"});
  RunResult token = RunWalfeed(args);
  EXPECT_EQ(token.exit_code, 1);
  EXPECT_THAT(token.output, HasSubstr("cannot read the token file"));
}

}  // namespace
}  // namespace walfeed::test
