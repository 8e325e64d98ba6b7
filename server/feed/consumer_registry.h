// ConsumerRegistry: the named consumers whose position walfeed keeps (SubscribeRequest.consumer,
// ChangeFeed.Commit, Admin.ResetConsumer and DeleteConsumer), like a Kafka consumer group's
// committed offsets.
//
// Promises:
// - Commit() returns only once the new cursor is durable in the log's metadata (kConsumersKey);
//   commits that arrive together share one synced write (group commit).
// - A consumer's cursor only moves forward through Commit(); only Reset() moves it back.
// - At most one stream per name: Acquire() hands out one lease per name at a time, and Reset()
//   and Delete() are refused while a lease is out.
// Thread-safe.
#ifndef WALFEED_SERVER_FEED_CONSUMER_REGISTRY_H_
#define WALFEED_SERVER_FEED_CONSUMER_REGISTRY_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/grouped_write.h"
#include "server/core/position.h"
#include "server/log/change_log.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class ConsumerRegistry {
 public:
  // Reads the stored consumers of `log`, which must outlive the registry. DataLoss when the
  // record cannot be read.
  static absl::StatusOr<std::unique_ptr<ConsumerRegistry>> Load(ChangeLog* log);

  // InvalidArgument (reason REQUEST_MALFORMED) unless `name` is 1 to 128 letters, digits, '.',
  // '_' or '-'.
  static absl::Status ValidateName(absl::string_view name);

  // One open stream's hold on its consumer name, given back when destroyed.
  class Lease {
   public:
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    friend class ConsumerRegistry;
    Lease(ConsumerRegistry* registry, std::string name)
        : registry_(registry), name_(std::move(name)) {}
    ConsumerRegistry* const registry_;
    const std::string name_;
  };
  // FailedPrecondition (reason CONSUMER_BUSY) while another stream holds `name`.
  absl::StatusOr<std::unique_ptr<Lease>> Acquire(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // The stored cursor of `name`: nullopt when it has none; a zero position for "the start".
  std::optional<Position> Cursor(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);

  // Moves `name`'s cursor forward to `cursor` (creating the consumer), durably. Returns the
  // stored cursor and whether it moved.
  absl::StatusOr<std::pair<Position, bool>> Commit(const std::string& name, const Position& cursor)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Sets `name`'s cursor to `cursor`, backward too, durably. CONSUMER_BUSY while it streams.
  absl::Status Reset(const std::string& name, const Position& cursor) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets `name`, durably. NotFound (reason CONSUMER_NOT_FOUND) when there is no such
  // consumer; CONSUMER_BUSY while it streams.
  absl::Status Delete(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // The oldest change some consumer has not committed yet (the one after its cursor; zero for
  // one at the start); nullopt when there is no consumer.
  std::optional<Position> OldestUncommitted() const ABSL_LOCKS_EXCLUDED(mu_);

  // Every consumer, by name, with its lag behind `head`.
  std::vector<v1::ConsumerInfo> List(const Position& head) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Consumer {
    Position cursor;
    absl::Time committed_at;
  };
  explicit ConsumerRegistry(ChangeLog* log) : log_(log) {}
  void Release(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  std::string Encode() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes every change up to now durable (GroupedWrite).
  absl::Status Persist() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ChangeLog* const log_;
  mutable absl::Mutex mu_;
  absl::btree_map<std::string, Consumer> consumers_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<std::string, bool> streaming_ ABSL_GUARDED_BY(mu_);
  // Makes consumers_ durable, grouping the commits that arrive together.
  GroupedWrite write_ ABSL_GUARDED_BY(mu_);
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_CONSUMER_REGISTRY_H_
