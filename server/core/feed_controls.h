// FeedControls: the optional parts of walfeed that the feed's services answer for (Admin calls,
// FeedInfo), each null where it does not run: backfills (only on a walfeed that reads PostgreSQL
// alone) and push subscriptions.
#ifndef WALFEED_SERVER_CORE_FEED_CONTROLS_H_
#define WALFEED_SERVER_CORE_FEED_CONTROLS_H_

#include "server/core/backfill_control.h"
#include "server/core/push_control.h"

namespace walfeed {

struct FeedControls {
  BackfillControl* backfills = nullptr;
  PushControl* pushes = nullptr;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_FEED_CONTROLS_H_
