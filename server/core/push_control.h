// PushControl: what the Admin service asks of the push subscriptions (Admin.*PushSubscription)
// and what FeedInfo shows of them; server/push/push_manager.h implements it. Kept here so that
// the feed does not depend on the push delivery.
#ifndef WALFEED_SERVER_CORE_PUSH_CONTROL_H_
#define WALFEED_SERVER_CORE_PUSH_CONTROL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class PushControl {
 public:
  virtual ~PushControl() = default;
  // Checks the settings and stores the subscription durably, then starts delivering.
  // InvalidArgument or NotFound (a table not published) with a sentence; AlreadyExists when a
  // subscription of that name exists with other settings (the same settings answer it as it is).
  virtual absl::StatusOr<v1::PushSubscriptionInfo> Create(const v1::PushSubscription& settings) = 0;
  // NotFound (reason PUSH_NOT_FOUND) for each of these when there is no such subscription.
  virtual absl::StatusOr<v1::PushSubscriptionInfo> Pause(const std::string& name) = 0;
  virtual absl::StatusOr<v1::PushSubscriptionInfo> Resume(
      const v1::PushSubscriptionRequest& request) = 0;
  virtual absl::Status Delete(const std::string& name) = 0;
  // Every subscription, by name, with its delivery's state and lag.
  virtual std::vector<v1::PushSubscriptionInfo> List() const = 0;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_PUSH_CONTROL_H_
