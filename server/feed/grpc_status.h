// The one place absl::Status becomes grpc::Status. Every error carries its sentence and a
// google.rpc.ErrorInfo in the standard grpc-status-details-bin trailer (AIP-193), domain
// "walfeed", with the error's reason (see core/error_reason.h) or else its code's name.
#ifndef WALFEED_SERVER_FEED_GRPC_STATUS_H_
#define WALFEED_SERVER_FEED_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace walfeed {

grpc::Status ToGrpcStatus(const absl::Status& status);

// An error with a reason and optional ErrorInfo metadata.
grpc::Status GrpcError(grpc::StatusCode code, const std::string& message, absl::string_view reason,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_GRPC_STATUS_H_
