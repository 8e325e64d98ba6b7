// FeedServer: the gRPC server walfeed runs: ChangeFeed, Admin, server reflection and the standard
// grpc.health.v1.Health service, with keepalive settings fit for long-lived streams, over
// plaintext, TLS or mutual TLS, with optional bearer tokens (see Authenticator).
//
// Start() binds and serves; BeginShutdown() ends every stream with UNAVAILABLE ("resume from your
// cursor"); Shutdown() then waits up to the grace period and stops. Call both from one thread.
#ifndef WALFEED_SERVER_FEED_FEED_SERVER_H_
#define WALFEED_SERVER_FEED_FEED_SERVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/feed/admin_service.h"
#include "server/feed/authenticator.h"
#include "server/feed/change_feed_service.h"
#include "server/feed/feed_options.h"
#include "server/feed/health_service.h"
#include "server/log/change_log.h"
#include "server/log/compactor.h"

namespace grpc {
class Server;
}

namespace walfeed {

class FeedServer {
 public:
  // `log` and `compactor` must outlive the server; stop the compactor before Shutdown() so
  // that no Compact call is left unanswered. `controls` (each null: its Admin calls are refused)
  // must outlive it too.
  static absl::StatusOr<std::unique_ptr<FeedServer>> Start(
      const FeedOptions& options, ChangeLog* log, Compactor* compactor,
      SourceStatusFn source_status, ReplicationStatusFn replication_status = nullptr,
      FeedControls controls = {});
  ~FeedServer();

  // The port actually bound (useful with port 0).
  int port() const { return port_; }

  // For the metrics endpoint: what GetFeedInfo answers, changes sent to subscribers since
  // start, and where the slowest subscriber reads on from (zero: none has been sent anything).
  v1::FeedInfo Describe() const;
  uint64_t changes_sent() const;
  Position SlowestSubscriber() const;

  // Ends every stream with UNAVAILABLE ("resume from your cursor") and answers new calls the
  // same way, while the server still listens: call it first, stop the rest of walfeed, then
  // Shutdown(), so a client reconnecting at once meets that answer or a closed port, never
  // gRPC's bare CANCELLED for a call that reaches a server shutting down.
  void BeginShutdown();
  void Shutdown();

  // Brings the health status up to date with the source and the replication (see
  // source_health.h); call it every second or so.
  void CheckSourceHealth();

  // The named consumers this server keeps.
  ConsumerRegistry* consumers() const { return consumers_.get(); }

 private:
  FeedServer() = default;

  FeedOptions options_;
  SourceStatusFn source_status_;
  ReplicationStatusFn replication_status_;
  Authenticator auth_;
  std::shared_ptr<SubscriberHub> hub_;
  // Outlives the services and their streams, which hold its leases.
  std::unique_ptr<ConsumerRegistry> consumers_;
  std::unique_ptr<ChangeFeedService> service_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shutdown_begun_ = false;
  bool shut_down_ = false;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_FEED_SERVER_H_
