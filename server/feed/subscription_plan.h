// SubscriptionPlan: a validated SubscribeRequest, resolved against the log.
//
// PlanSubscription() turns the request's start fields into one inclusive start position,
// checks filters against the published tables, and fixes the stop point for stop_at_head.
// Every rejection is InvalidArgument, NotFound, OutOfRange or FailedPrecondition (a cursor of
// another log) with a sentence the caller can act on; nothing here touches gRPC.
#ifndef WALFEED_SERVER_FEED_SUBSCRIPTION_PLAN_H_
#define WALFEED_SERVER_FEED_SUBSCRIPTION_PLAN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "server/core/position.h"
#include "server/feed/row_filter.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

struct SubscriptionPlan {
  // The first position to read (inclusive).
  Position start;
  // The subscriber already holds state from before `start` (it resumes from a cursor or an LSN,
  // or starts at the head): a purge of what lies after it makes it fail. A subscriber from
  // from_lsn=0 holds none until it is sent a change.
  bool holds_state = false;
  // The log's purge point when the plan was made (start is above it when holds_state).
  Position purge_point;
  // Only these tables, as TableKey(schema, table); empty means every table. MESSAGE changes have no
  // table and pass a table filter only when no table filter is set.
  absl::flat_hash_set<std::string> tables;
  // Bit (1 << op) per accepted Change.Op; 0 means every op.
  uint32_t op_mask = 0;
  // SubscribeRequest.where, parsed; nullopt: every row.
  std::optional<RowFilter> row_filter;
  // stop_at_head: the last position to deliver; nullopt follows the live tail forever.
  std::optional<Position> stop_at;
  size_t max_batch_changes = 0;

  bool Accepts(const v1::Change& change) const;
  bool Accepts(int op, absl::string_view schema, absl::string_view table) const;
};

struct PlanLimits {
  size_t default_batch_changes = 500;
  size_t max_batch_changes = 1000;
  // Whether the published tables are known: a replica reads no publication, so its table
  // filters may name any well-formed table.
  bool tables_known = true;
};

// What the log and the source know when a Subscribe arrives.
struct FeedBounds {
  Position head;
  // The log's purge point (ChangeLog::PurgePoint): a start at or before it is OutOfRange.
  Position purge_point;
  // The end of PostgreSQL's WAL (0 when not known yet): a start beyond it, and beyond the head,
  // names a position that cannot exist and is OutOfRange.
  uint64_t server_wal_end = 0;
  // The log's identity: a request naming another log is FailedPrecondition (LOG_MISMATCH).
  std::string log_id;
};

absl::StatusOr<SubscriptionPlan> PlanSubscription(const v1::SubscribeRequest& request,
                                                  const FeedBounds& bounds,
                                                  const std::vector<std::string>& known_tables,
                                                  const PlanLimits& limits);

// The FailedPrecondition error (reason LOG_MISMATCH, both ids in its details) for a request that
// names log `requested` on the log `log_id`.
absl::Status LogMismatchError(absl::string_view requested, absl::string_view log_id);

// The OutOfRange error (reason CURSOR_PURGED) for a subscriber that would read on from
// `next` although compaction removed deletes or aged-out changes up to `purge_point`.
absl::Status PurgedError(const Position& next, const Position& purge_point);

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_SUBSCRIPTION_PLAN_H_
