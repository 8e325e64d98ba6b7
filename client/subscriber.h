// walfeed::Subscriber: the C++ client library's one class. A subscription to walfeed's feed that
// survives walfeed restarts and network trouble: it hands the application every change in order,
// reconnects with backoff after any transport error, and resumes right after the last change it
// handed over (a cursor it can also save in a CursorStore, so that a restarted application
// resumes too).
//
//   walfeed::FileCursorStore store("/var/lib/myapp/walfeed.cursor");
//   walfeed::SubscriberOptions options;
//   options.server = "127.0.0.1:50051";
//   options.store = &store;
//   options.request.add_tables("public.orders");
//   walfeed::Subscriber subscriber(options);
//   absl::Status ended = subscriber.Run([](const walfeed::v1::Change& change) {
//     Apply(change);             // the cursor is saved after this returns OK
//     return absl::OkStatus();   // an error stops Run() with that error
//   });
//
// Every value arrives whole, however large: values walfeed sends out of line are fetched first
// (SubscriberOptions::fetch_large_values). A change whose value compaction removed before it was
// fetched is not handed over: the subscriber reads on from the change before it, as if
// compaction had run before the change was read (a newer change of its row follows).
//
// The store keeps the log's id beside the cursor and the subscriber sends it back when it
// resumes: a cursor of another log (walfeed's data directory rebuilt, or another database's
// walfeed) ends Run() with FAILED_PRECONDITION, for which IsLogMismatch() (feed_errors.h) is
// true, instead of a stream that silently skips changes.
//
// Delivery is at least once across application crashes (a change handled but not yet saved is
// handed over again after a restart) and exactly once, in order, within one Run(). Errors that
// retrying cannot mend (a malformed cursor, an unknown table, a purged cursor, another log's
// cursor, a missing token) end Run() with walfeed's status, sentence and reason
// (FeedErrorReason()); so does an error that is not about the
// connection (a message this client cannot take) when it comes back three times in a row at
// the same cursor.
#ifndef WALFEED_CLIENT_SUBSCRIBER_H_
#define WALFEED_CLIENT_SUBSCRIBER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/cursor_store.h"
#include "client/feed_errors.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed {

struct SubscriberOptions {
  // walfeed's address, host:port; or several, comma-separated, of one group (a walfeed and its
  // replicas, which serve the same cursors and log id): after a connection error the next
  // attempt goes to the next address, resuming with the cursor and log id.
  std::string server = "127.0.0.1:50051";
  // Plaintext when unset.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Sent as "authorization: Bearer <token>" when set.
  std::string token;
  // Filters, batch size, stop_at_head and where to start when the store holds no cursor. Once a
  // change (or progress) was handed over, reconnections resume from its cursor instead.
  v1::SubscribeRequest request;
  // Where to save the cursor (and the log's id) after each change the handler accepted (and
  // after progress messages); optional. A saved cursor wins over the request's start.
  CursorStore* store = nullptr;
  // Reconnection backoff: doubles from min to max; reset once a stream delivers something.
  absl::Duration min_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(30);
  // Values walfeed sends out of line (over 256 KiB; see large_values.h) are fetched and put in
  // place before the handler sees the change. Off: the handler gets the LargeValue references.
  bool fetch_large_values = true;
};

class Subscriber {
 public:
  using ChangeHandler = std::function<absl::Status(const v1::Change& change)>;
  // A message without changes: everything up to `cursor` is delivered or filtered out.
  using ProgressHandler =
      std::function<void(const std::string& cursor, const std::string& head_cursor)>;
  // A reconnection is coming, after `error`, in `backoff`.
  using RetryHandler = std::function<void(const absl::Status& error, absl::Duration backoff)>;

  explicit Subscriber(SubscriberOptions options);

  // Reads until Stop() (OK), the handler fails (its error), stop_at_head is reached (OK), or an
  // error retrying cannot mend (walfeed's status). Call from one thread at a time.
  absl::Status Run(const ChangeHandler& on_change, const ProgressHandler& on_progress = nullptr,
                   const RetryHandler& on_retry = nullptr);

  // Ends Run() soon, from any thread.
  void Stop();

  // The cursor after the last change or progress handed over ("" before any).
  std::string cursor() const;
  // The id of the log the cursor belongs to ("" before walfeed sent one).
  std::string log_id() const;

 private:
  // One Subscribe call; sets *delivered when it handed anything over.
  grpc::Status StreamOnce(const ChangeHandler& on_change, const ProgressHandler& on_progress,
                          absl::Status* handler_error, bool* delivered);
  absl::Status Advance(const std::string& cursor);
  // Takes the log id of a response: the first one a subscriber without one sees becomes its own.
  void NoteLogId(const std::string& log_id);
  // Sets up a call's context: the token.
  void SetUp(grpc::ClientContext* context) const;

  const SubscriberOptions options_;
  // One per address; Run() uses stubs_[current_] (its thread only).
  std::vector<std::unique_ptr<v1::ChangeFeed::Stub>> stubs_;
  size_t current_ = 0;
  std::atomic<bool> stopping_{false};
  absl::Notification stopped_;
  mutable absl::Mutex mu_;
  std::string cursor_ ABSL_GUARDED_BY(mu_);
  std::string log_id_ ABSL_GUARDED_BY(mu_);
  // The call in flight, cancelled by Stop().
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The ReadValue call in flight (fetching a value sent out of line), cancelled by Stop().
  grpc::ClientContext* fetch_context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace walfeed

#endif  // WALFEED_CLIENT_SUBSCRIBER_H_
