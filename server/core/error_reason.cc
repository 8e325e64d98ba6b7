#include "server/core/error_reason.h"

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace walfeed {
namespace {

constexpr char kReasonPayloadUrl[] = "type.walfeed.dev/walfeed.ErrorReason";
// Followed by the detail's key.
constexpr char kDetailPayloadPrefix[] = "type.walfeed.dev/walfeed.ErrorDetail/";

}  // namespace

absl::Status WithReason(absl::Status status, absl::string_view reason) {
  if (!status.ok()) status.SetPayload(kReasonPayloadUrl, absl::Cord(reason));
  return status;
}

std::string ReasonOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kReasonPayloadUrl);
  return payload ? std::string(*payload) : std::string();
}

absl::Status WithDetail(absl::Status status, absl::string_view key, absl::string_view value) {
  if (!status.ok()) status.SetPayload(absl::StrCat(kDetailPayloadPrefix, key), absl::Cord(value));
  return status;
}

std::map<std::string, std::string> DetailsOf(const absl::Status& status) {
  std::map<std::string, std::string> details;
  status.ForEachPayload([&details](absl::string_view url, const absl::Cord& value) {
    if (absl::ConsumePrefix(&url, kDetailPayloadPrefix))
      details[std::string(url)] = std::string(value);
  });
  return details;
}

}  // namespace walfeed
