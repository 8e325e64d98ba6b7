// SharedBatchCache: the batches most recently built for unfiltered subscribers, so that
// subscribers following the head in step read and frame each batch once and share its bytes.
//
// A batch is keyed by where it starts and how many changes it may hold; copying its
// grpc::ByteBuffer shares the slices, not the bytes. An entry is used only while the log's purge
// point is the one it was built under (compaction may have removed some of its changes since,
// and a subscriber must see what a read now would see, or more of the same). At most
// kCapacity entries are kept, the oldest dropped first: a bounded amount of memory however many
// subscribers there are. Thread-safe.
#ifndef WALFEED_SERVER_FEED_SHARED_BATCH_CACHE_H_
#define WALFEED_SERVER_FEED_SHARED_BATCH_CACHE_H_

#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/core/position.h"

namespace walfeed {

struct SharedBatch {
  Position start;          // the first position read
  size_t max_changes = 0;  // the batch size it was read with
  Position purge_point;    // the log's purge point before the read
  Position next;           // where the reader goes on from
  bool ends_transaction = false;
  size_t changes = 0;         // how many changes the response holds
  grpc::ByteBuffer response;  // the framed SubscribeResponse
};

class SharedBatchCache {
 public:
  static constexpr size_t kCapacity = 32;

  // Copies the batch that starts at `start`, read with `max_changes` under `purge_point`, into
  // `*batch`; false when there is none.
  bool Find(const Position& start, size_t max_changes, const Position& purge_point,
            SharedBatch* batch) const;
  void Add(SharedBatch batch);

 private:
  mutable absl::Mutex mu_;
  std::deque<SharedBatch> batches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_SHARED_BATCH_CACHE_H_
