#include "server/feed/value_read_reactor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/error_reason.h"
#include "server/feed/grpc_status.h"

namespace walfeed {

ValueReadReactor::ValueReadReactor(const ChangeLog* log, const ValueRef& ref,
                                   const v1::LargeValue& value, uint64_t offset)
    : log_(log), ref_(ref), size_(value.size()), offset_(offset) {
  Next();
}

void ValueReadReactor::OnWriteDone(bool ok) {
  if (!ok) {
    Finish(grpc::Status::CANCELLED);
    return;
  }
  Next();
}

void ValueReadReactor::Next() {
  // Finish() may delete this reactor at once: every path calls it last.
  if (offset_ >= size_) {
    Finish(grpc::Status::OK);
    return;
  }
  absl::StatusOr<std::string> data = log_->ReadLargeValue(ref_, offset_, kMaxChunkBytes);
  if (!data.ok()) {
    Finish(ToGrpcStatus(data.status()));
    return;
  }
  if (data->empty()) {
    Finish(GrpcError(grpc::StatusCode::NOT_FOUND,
                     absl::StrCat("the value at '", FormatValueRef(ref_),
                                  "' was removed while it was read (compaction removed its change: "
                                  "a newer change of its row follows it in the feed)"),
                     reason::kValueNotFound));
    return;
  }
  chunk_.set_offset(offset_);
  chunk_.set_size(size_);
  offset_ += data->size();
  chunk_.set_data(*std::move(data));
  StartWrite(&chunk_);
}

}  // namespace walfeed
