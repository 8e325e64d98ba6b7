// walfeed's errors on the client side: a call's grpc::Status as an absl::Status that keeps
// walfeed's machine-readable reason (the google.rpc.ErrorInfo of AIP-193 in the status details),
// so that an application can switch on the reason rather than on the message text.
//
//   absl::Status ended = subscriber.Run(handler);
//   if (walfeed::IsLogMismatch(ended)) { /* rebuild from from_lsn=0, drop the saved cursor */ }
#ifndef WALFEED_CLIENT_FEED_ERRORS_H_
#define WALFEED_CLIENT_FEED_ERRORS_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"

namespace walfeed {

// The same code and message, with walfeed's reason attached when the status carries one.
absl::Status FromGrpcStatus(const grpc::Status& status);

// walfeed's reason for `status` ("CURSOR_PURGED", "LOG_MISMATCH", ...; see the README's error
// table), "" when it has none.
std::string FeedErrorReason(const absl::Status& status);

// The cursor belongs to another log (FAILED_PRECONDITION, reason LOG_MISMATCH): the feed's data
// directory was rebuilt, or this is another database's walfeed. Retrying cannot mend it; read
// again from from_lsn=0 into a fresh state, and keep the new log id.
bool IsLogMismatch(const absl::Status& status);

}  // namespace walfeed

#endif  // WALFEED_CLIENT_FEED_ERRORS_H_
