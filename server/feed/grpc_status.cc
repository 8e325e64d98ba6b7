#include "server/feed/grpc_status.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "server/core/error_reason.h"
#include "server/core/event_counters.h"

namespace walfeed {

grpc::Status GrpcError(grpc::StatusCode code, const std::string& message, absl::string_view reason,
                       const std::map<std::string, std::string>& metadata) {
  CountEvent(absl::StrCat("call_", absl::AsciiStrToLower(reason)));
  google::rpc::Status details;
  details.set_code(static_cast<int>(code));
  details.set_message(message);
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain("walfeed");
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  details.add_details()->PackFrom(info);
  return grpc::Status(code, message, details.SerializeAsString());
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  const std::string message(status.message());
  std::string reason = ReasonOf(status);
  // Every error carries an ErrorInfo (AIP-193); without a specific reason, the code's name.
  if (reason.empty()) reason = absl::AsciiStrToUpper(absl::StatusCodeToString(status.code()));
  return GrpcError(code, message, reason, DetailsOf(status));
}

}  // namespace walfeed
