#include "server/core/error_reason.h"

#include "absl/strings/cord.h"

namespace walfeed {
namespace {

constexpr char kReasonPayloadUrl[] = "type.walfeed.dev/walfeed.ErrorReason";

}  // namespace

absl::Status WithReason(absl::Status status, absl::string_view reason) {
  if (!status.ok()) status.SetPayload(kReasonPayloadUrl, absl::Cord(reason));
  return status;
}

std::string ReasonOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kReasonPayloadUrl);
  return payload ? std::string(*payload) : std::string();
}

}  // namespace walfeed
