#include "server/feed/change_wire.h"

#include <utility>

#include "server/core/change_wire_format.h"

namespace walfeed {
namespace {

// Field numbers of walfeed.v1.SubscribeResponse (see the .proto; they never change).
constexpr uint32_t kResponseChanges = 1;
constexpr uint32_t kResponseCursor = 2;
constexpr uint32_t kResponseHeadCursor = 3;
constexpr uint32_t kResponseLogId = 4;

void DestroyString(void* string) { delete static_cast<std::string*>(string); }

}  // namespace

void ResponseBuilder::AddChange(absl::string_view stored) {
  WriteLengthDelimited(kResponseChanges, stored, &buffer_);
  ++changes_;
}

grpc::ByteBuffer ResponseBuilder::Finish(absl::string_view cursor, absl::string_view head_cursor,
                                         absl::string_view log_id) {
  if (!cursor.empty()) WriteLengthDelimited(kResponseCursor, cursor, &buffer_);
  if (!head_cursor.empty()) WriteLengthDelimited(kResponseHeadCursor, head_cursor, &buffer_);
  if (!log_id.empty()) WriteLengthDelimited(kResponseLogId, log_id, &buffer_);
  // The slice takes the string over: the batch is not copied again.
  auto* owned = new std::string(std::move(buffer_));
  grpc::Slice slice(owned->data(), owned->size(), DestroyString, owned);
  buffer_ = std::string();
  changes_ = 0;
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace walfeed
