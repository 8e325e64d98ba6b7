// AdminService: the walfeed.v1.Admin gRPC service, the operator's calls.
//
// Compact runs a full compaction pass on the Compactor's thread (never on a gRPC thread) and
// answers when it is done with what it removed; a call while another pass runs gets
// FAILED_PRECONDITION, a negative or malformed duration INVALID_ARGUMENT, both with a sentence.
// ResetConsumer and DeleteConsumer change a named consumer's stored cursor (ConsumerRegistry).
// Backfill and CancelBackfill go to the BackfillControl (checking a request asks PostgreSQL, on
// the calling thread); without one (a replica, an ingest group) they are FAILED_PRECONDITION,
// reason NOT_INGESTER. The push subscription calls go to the PushControl.
#ifndef WALFEED_SERVER_FEED_ADMIN_SERVICE_H_
#define WALFEED_SERVER_FEED_ADMIN_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "server/core/feed_controls.h"
#include "server/feed/authenticator.h"
#include "server/feed/consumer_registry.h"
#include "server/log/compactor.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed {

class AdminService final : public v1::Admin::CallbackService {
 public:
  // `compactor` must outlive the service, and be stopped before the server waits for its calls.
  // `consumers` and `log` (for the head) too.
  // Each of `controls` may be null (not run here).
  AdminService(Compactor* compactor, ConsumerRegistry* consumers, const ChangeLog* log,
               const Authenticator* auth, FeedControls controls = {})
      : compactor_(compactor),
        consumers_(consumers),
        log_(log),
        auth_(auth),
        backfills_(controls.backfills),
        pushes_(controls.pushes) {}

  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* context,
                                    const v1::CompactRequest* request,
                                    v1::CompactionResult* response) override;
  grpc::ServerUnaryReactor* ResetConsumer(grpc::CallbackServerContext* context,
                                          const v1::ResetConsumerRequest* request,
                                          v1::ConsumerInfo* response) override;
  grpc::ServerUnaryReactor* DeleteConsumer(grpc::CallbackServerContext* context,
                                           const v1::DeleteConsumerRequest* request,
                                           v1::DeleteConsumerResponse* response) override;
  grpc::ServerUnaryReactor* Backfill(grpc::CallbackServerContext* context,
                                     const v1::BackfillRequest* request,
                                     v1::BackfillInfo* response) override;
  grpc::ServerUnaryReactor* CancelBackfill(grpc::CallbackServerContext* context,
                                           const v1::CancelBackfillRequest* request,
                                           v1::BackfillInfo* response) override;
  grpc::ServerUnaryReactor* CreatePushSubscription(grpc::CallbackServerContext* context,
                                                   const v1::PushSubscription* request,
                                                   v1::PushSubscriptionInfo* response) override;
  grpc::ServerUnaryReactor* ListPushSubscriptions(grpc::CallbackServerContext* context,
                                                  const v1::ListPushSubscriptionsRequest* request,
                                                  v1::PushSubscriptionList* response) override;
  grpc::ServerUnaryReactor* PausePushSubscription(grpc::CallbackServerContext* context,
                                                  const v1::PushSubscriptionRequest* request,
                                                  v1::PushSubscriptionInfo* response) override;
  grpc::ServerUnaryReactor* ResumePushSubscription(grpc::CallbackServerContext* context,
                                                   const v1::PushSubscriptionRequest* request,
                                                   v1::PushSubscriptionInfo* response) override;
  grpc::ServerUnaryReactor* DeletePushSubscription(
      grpc::CallbackServerContext* context, const v1::PushSubscriptionRequest* request,
      v1::DeletePushSubscriptionResponse* response) override;

 private:
  Compactor* const compactor_;
  ConsumerRegistry* const consumers_;
  const ChangeLog* const log_;
  const Authenticator* const auth_;
  BackfillControl* const backfills_;
  PushControl* const pushes_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_ADMIN_SERVICE_H_
