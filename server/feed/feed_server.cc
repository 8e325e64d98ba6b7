#include "server/feed/feed_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/log_format.h"
#include "server/feed/source_health.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

absl::StatusOr<std::string> ReadPem(const char* flag, const std::string& path) {
  std::ifstream file(path);
  std::stringstream contents;
  if (file) contents << file.rdbuf();
  if (!file || contents.str().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the ", flag, " file '", path, "' (a PEM file)"));
  }
  return contents.str();
}

// Plaintext, TLS, or TLS that requires and verifies a client certificate.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const FeedOptions& options) {
  if (options.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert = ReadPem("--tls-cert", options.tls_cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem("--tls-key", options.tls_key_file);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!options.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("--tls-client-ca", options.tls_client_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FeedServer>> FeedServer::Start(
    const FeedOptions& options, ChangeLog* log, Compactor* compactor, SourceStatusFn source_status,
    ReplicationStatusFn replication_status, FeedControls controls) {
  if (absl::Status valid = options.Validate(); !valid.ok()) return valid;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = ServerCredentials(options);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<FeedServer> server(new FeedServer());
  server->options_ = options;
  {
    std::vector<std::string> tokens, admin_tokens;
    if (!options.auth_token_file.empty()) {
      absl::StatusOr<std::vector<std::string>> read =
          Authenticator::ReadTokens(options.auth_token_file, "--auth-token-file");
      if (!read.ok()) return read.status();
      tokens = *std::move(read);
    }
    if (!options.admin_token_file.empty()) {
      absl::StatusOr<std::vector<std::string>> read =
          Authenticator::ReadTokens(options.admin_token_file, "--admin-token-file");
      if (!read.ok()) return read.status();
      admin_tokens = *std::move(read);
    }
    server->auth_ =
        Authenticator(std::move(tokens), std::move(admin_tokens), options.admin_client_names);
  }
  // Fine enough that the progress messages of streams started at different times stay apart.
  const absl::Duration tick = std::min(options.progress_interval, absl::Milliseconds(100));
  server->hub_ = std::make_shared<SubscriberHub>(log->Head(), tick);
  std::weak_ptr<SubscriberHub> hub = server->hub_;
  log->AddHeadListener([hub](const HeadAdvance& advance) {
    if (std::shared_ptr<SubscriberHub> alive = hub.lock()) {
      alive->OnHeadAdvanced(advance.previous, advance.head, advance.tables, advance.all_tables);
    }
  });
  server->source_status_ = source_status;
  server->replication_status_ = replication_status;
  absl::StatusOr<std::unique_ptr<ConsumerRegistry>> consumers = ConsumerRegistry::Load(log);
  if (!consumers.ok()) return consumers.status();
  server->consumers_ = *std::move(consumers);
  server->service_ = std::make_unique<ChangeFeedService>(
      log, server->hub_.get(), server->consumers_.get(), &server->options_, &server->auth_,
      std::move(source_status), std::move(replication_status), controls);

  server->admin_ = std::make_unique<AdminService>(compactor, server->consumers_.get(), log,
                                                  &server->auth_, controls);
  server->health_ = std::make_unique<HealthService>();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, *credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->admin_.get());
  builder.RegisterService(server->health_.get());
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
      static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Accept clients' keepalive pings as often as every 10 s.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on '", options.listen_address,
                     "': the address is in use or invalid (use host:port)"));
  }
  spdlog::info(
      "event=feed_listening address={} port={} tls={} client_certificates={} tokens={} "
      "admin_tokens={} admin_client_names={}",
      options.listen_address, server->port_, !options.tls_cert_file.empty(),
      !options.tls_client_ca_file.empty(), server->auth_.enabled(),
      !options.admin_token_file.empty(), options.admin_client_names.size());
  if (server->auth_.admin_open()) {
    spdlog::warn(
        "event=admin_open reason=\"no --auth-token-file, --admin-token-file or "
        "--admin-client-name\" effect=\"anyone who reaches {} may run admin calls (compaction "
        "that purges tombstones)\"",
        options.listen_address);
  }
  return server;
}

FeedServer::~FeedServer() { Shutdown(); }

v1::FeedInfo FeedServer::Describe() const { return service_->Describe(); }
uint64_t FeedServer::changes_sent() const { return hub_->changes_sent(); }
Position FeedServer::SlowestSubscriber() const { return hub_->SlowestPosition(); }

void FeedServer::CheckSourceHealth() {
  if (health_ == nullptr) return;
  std::string problem = SourceProblem(source_status_(), options_.unhealthy_after, absl::Now());
  if (problem.empty() && replication_status_) {
    problem = ReplicationProblem(replication_status_(), options_.unhealthy_after);
  }
  health_->SetSourceProblem(problem);
}

void FeedServer::BeginShutdown() {
  if (hub_ == nullptr || shutdown_begun_) return;
  shutdown_begun_ = true;
  hub_->BeginShutdown();
  if (health_ != nullptr) health_->Shutdown();
}

void FeedServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (hub_ == nullptr) return;  // Start() failed before anything ran
  BeginShutdown();
  if (server_ != nullptr) {
    // Wait for the open streams to end with walfeed's own UNAVAILABLE before gRPC's shutdown
    // cancels what is left (and answers calls arriving from then on with a bare CANCELLED).
    const absl::Time drain_deadline = absl::Now() + options_.shutdown_grace;
    while (hub_->subscribers() > 0 && absl::Now() < drain_deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    const auto deadline =
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.shutdown_grace));
    server_->Shutdown(deadline);
    server_->Wait();
  }
  hub_->Stop();
}

}  // namespace walfeed
