#include "client/feed_errors.h"

#include <cstdint>

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace walfeed {
namespace {

constexpr char kReasonPayloadUrl[] = "type.walfeed.dev/walfeed.ClientErrorReason";
constexpr char kErrorInfoTypeUrl[] = "type.googleapis.com/google.rpc.ErrorInfo";

using google::protobuf::internal::WireFormatLite;

// Calls `field(number, bytes)` for each length-delimited field of the message in `bytes`,
// skipping the others; false when the bytes are not a well-formed message. (The client does not
// link google.rpc's generated classes: an application may link googleapis' own.)
template <typename Visit>
bool ForEachBytesField(absl::string_view bytes, Visit field) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    if (WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&in, tag)) return false;
      continue;
    }
    std::string value;
    if (!WireFormatLite::ReadBytes(&in, &value)) return false;
    field(WireFormatLite::GetTagFieldNumber(tag), value);
  }
  return in.ConsumedEntireMessage();
}

// The reason of the google.rpc.ErrorInfo in a google.rpc.Status's details, "" when none.
std::string ReasonInDetails(absl::string_view status_details) {
  std::string reason;
  ForEachBytesField(status_details, [&reason](int number, const std::string& any) {
    if (number != 3 || !reason.empty()) return;  // google.rpc.Status.details
    std::string type_url, value;
    ForEachBytesField(any, [&](int any_field, const std::string& bytes) {
      if (any_field == 1) type_url = bytes;  // google.protobuf.Any.type_url
      if (any_field == 2) value = bytes;     // google.protobuf.Any.value
    });
    if (type_url != kErrorInfoTypeUrl) return;
    ForEachBytesField(value, [&reason](int info_field, const std::string& bytes) {
      if (info_field == 1) reason = bytes;  // google.rpc.ErrorInfo.reason
    });
  });
  return reason;
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status converted(static_cast<absl::StatusCode>(status.error_code()),
                         status.error_message());
  const std::string reason = ReasonInDetails(status.error_details());
  if (!reason.empty()) converted.SetPayload(kReasonPayloadUrl, absl::Cord(reason));
  return converted;
}

std::string FeedErrorReason(const absl::Status& status) {
  const auto payload = status.GetPayload(kReasonPayloadUrl);
  return payload ? std::string(*payload) : std::string();
}

bool IsLogMismatch(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         FeedErrorReason(status) == "LOG_MISMATCH";
}

}  // namespace walfeed
