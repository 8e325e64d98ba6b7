#include "server/feed/feed_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "server/core/log_format.h"
#include "spdlog/spdlog.h"

namespace walfeed {

absl::StatusOr<std::unique_ptr<FeedServer>> FeedServer::Start(const FeedOptions& options,
                                                              ChangeLog* log, Compactor* compactor,
                                                              SourceStatusFn source_status) {
  if (absl::Status valid = options.Validate(); !valid.ok()) return valid;
  std::unique_ptr<FeedServer> server(new FeedServer());
  server->options_ = options;
  const absl::Duration tick = std::min(options.progress_interval, absl::Seconds(1));
  server->hub_ = std::make_shared<SubscriberHub>(log->Head(), tick);
  std::weak_ptr<SubscriberHub> hub = server->hub_;
  log->AddHeadListener([hub](const Position& head) {
    if (std::shared_ptr<SubscriberHub> alive = hub.lock()) alive->OnHeadAdvanced(head);
  });
  server->service_ = std::make_unique<ChangeFeedService>(log, server->hub_.get(), &server->options_,
                                                         std::move(source_status));

  server->admin_ = std::make_unique<AdminService>(compactor);
  server->health_ = std::make_unique<HealthService>();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(),
                           &server->port_);
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
  spdlog::info("event=feed_listening address={} port={}", options.listen_address, server->port_);
  return server;
}

FeedServer::~FeedServer() { Shutdown(); }

void FeedServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  hub_->BeginShutdown();
  health_->Shutdown();
  if (server_ != nullptr) {
    const auto deadline =
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.shutdown_grace));
    server_->Shutdown(deadline);
    server_->Wait();
  }
  hub_->Stop();
}

}  // namespace walfeed
