#include "server/feed/subscription_plan.h"

#include <algorithm>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/error_reason.h"
#include "server/core/table_name.h"
#include "server/core/utf8.h"

namespace walfeed {
namespace {

// A condition longer than this is not a row filter anyone writes by hand.
constexpr size_t kMaxWhereBytes = 64 << 10;

}  // namespace
namespace {

constexpr size_t kMaxTableFilters = 10000;
constexpr size_t kMaxNameBytes = 256;

// The published tables, listed in an error message (at most a handful).
std::string ListSome(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  constexpr size_t kShown = 10;
  std::vector<std::string> shown(names.begin(), names.begin() + std::min(names.size(), kShown));
  std::string out = absl::StrJoin(shown, ", ");
  if (names.size() > kShown) absl::StrAppend(&out, " and ", names.size() - kShown, " more");
  return out;
}

}  // namespace

bool SubscriptionPlan::Accepts(const v1::Change& change) const {
  return Accepts(change.op(), change.schema(), change.table());
}

bool SubscriptionPlan::Accepts(int op, absl::string_view schema, absl::string_view table) const {
  if (op_mask != 0 && (op < 0 || op >= 32 || (op_mask & (1u << op)) == 0)) return false;
  if (tables.empty()) return true;
  thread_local std::string key;
  key.assign(schema.data(), schema.size());
  key.push_back('\0');
  key.append(table.data(), table.size());
  return tables.contains(key);
}

absl::Status PurgedError(const Position& next, const Position& purge_point) {
  return WithReason(
      absl::OutOfRangeError(absl::StrCat(
          "compaction has removed deletes or expired changes up to ", FormatCursor(purge_point),
          ", so reading on from ", FormatCursor(next),
          " could miss them; re-read the whole feed from from_lsn=0 and rebuild your state")),
      reason::kCursorPurged);
}

absl::Status LogMismatchError(absl::string_view requested_bytes, absl::string_view log_id) {
  // Any bytes may come in; the reply is text.
  const std::string requested = ToValidUtf8(requested_bytes.substr(0, kMaxNameBytes));
  absl::Status mismatch = absl::FailedPreconditionError(absl::StrCat(
      "this cursor belongs to another log (log_id '", requested, "'; this feed's log is '", log_id,
      "', a rebuilt or different data directory): its "
      "positions name other changes here. Re-read from from_lsn=0 (and drop the state built "
      "from the other log), then keep this log_id with your cursor"));
  mismatch = WithDetail(std::move(mismatch), "requested_log_id", requested);
  mismatch = WithDetail(std::move(mismatch), "log_id", log_id);
  return WithReason(std::move(mismatch), reason::kLogMismatch);
}

absl::StatusOr<SubscriptionPlan> PlanSubscription(const v1::SubscribeRequest& request,
                                                  const FeedBounds& bounds,
                                                  const std::vector<std::string>& known_tables,
                                                  const PlanLimits& limits) {
  SubscriptionPlan plan;
  if (!request.log_id().empty() && request.log_id() != bounds.log_id) {
    return LogMismatchError(request.log_id(), bounds.log_id);
  }
  const int starts = (request.from_lsn() != 0) + !request.cursor().empty() + request.from_head();
  if (starts > 1) {
    return WithReason(absl::InvalidArgumentError("set at most one of from_lsn, cursor and "
                                                 "from_head: they name different starting points"),
                      reason::kStartConflict);
  }
  if (!request.cursor().empty()) {
    if (request.cursor().size() > kMaxNameBytes) {
      return WithReason(absl::InvalidArgumentError(
                            absl::StrCat("cursor is ", request.cursor().size(),
                                         " bytes long; a cursor looks like '0/16B3748:3'")),
                        reason::kCursorMalformed);
    }
    absl::StatusOr<Position> cursor = ParseCursor(request.cursor());
    if (!cursor.ok()) return WithReason(cursor.status(), reason::kCursorMalformed);
    if (*cursor ==
        Position{std::numeric_limits<uint64_t>::max(), std::numeric_limits<uint32_t>::max()}) {
      return WithReason(absl::OutOfRangeError(absl::StrCat(
                            "cursor '", request.cursor(),
                            "' is the last position there can be: no change comes after it. "
                            "Resume with a cursor this feed sent, or use from_head")),
                        reason::kStartBeyondWal);
    }
    plan.start = cursor->Successor();
  } else if (request.from_head()) {
    plan.start = bounds.head.Successor();
  } else {
    plan.start = Position{request.from_lsn(), 0};
  }
  plan.holds_state = starts > 0;
  plan.purge_point = bounds.purge_point;
  if (plan.holds_state && !bounds.purge_point.IsZero() && plan.start <= bounds.purge_point) {
    return PurgedError(plan.start, bounds.purge_point);
  }
  const uint64_t newest_lsn = std::max(bounds.server_wal_end, bounds.head.lsn);
  if (!request.from_head() && bounds.server_wal_end != 0 && plan.start.lsn > newest_lsn) {
    return WithReason(
        absl::OutOfRangeError(absl::StrCat(
            request.cursor().empty() ? "from_lsn " : "cursor ",
            request.cursor().empty() ? FormatLsn(request.from_lsn()) : request.cursor(),
            " is beyond the end of PostgreSQL's WAL (", FormatLsn(newest_lsn),
            "): no change has that position. Resume with a cursor this feed sent, or use "
            "from_head")),
        reason::kStartBeyondWal);
  }

  if (request.tables_size() > static_cast<int>(kMaxTableFilters)) {
    return WithReason(absl::InvalidArgumentError(
                          absl::StrCat("the table filter names ", request.tables_size(),
                                       " tables; at most ", kMaxTableFilters, " are allowed")),
                      reason::kFilterInvalid);
  }
  for (const std::string& name : request.tables()) {
    if (name.empty() || name.size() > kMaxNameBytes) {
      return WithReason(absl::InvalidArgumentError(absl::StrCat(
                            "table filter entry '", name.substr(0, 64),
                            "' must be 'schema.table', 1 to ", kMaxNameBytes, " bytes")),
                        reason::kFilterInvalid);
    }
    absl::StatusOr<TableName> parsed = ParseTableName("table filter entry", name);
    if (!parsed.ok()) return WithReason(parsed.status(), reason::kFilterInvalid);
    const std::string qualified = FormatTableName(*parsed);
    if (limits.tables_known &&
        !std::binary_search(known_tables.begin(), known_tables.end(), qualified)) {
      return WithReason(
          absl::NotFoundError(absl::StrCat(
              "table '", qualified, "' in the table filter is not published; published tables: ",
              ListSome(known_tables))),
          reason::kTableNotFound);
    }
    plan.tables.insert(TableKey(parsed->schema, parsed->table));
  }

  for (int op : request.ops()) {
    if (op <= v1::Change::OP_UNSPECIFIED || op > v1::Change::MESSAGE) {
      return WithReason(absl::InvalidArgumentError(absl::StrCat(
                            "operation filter value ", op,
                            " is not an operation; use INSERT, UPDATE, DELETE, TRUNCATE, READ or "
                            "MESSAGE")),
                        reason::kFilterInvalid);
    }
    plan.op_mask |= 1u << op;
  }

  if (!request.where().empty()) {
    if (request.where().size() > kMaxWhereBytes) {
      return WithReason(absl::InvalidArgumentError(absl::StrCat("where is ", request.where().size(),
                                                                " bytes; at most ", kMaxWhereBytes,
                                                                " are taken")),
                        reason::kFilterInvalid);
    }
    absl::StatusOr<RowFilter> filter = RowFilter::Parse(request.where());
    if (!filter.ok()) return filter.status();
    plan.row_filter = *std::move(filter);
  }

  const size_t asked = request.max_batch_changes();
  plan.max_batch_changes =
      asked == 0 ? limits.default_batch_changes : std::min(asked, limits.max_batch_changes);
  if (request.stop_at_head()) plan.stop_at = bounds.head;
  return plan;
}

}  // namespace walfeed
