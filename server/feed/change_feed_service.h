// ChangeFeedService: the walfeed.v1.ChangeFeed gRPC service (callback API).
//
// Every call first checks the caller's token (Authenticator). Subscribe validates the request
// (SubscriptionPlan) and starts a SubscribeReactor, or fails at once with INVALID_ARGUMENT /
// NOT_FOUND and a sentence (a named consumer resumes from its stored cursor, one stream per name);
// Commit stores a named consumer's cursor; GetFeedInfo describes the log, the source and the
// subscribers; ReadValue streams a value that travels out of line. Converts absl::Status to gRPC
// status only here, in feed/.
#ifndef WALFEED_SERVER_FEED_CHANGE_FEED_SERVICE_H_
#define WALFEED_SERVER_FEED_CHANGE_FEED_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <functional>

#include "server/core/feed_controls.h"
#include "server/core/source_status.h"
#include "server/feed/authenticator.h"
#include "server/feed/consumer_registry.h"
#include "server/feed/feed_options.h"
#include "server/feed/shared_batch_cache.h"
#include "server/feed/subscriber_hub.h"
#include "server/log/change_log.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed {

using SourceStatusFn = std::function<SourceStatus()>;
// The log's replication into NATS JetStream; null when --replicate-to is off.
using ReplicationStatusFn = std::function<v1::ReplicationStatus()>;

namespace feed_internal {
// Subscribe is registered raw (ByteBuffer in and out) so that stored changes go out without
// being parsed and re-serialized; on the wire it is the ordinary walfeed.v1 method.
using ChangeFeedBase = v1::ChangeFeed::WithRawCallbackMethod_Subscribe<
    v1::ChangeFeed::WithCallbackMethod_GetFeedInfo<v1::ChangeFeed::WithCallbackMethod_ReadValue<
        v1::ChangeFeed::WithCallbackMethod_Commit<v1::ChangeFeed::Service>>>>;
}  // namespace feed_internal

class ChangeFeedService final : public feed_internal::ChangeFeedBase {
 public:
  // Every pointer must outlive the service.
  ChangeFeedService(const ChangeLog* log, SubscriberHub* hub, ConsumerRegistry* consumers,
                    const FeedOptions* options, const Authenticator* auth,
                    SourceStatusFn source_status, ReplicationStatusFn replication_status = nullptr,
                    FeedControls controls = {});

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request) override;

  // Streams one value stored out of line (ValueReadReactor), or fails at once: INVALID_ARGUMENT
  // for a malformed ref, NOT_FOUND when the log holds no such value, OUT_OF_RANGE for an offset
  // past its end.
  grpc::ServerWriteReactor<v1::ValueChunk>* ReadValue(grpc::CallbackServerContext* context,
                                                      const v1::ReadValueRequest* request) override;

  // What GetFeedInfo answers: the log, the source and the subscribers right now.
  v1::FeedInfo Describe() const;

  // Stores a named consumer's cursor (ConsumerRegistry), durably, before it answers.
  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* context,
                                   const v1::CommitRequest* request,
                                   v1::CommitResponse* response) override;

  grpc::ServerUnaryReactor* GetFeedInfo(grpc::CallbackServerContext* context,
                                        const v1::GetFeedInfoRequest* request,
                                        v1::FeedInfo* response) override;

 private:
  const ChangeLog* const log_;
  SubscriberHub* const hub_;
  ConsumerRegistry* const consumers_;
  // Batches built for one unfiltered follower, reused by the others at the same position.
  SharedBatchCache shared_batches_;
  const FeedOptions* const options_;
  const Authenticator* const auth_;
  const SourceStatusFn source_status_;
  const ReplicationStatusFn replication_status_;
  const BackfillControl* const backfills_;  // null: none here
  const PushControl* const pushes_;         // null: none here
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_CHANGE_FEED_SERVICE_H_
