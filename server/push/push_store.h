// PushStore: the push subscriptions this walfeed keeps, with each one's cursor, batch in flight
// and counters, durable in the log's metadata (kPushSubscriptionsKey).
//
// Promises:
// - Every change returns only once it is durable; changes that arrive together share one synced
//   write (GroupedWrite).
// - Each subscription has an epoch that an operator's reset of its cursor (Resume to the start or
//   the head) and its deletion move on: a deliverer's update made in an older epoch is refused
//   (Aborted), so an operator's reset is never overwritten by a batch that was in flight.
// Thread-safe.
#ifndef WALFEED_SERVER_PUSH_PUSH_STORE_H_
#define WALFEED_SERVER_PUSH_PUSH_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/grouped_write.h"
#include "server/core/position.h"
#include "server/log/change_log.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class PushStore {
 public:
  // Reads the stored subscriptions of `log`, which must outlive the store. DataLoss when the
  // record cannot be read.
  static absl::StatusOr<std::unique_ptr<PushStore>> Load(ChangeLog* log);

  struct Snapshot {
    v1::StoredPushSubscription stored;
    uint64_t epoch = 0;
  };

  // Stores a new subscription with complete `settings` (CompletePushSettings), starting after
  // `start` (zero: the oldest change); one that `holds_state` accounts for the log's purge point
  // now. When one of that name exists: with equal settings it is
  // answered as it is (created false); with other settings AlreadyExists, unless `replace`, which
  // takes the new settings and keeps its cursor.
  absl::StatusOr<std::pair<Snapshot, bool>> Create(const v1::PushSubscription& settings,
                                                   const Position& start, bool holds_state,
                                                   bool replace) ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<Snapshot> Get(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<Snapshot> All() const ABSL_LOCKS_EXCLUDED(mu_);

  // Applies `change` to `name`'s record, durably. NotFound (PUSH_NOT_FOUND) when there is none;
  // with `epoch`, Aborted when the record's epoch has moved on since. `new_epoch` moves it on.
  absl::Status Update(const std::string& name,
                      const std::function<void(v1::StoredPushSubscription*)>& change,
                      std::optional<uint64_t> epoch = std::nullopt, bool new_epoch = false)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets `name`, durably. NotFound (PUSH_NOT_FOUND) when there is none.
  absl::Status Remove(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // The oldest change some subscription has not delivered yet (zero for one at the start);
  // nullopt when there is none. For compaction under --keep-for-consumers.
  std::optional<Position> OldestUndelivered() const ABSL_LOCKS_EXCLUDED(mu_);

  static Position CursorOf(const v1::StoredPushSubscription& stored);
  static void SetCursor(const Position& cursor, v1::StoredPushSubscription* stored);
  static Position PurgeBaselineOf(const v1::StoredPushSubscription& stored);
  static void SetPurgeBaseline(const Position& purge_point, v1::StoredPushSubscription* stored);

 private:
  explicit PushStore(ChangeLog* log) : log_(log) {}
  absl::Status Persist() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ChangeLog* const log_;
  mutable absl::Mutex mu_;
  absl::btree_map<std::string, Snapshot> subscriptions_ ABSL_GUARDED_BY(mu_);
  uint64_t next_epoch_ ABSL_GUARDED_BY(mu_) = 1;
  GroupedWrite write_ ABSL_GUARDED_BY(mu_);
};

// Copies the delivery's state of `from` (cursor, batch in flight, counters, last answer) onto
// `to`, leaving `to`'s settings, creation time and pause alone.
void CopyDeliveryState(const v1::StoredPushSubscription& from, v1::StoredPushSubscription* to);

// NotFound (reason PUSH_NOT_FOUND) for the subscription `name`.
absl::Status PushNotFound(const std::string& name);

}  // namespace walfeed

#endif  // WALFEED_SERVER_PUSH_PUSH_STORE_H_
