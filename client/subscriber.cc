#include "client/subscriber.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/large_values.h"

namespace walfeed {
namespace {

// Errors a new call may not meet: walfeed restarting or out of reach, a connection cut, a
// call cancelled by a server shutting down (Run() tells its own cancellations apart).
bool Retryable(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

constexpr int kMaxStuckFailures = 3;

}  // namespace

Subscriber::Subscriber(SubscriberOptions options) : options_(std::move(options)) {
  // Keepalive pings find a server that hangs (a paused process, a machine gone without a
  // word), so that the next address is tried; walfeed accepts them every 10 s.
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  arguments.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  const auto connect = [this, &arguments](absl::string_view address) {
    stubs_.push_back(v1::ChangeFeed::NewStub(grpc::CreateCustomChannel(
        std::string(absl::StripAsciiWhitespace(address)),
        options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials(),
        arguments)));
  };
  for (absl::string_view address : absl::StrSplit(options_.server, ',', absl::SkipWhitespace())) {
    connect(address);
  }
  if (stubs_.empty()) connect(options_.server);
}

std::string Subscriber::cursor() const {
  absl::MutexLock lock(&mu_);
  return cursor_;
}

std::string Subscriber::log_id() const {
  absl::MutexLock lock(&mu_);
  return log_id_;
}

void Subscriber::NoteLogId(const std::string& log_id) {
  absl::MutexLock lock(&mu_);
  if (log_id_.empty()) log_id_ = log_id;
}

void Subscriber::Stop() {
  if (stopping_.exchange(true)) return;
  stopped_.Notify();
  absl::MutexLock lock(&mu_);
  if (context_ != nullptr) context_->TryCancel();
  if (fetch_context_ != nullptr) fetch_context_->TryCancel();
}

absl::Status Subscriber::Advance(const std::string& cursor) {
  SavedCursor saved;
  {
    absl::MutexLock lock(&mu_);
    cursor_ = cursor;
    saved = SavedCursor{cursor_, log_id_};
  }
  return options_.store != nullptr ? options_.store->Save(saved) : absl::OkStatus();
}

absl::Status Subscriber::Run(const ChangeHandler& on_change, const ProgressHandler& on_progress,
                             const RetryHandler& on_retry) {
  if (options_.store != nullptr) {
    absl::StatusOr<SavedCursor> saved = options_.store->Load();
    if (!saved.ok()) return saved.status();
    absl::MutexLock lock(&mu_);
    if (!saved->cursor.empty()) cursor_ = saved->cursor;
    if (!saved->log_id.empty()) log_id_ = saved->log_id;
  }
  absl::Duration backoff = options_.min_backoff;
  // Errors that are not about the connection (a message the client cannot take, say) come back
  // the same at the same cursor: after a few in a row without progress, they end the run.
  int stuck_failures = 0;
  while (!stopping_.load()) {
    absl::Status handler_error;
    bool delivered = false;
    const grpc::Status status = StreamOnce(on_change, on_progress, &handler_error, &delivered);
    if (!handler_error.ok()) return handler_error;
    if (stopping_.load() || status.ok()) return absl::OkStatus();
    const absl::Status error = FromGrpcStatus(status);
    if (!Retryable(status.error_code())) return error;
    const bool transport = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           status.error_code() == grpc::StatusCode::CANCELLED ||
                           status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    stuck_failures = delivered || transport ? 0 : stuck_failures + 1;
    if (stuck_failures >= kMaxStuckFailures) {
      return absl::Status(error.code(), absl::StrCat(status.error_message(), " (", stuck_failures,
                                                     " times in a row at cursor '", cursor(),
                                                     "' with no change delivered; not retrying)"));
    }
    if (delivered) backoff = options_.min_backoff;
    // Another instance of the group may be up: the next attempt tries the next address (a
    // replica serves the same cursors and log id).
    if (transport) current_ = (current_ + 1) % stubs_.size();
    if (on_retry) on_retry(error, backoff);
    if (stopped_.WaitForNotificationWithTimeout(backoff)) return absl::OkStatus();
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  return absl::OkStatus();
}

void Subscriber::SetUp(grpc::ClientContext* context) const {
  if (!options_.token.empty()) context->AddMetadata("authorization", "Bearer " + options_.token);
}

grpc::Status Subscriber::StreamOnce(const ChangeHandler& on_change,
                                    const ProgressHandler& on_progress, absl::Status* handler_error,
                                    bool* delivered) {
  grpc::ClientContext context;
  SetUp(&context);
  v1::SubscribeRequest request = options_.request;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_.load()) return grpc::Status::CANCELLED;
    context_ = &context;
    if (!cursor_.empty()) {  // resume right after what was handed over
      request.clear_from_lsn();
      request.clear_from_head();
      request.set_cursor(cursor_);
    }
    if (!log_id_.empty()) request.set_log_id(log_id_);  // on that log only
  }
  std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader =
      stubs_[current_]->Subscribe(&context, request);
  v1::SubscribeResponse response;
  // A value fetch that failed: the stream ends and the next one starts after the last change
  // handed over.
  grpc::Status fetch_failure;
  // A value fetch in flight is cancelled by Stop() too.
  const ContextSetup setup = [this](grpc::ClientContext* call) {
    if (call != nullptr) SetUp(call);
    absl::MutexLock lock(&mu_);
    fetch_context_ = call;
    if (call != nullptr && stopping_.load()) call->TryCancel();
  };
  while (handler_error->ok() && fetch_failure.ok() && reader->Read(&response)) {
    NoteLogId(response.log_id());
    for (v1::Change& change : *response.mutable_changes()) {
      if (options_.fetch_large_values && HasLargeValues(change)) {
        const absl::Status fetched = FetchLargeValues(*stubs_[current_], setup, &change);
        if (!fetched.ok()) {
          // NOT_FOUND: compaction removed the change after it was sent; a new stream from the
          // last cursor no longer holds it (ABORTED: retried at once, ends Run() if it persists).
          fetch_failure = grpc::Status(fetched.code() == absl::StatusCode::kNotFound
                                           ? grpc::StatusCode::ABORTED
                                           : static_cast<grpc::StatusCode>(fetched.code()),
                                       std::string(fetched.message()));
          break;
        }
      }
      *handler_error = on_change(change);
      if (handler_error->ok()) *handler_error = Advance(change.cursor());
      if (!handler_error->ok()) break;
      *delivered = true;
    }
    if (!fetch_failure.ok()) break;
    if (handler_error->ok() && response.changes().empty() && !response.cursor().empty()) {
      *handler_error = Advance(response.cursor());
      *delivered = true;
      if (on_progress) on_progress(response.cursor(), response.head_cursor());
    }
  }
  if (!handler_error->ok() || !fetch_failure.ok()) context.TryCancel();
  grpc::Status status = reader->Finish();
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
  return fetch_failure.ok() ? status : fetch_failure;
}

}  // namespace walfeed
