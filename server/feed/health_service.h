// HealthService: the standard grpc.health.v1.Health service for walfeed.
//
// Check answers SERVING for "" (the server) and "walfeed.v1.ChangeFeed" while walfeed runs and
// its source makes progress, NOT_SERVING while the source has a problem (SetSourceProblem: it
// has been failing for longer than its grace period) and once shutdown began, and NOT_FOUND for
// any other service name. Watch sends the current status at once and again when it changes; at
// shutdown every watch gets NOT_SERVING and ends. Health calls need no authentication. Implemented
// with the C++ protobuf runtime (not gRPC's built-in health service) so server reflection can
// describe it. Thread-safe.
#ifndef WALFEED_SERVER_FEED_HEALTH_SERVICE_H_
#define WALFEED_SERVER_FEED_HEALTH_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace walfeed {

class HealthWatch;

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;

  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

  // Every watch hears NOT_SERVING and ends; later checks answer NOT_SERVING.
  void Shutdown();

  // Why the source cannot make progress, "" when it can: NOT_SERVING while it is set. Logs and
  // tells every watch when the status changes.
  void SetSourceProblem(const std::string& problem);

  // Used by HealthWatch.
  void Forget(HealthWatch* watch);

 private:
  ServingStatus StatusOf(const std::string& service) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = true;
  std::string source_problem_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<HealthWatch*> watches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_HEALTH_SERVICE_H_
