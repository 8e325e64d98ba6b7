// SubscriptionPlan: a validated SubscribeRequest, resolved against the log.
//
// PlanSubscription() turns the request's start fields into one inclusive start position,
// checks filters against the published tables, and fixes the stop point for stop_at_head.
// Every rejection is InvalidArgument or NotFound with a sentence the caller can act on;
// nothing here touches gRPC.
#ifndef WALFEED_SERVER_FEED_SUBSCRIPTION_PLAN_H_
#define WALFEED_SERVER_FEED_SUBSCRIPTION_PLAN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "server/core/position.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

struct SubscriptionPlan {
  // The first position to read (inclusive).
  Position start;
  // Only these "schema.table" names; empty means every table. MESSAGE changes have no table and
  // pass a table filter only when no table filter is set.
  absl::flat_hash_set<std::string> tables;
  // Bit (1 << op) per accepted Change.Op; 0 means every op.
  uint32_t op_mask = 0;
  // stop_at_head: the last position to deliver; nullopt follows the live tail forever.
  std::optional<Position> stop_at;
  size_t max_batch_changes = 0;

  bool Accepts(const v1::Change& change) const;
};

struct PlanLimits {
  size_t default_batch_changes = 500;
  size_t max_batch_changes = 1000;
};

absl::StatusOr<SubscriptionPlan> PlanSubscription(const v1::SubscribeRequest& request,
                                                  const Position& head,
                                                  const std::vector<std::string>& known_tables,
                                                  const PlanLimits& limits);

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_SUBSCRIPTION_PLAN_H_
