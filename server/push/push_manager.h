// PushManager: the push subscriptions of this walfeed (PushControl): keeps them in a PushStore,
// runs one PushDeliverer per subscription, wakes them when the log's head moves, and loads the
// subscriptions of the --push-config file at start (creating each, or taking its new settings and
// keeping its cursor; a subscription removed from the file stays until deleted).
// Thread-safe.
#ifndef WALFEED_SERVER_PUSH_PUSH_MANAGER_H_
#define WALFEED_SERVER_PUSH_PUSH_MANAGER_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/push_control.h"
#include "server/feed/change_feed_service.h"
#include "server/log/change_log.h"
#include "server/push/push_deliverer.h"
#include "server/push/push_store.h"

namespace walfeed {

class PushManager final : public PushControl {
 public:
  // Reads the stored subscriptions of `log` and those of `config_path` (the --push-config file,
  // a JSON walfeed.v1.PushConfig; "" for none). `log` must outlive the manager; `source_status`
  // tells the published tables and the database.
  static absl::StatusOr<std::unique_ptr<PushManager>> Load(ChangeLog* log,
                                                           SourceStatusFn source_status,
                                                           const std::string& config_path);
  ~PushManager() override;

  // Starts delivering every subscription.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Stops every delivery (a request in flight is abandoned and sent again after a restart).
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<v1::PushSubscriptionInfo> Create(const v1::PushSubscription& settings) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::PushSubscriptionInfo> Pause(const std::string& name) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::PushSubscriptionInfo> Resume(
      const v1::PushSubscriptionRequest& request) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Delete(const std::string& name) override ABSL_LOCKS_EXCLUDED(mu_, admin_mu_);
  std::vector<v1::PushSubscriptionInfo> List() const override ABSL_LOCKS_EXCLUDED(mu_);

  // For compaction under --keep-for-consumers (PushStore::OldestUndelivered).
  std::optional<Position> OldestUndelivered() const { return store_->OldestUndelivered(); }

 private:
  PushManager(ChangeLog* log, SourceStatusFn source_status, std::unique_ptr<PushStore> store);
  // Creates from checked settings: `tables_known` checks the tables against the publication.
  absl::StatusOr<v1::PushSubscriptionInfo> CreateChecked(const v1::PushSubscription& settings,
                                                         bool replace)
      ABSL_LOCKS_EXCLUDED(mu_, admin_mu_);
  void StartDeliverer(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeDeliverer(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  v1::PushSubscriptionInfo Describe(const PushStore::Snapshot& snapshot) const
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::PushSubscriptionInfo> DescribeNamed(const std::string& name) const;

  // What the log's head listener reaches: the manager until it is destroyed (the log may append
  // after that, in tests).
  struct HeadWake {
    absl::Mutex mu;
    PushManager* manager ABSL_GUARDED_BY(mu) = nullptr;
  };
  void WakeAll() ABSL_LOCKS_EXCLUDED(mu_);

  ChangeLog* const log_;
  const SourceStatusFn source_status_;
  const std::shared_ptr<HeadWake> head_wake_ = std::make_shared<HeadWake>();
  const std::unique_ptr<PushStore> store_;
  // Held through a Create or Delete, so that the store and the deliverers change together.
  absl::Mutex admin_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::unique_ptr<PushDeliverer>> deliverers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_PUSH_PUSH_MANAGER_H_
