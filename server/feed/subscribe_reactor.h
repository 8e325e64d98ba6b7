// SubscribeReactor: one Subscribe stream, driven by gRPC's callback API.
//
// A subscriber is a cursor over the log and nothing more: it reads a batch from its position,
// filters it, writes it, and on OnWriteDone reads on; while it is behind the head it reads the
// next batch as the last one is on the wire (read-ahead). Caught up, it hands itself to the
// SubscriberHub until the head moves, sending a progress message (no changes, the cursor up to
// which it has caught up, the head) after each progress interval with nothing to send. A slow
// client only holds back its own position: no more than the message on the wire and one batch
// read ahead are held for it, and none read ahead once streams are many (the shared budget).
// See SubscriberHub for who may drive it when.
#ifndef WALFEED_SERVER_FEED_SUBSCRIBE_REACTOR_H_
#define WALFEED_SERVER_FEED_SUBSCRIBE_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/feed/change_wire.h"
#include "server/feed/consumer_registry.h"
#include "server/feed/feed_options.h"
#include "server/feed/shared_batch_cache.h"
#include "server/feed/subscriber_hub.h"
#include "server/feed/subscription_plan.h"
#include "server/log/change_log.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed {

// Writes serialized walfeed.v1.SubscribeResponse messages built around the stored change bytes
// (see change_wire.h): the service registers Subscribe as a raw (ByteBuffer) method.
class SubscribeReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>, public Pumpable {
 public:
  // `consumer`: a named consumer's hold on its name, kept until the stream ends.
  SubscribeReactor(const ChangeLog* log, SubscriberHub* hub, SharedBatchCache* shared_batches,
                   const FeedOptions* options, SubscriptionPlan plan,
                   std::unique_ptr<ConsumerRegistry::Lease> consumer = nullptr);

  void Pump() override;

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  enum class BatchResult {
    kWrite,        // builder_ holds changes to send
    kFilteredOut,  // records were read, none is for this subscriber
    kCaughtUp,     // nothing to read: next_ is past the head
    kStopped,      // stop_at_head reached with nothing left to send
    kFailed,       // *failure says why
  };
  // Reads the next batch from next_ and filters it into filled_ (or takes it from the shared
  // batches). Never finishes the call.
  BatchResult FillBatch(grpc::Status* failure);
  // A batch read with the purge point at `purge_before_read` is about to be sent.
  void NoteDelivery(const Position& purge_before_read);
  // Fails the subscriber when compaction purged, at `purge_point`, what it had not read yet when
  // its read started at `read_from` (see FillBatch).
  bool Purged(const Position& read_from, const Position& purge_point, grpc::Status* failure) const;
  // Every change goes to this subscriber, and it follows the log without end: the batches it
  // reads are the same for every such subscriber at the same position.
  bool SharesBatches() const;
  // With a row filter (plan_.row_filter): what to send for the stored `change` at `position`:
  // `change` itself, a copy marked left_filter, or "" when the row is not for this subscriber.
  // InvalidArgument (FILTER_INVALID) when the filter cannot judge it, DataLoss when it cannot
  // be decoded. The view is valid until the next call.
  absl::StatusOr<absl::string_view> FilterRow(absl::string_view change, const Position& position);

  // Reads per Pump(), and writes per SendFilled(), before the thread is given back.
  static constexpr int kMaxReadsPerPump = 16;
  // A shared batch's message may exceed this stream's byte share by its framing.
  static constexpr size_t kFramingAllowance = 64 << 10;
  void Write();
  // Writes what FillBatch() filled, and reads the next batch while it is on the wire when that
  // pays (ShouldReadAhead).
  void SendFilled();
  bool ShouldReadAhead() const;
  // A write completed: finishes the stream, or says what comes next.
  enum class Next {
    kSendFilled,  // filled_ holds the batch read ahead
    kReadOn,      // Pump()
    kNothing,     // finished, or a last message is being written
  };
  Next AfterWrite(bool ok);
  // A message with no changes: the cursor the client has caught up to, and the head.
  void WriteProgress();
  // stop_at_head reached: ends the stream, after a last progress message when changes were
  // filtered out since the last message.
  void FinishAtStop();
  // The position just before next_: everything up to it is delivered or filtered out.
  Position CaughtUpTo() const;
  bool ReachedStop() const;

  // Held until the stream ends (destroyed with the reactor): the name's one stream.
  const std::unique_ptr<ConsumerRegistry::Lease> consumer_;
  const ChangeLog* const log_;
  SubscriberHub* const hub_;
  SharedBatchCache* const shared_batches_;
  const FeedOptions* const options_;
  const SubscriptionPlan plan_;

  // Touched only by whoever drives the reactor (see SubscriberHub), one party at a time.
  Position next_;
  // The cursor of the last message sent (a change's, or progress's); at first, the start's.
  Position reported_;
  ResponseBuilder builder_;
  // FilterRow()'s memory, reused from change to change: the block its decoded change lives on
  // (an arena, so that a typical change costs no heap allocation) and the marked copy.
  static constexpr size_t kRowArenaBytes = 16 << 10;
  std::unique_ptr<char[]> row_arena_;
  std::string left_scratch_;
  // What FillBatch() read for the next message: its bytes, changes, and whether it is the last.
  struct Filled {
    grpc::ByteBuffer response;
    size_t changes = 0;
    bool finish_after = false;
  };
  Filled filled_;
  // A batch read ahead while the message before it was on the wire: FillBatch()'s result for it
  // (its message is in filled_), and why it failed.
  std::optional<BatchResult> ahead_;
  grpc::Status ahead_failure_;
  // filled_ holds a batch read ahead that the next Pump() sends.
  bool send_filled_ = false;
  // The message being written (gRPC reads it until OnWriteDone), and how many changes it holds.
  grpc::ByteBuffer response_;
  size_t response_changes_ = 0;
  absl::Time last_write_ = absl::Now();
  bool finish_after_write_ = false;
  bool last_read_ends_transaction_ = false;
  // A change was sent: from here on the subscriber holds state a purge could invalidate.
  bool delivered_any_ = false;
  // The purge point the subscriber's state already accounts for.
  Position purge_baseline_;

  std::atomic<bool> cancelled_{false};

  // Read-ahead hands the reactor over between two threads: the one that started a write and
  // reads the next batch meanwhile (reading_ahead_), and gRPC's OnWriteDone. Whichever finishes
  // second goes on; the other returns. Everything above is touched by that one party only.
  absl::Mutex handoff_mu_;
  bool reading_ahead_ ABSL_GUARDED_BY(handoff_mu_) = false;
  bool write_done_ ABSL_GUARDED_BY(handoff_mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(handoff_mu_) = false;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_SUBSCRIBE_REACTOR_H_
