// The read path without parsing: stored changes go out as the bytes the log holds.
//
// The log stores each change as a serialized walfeed.v1.Change, and a SubscribeResponse's
// `changes` field is those same bytes, length-prefixed (server/core/change_wire_format.h, which
// also reads what the feed filters on); ResponseBuilder writes the serialized SubscribeResponse
// around the stored bytes. A stream then holds its batch once, as wire bytes, not as a parsed
// message several times larger.
#ifndef WALFEED_SERVER_FEED_CHANGE_WIRE_H_
#define WALFEED_SERVER_FEED_CHANGE_WIRE_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "server/core/change_wire_format.h"

namespace walfeed {

// Builds one serialized walfeed.v1.SubscribeResponse.
class ResponseBuilder {
 public:
  // Appends a stored (serialized) change to `changes`.
  void AddChange(absl::string_view stored);
  size_t changes() const { return changes_; }
  size_t bytes() const { return buffer_.size(); }

  // Adds the cursor fields and the log's id and hands the message over as a ByteBuffer; the
  // builder is empty afterwards.
  grpc::ByteBuffer Finish(absl::string_view cursor, absl::string_view head_cursor,
                          absl::string_view log_id);

 private:
  std::string buffer_;
  size_t changes_ = 0;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_CHANGE_WIRE_H_
