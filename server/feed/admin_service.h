// AdminService: the walfeed.v1.Admin gRPC service, the operator's calls.
//
// Compact runs a full compaction pass on the Compactor's thread (never on a gRPC thread) and
// answers when it is done with what it removed; a call while another pass runs gets
// FAILED_PRECONDITION, a negative or malformed duration INVALID_ARGUMENT, both with a sentence.
#ifndef WALFEED_SERVER_FEED_ADMIN_SERVICE_H_
#define WALFEED_SERVER_FEED_ADMIN_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "server/feed/authenticator.h"
#include "server/log/compactor.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed {

class AdminService final : public v1::Admin::CallbackService {
 public:
  // `compactor` must outlive the service, and be stopped before the server waits for its calls.
  AdminService(Compactor* compactor, const Authenticator* auth)
      : compactor_(compactor), auth_(auth) {}

  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* context,
                                    const v1::CompactRequest* request,
                                    v1::CompactionResult* response) override;

 private:
  Compactor* const compactor_;
  const Authenticator* const auth_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_ADMIN_SERVICE_H_
