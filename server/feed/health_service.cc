#include "server/feed/health_service.h"

#include "absl/strings/str_cat.h"
#include "server/core/event_counters.h"
#include "server/core/table_name.h"
#include "spdlog/spdlog.h"

namespace walfeed {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch stream: sends the current status and each change of it, then NOT_SERVING at
// shutdown, then ends.
class HealthWatch final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  HealthWatch(HealthService* service, HealthService::ServingStatus status, bool serving)
      : service_(service), known_service_(status != HealthCheckResponse::SERVICE_UNKNOWN) {
    absl::MutexLock lock(&mu_);
    Send(status, /*last=*/!serving);
  }

  // The status changed (for the services walfeed knows).
  void SendUpdate(HealthService::ServingStatus status) {
    if (!known_service_) return;
    absl::MutexLock lock(&mu_);
    if (final_sent_) return;
    Send(status, /*last=*/false);
  }

  // Shutdown: the final status.
  void SendFinal() {
    absl::MutexLock lock(&mu_);
    if (final_sent_) return;
    Send(HealthCheckResponse::NOT_SERVING, /*last=*/true);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok || cancelled_) {
      FinishOnce(grpc::Status::OK);
    } else if (pending_) {
      pending_ = false;
      response_ = next_;
      writing_ = true;
      StartWrite(&response_);
    } else if (finishing_) {
      FinishOnce(grpc::Status::OK);
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (!writing_) FinishOnce(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    service_->Forget(this);
    delete this;
  }

 private:
  void Send(HealthService::ServingStatus status, bool last) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    final_sent_ = last;
    if (writing_) {
      // The previous status is still going out; send this one after it.
      next_.set_status(status);
      pending_ = true;
      finishing_ = last;
      return;
    }
    response_.set_status(status);
    finishing_ = last;
    writing_ = true;
    StartWrite(&response_);
  }

  void FinishOnce(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  HealthService* const service_;
  const bool known_service_;
  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  HealthCheckResponse next_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool final_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

HealthService::ServingStatus HealthService::StatusOf(const std::string& service) const {
  if (!service.empty() && service != "walfeed.v1.ChangeFeed")
    return HealthCheckResponse::SERVICE_UNKNOWN;
  return serving_ && source_problem_.empty() ? HealthCheckResponse::SERVING
                                             : HealthCheckResponse::NOT_SERVING;
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* context,
                                               const HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::MutexLock lock(&mu_);
  const ServingStatus status = StatusOf(request->service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 absl::StrCat("unknown service '", request->service(),
                                              "'; walfeed serves '' and 'walfeed.v1.ChangeFeed'")));
    return reactor;
  }
  response->set_status(status);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* /*context*/, const HealthCheckRequest* request) {
  absl::MutexLock lock(&mu_);
  auto* watch = new HealthWatch(this, StatusOf(request->service()), serving_);
  watches_.insert(watch);
  return watch;
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  serving_ = false;
  for (HealthWatch* watch : watches_) watch->SendFinal();
}

void HealthService::SetSourceProblem(const std::string& problem) {
  absl::MutexLock lock(&mu_);
  if (problem.empty() == source_problem_.empty()) {
    source_problem_ = problem;  // the same status; the sentence may have changed
    return;
  }
  source_problem_ = problem;
  if (problem.empty()) {
    spdlog::info("event=health_serving reason=\"the source makes progress again\"");
  } else {
    CountEvent("health_not_serving");
    spdlog::error("event=health_not_serving reason=\"{}\"", EscapeForLog(problem));
  }
  if (!serving_) return;  // shutdown already said NOT_SERVING
  for (HealthWatch* watch : watches_) watch->SendUpdate(StatusOf(""));
}

void HealthService::Forget(HealthWatch* watch) {
  absl::MutexLock lock(&mu_);
  watches_.erase(watch);
}

}  // namespace walfeed
