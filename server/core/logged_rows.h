// LoggedRows: the newest state the log holds of each row of a keyed table, as a
// resynchronisation reads it to find what changed while no slot recorded changes (the log
// implements it; server/source/resync_differ.h uses it).
//
// A row is named by a change of it: its relation_id, names and key columns, as the log keys rows
// (server/log/row_identity.h). A row is live when its newest stored change did not delete it and
// its table was not truncated after that change. The answers are those of the log's head at the
// time of the call: call with appends stopped. Seen rows are a scratch set kept in the log's
// store, not in memory, so a table of any size is compared in constant memory.
#ifndef WALFEED_SERVER_CORE_LOGGED_ROWS_H_
#define WALFEED_SERVER_CORE_LOGGED_ROWS_H_

#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class LoggedRows {
 public:
  virtual ~LoggedRows() = default;

  // Brings the per-row state up to the head (it may lag after a staged snapshot).
  virtual absl::Status CatchUpRows() = 0;

  // Whether the log followed every change of `table`'s table by key since its last TRUNCATE:
  // false when a change it never merges came since (the table had REPLICA IDENTITY FULL or
  // NOTHING for a while), after which its rows' stored images may be stale.
  virtual absl::StatusOr<bool> RowsFollowedByKey(const v1::Change& table) const = 0;

  // The newest stored change of the row `row` names when the log holds that row as live (its
  // large values as references), nullopt otherwise. InvalidArgument when `row` names no row of a
  // keyed table.
  virtual absl::StatusOr<std::optional<v1::Change>> LiveRow(const v1::Change& row) const = 0;

  // Whether the out-of-line value `large` refers to equals the value `column` holds inline.
  virtual absl::StatusOr<bool> LargeValueEquals(const v1::LargeValue& large,
                                                const v1::Column& column) const = 0;

  // Notes that the row `row` names exists in the source.
  virtual absl::Status NoteSeenRow(const v1::Change& row) = 0;

  // Hands `visit` the newest stored change of every row of `table`'s table (by relation_id) that
  // the log holds as live and that was not noted as seen, in the log's key order; stops at the
  // first error `visit` returns.
  using RowVisitor = std::function<absl::Status(v1::Change newest)>;
  virtual absl::Status VisitUnseenLiveRows(const v1::Change& table,
                                           const RowVisitor& visit) const = 0;

  // Empties the set of seen rows.
  virtual absl::Status ForgetSeenRows() = 0;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_LOGGED_ROWS_H_
