#include "server/feed/shared_batch_cache.h"

#include <utility>

namespace walfeed {

bool SharedBatchCache::Find(const Position& start, size_t max_changes, const Position& purge_point,
                            SharedBatch* batch) const {
  absl::MutexLock lock(&mu_);
  // Newest first: followers at the head ask for what was added last.
  for (auto it = batches_.rbegin(); it != batches_.rend(); ++it) {
    if (it->start == start && it->max_changes == max_changes && it->purge_point == purge_point) {
      *batch = *it;
      return true;
    }
  }
  return false;
}

void SharedBatchCache::Add(SharedBatch batch) {
  absl::MutexLock lock(&mu_);
  for (const SharedBatch& held : batches_) {
    if (held.start == batch.start && held.max_changes == batch.max_changes &&
        held.purge_point == batch.purge_point) {
      return;  // another subscriber built the same batch meanwhile
    }
  }
  batches_.push_back(std::move(batch));
  if (batches_.size() > kCapacity) batches_.pop_front();
}

}  // namespace walfeed
