// BackfillControl: what the Admin service asks of the backfills (Admin.Backfill, CancelBackfill)
// and what FeedInfo shows of them; server/source/backfill_runner.h implements it. Kept here so
// that the feed does not depend on the source.
#ifndef WALFEED_SERVER_CORE_BACKFILL_CONTROL_H_
#define WALFEED_SERVER_CORE_BACKFILL_CONTROL_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class BackfillControl {
 public:
  virtual ~BackfillControl() = default;
  // Checks `request` against PostgreSQL (the table is captured and keyed, the bounds fit its key,
  // PostgreSQL accepts the condition) and queues it durably. InvalidArgument or NotFound with a
  // sentence otherwise; Unavailable when PostgreSQL cannot be asked.
  virtual absl::StatusOr<v1::BackfillInfo> Enqueue(const v1::BackfillRequest& request) = 0;
  // Cancels a queued or running backfill (a running one after its current chunk). NotFound when
  // there is no backfill `id`.
  virtual absl::StatusOr<v1::BackfillInfo> Cancel(uint64_t id) = 0;
  // Every backfill kept, oldest first.
  virtual std::vector<v1::BackfillInfo> List() const = 0;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_BACKFILL_CONTROL_H_
