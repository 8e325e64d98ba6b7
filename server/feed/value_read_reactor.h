// ValueReadReactor: one ReadValue stream, driven by gRPC's callback API. Sends a value stored
// out of line one chunk at a time (at most 256 KiB in memory per stream, read when the client
// has taken the previous one), from the requested offset to the value's end, then OK. A value
// that compaction removes while it is being read ends the stream with NOT_FOUND, never with a
// short value reported as whole.
#ifndef WALFEED_SERVER_FEED_VALUE_READ_REACTOR_H_
#define WALFEED_SERVER_FEED_VALUE_READ_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include "server/core/value_ref.h"
#include "server/log/change_log.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed {

class ValueReadReactor final : public grpc::ServerWriteReactor<v1::ValueChunk> {
 public:
  // `value` is what the log holds at `ref` (ChangeLog::FindLargeValue); `offset` <= its size.
  ValueReadReactor(const ChangeLog* log, const ValueRef& ref, const v1::LargeValue& value,
                   uint64_t offset);

  void OnWriteDone(bool ok) override;
  void OnDone() override { delete this; }

  // Chunks are at most this long.
  static constexpr size_t kMaxChunkBytes = 256 << 10;

 private:
  // Reads the next chunk and writes it, or finishes the call.
  void Next();

  const ChangeLog* const log_;
  const ValueRef ref_;
  const uint64_t size_;
  uint64_t offset_;
  v1::ValueChunk chunk_;
};

// A streaming call rejected before it started: finishes at once with `status`.
template <typename Response>
class RejectedStream final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RejectedStream(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_VALUE_READ_REACTOR_H_
