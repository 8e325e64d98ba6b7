// ResyncDiffer: turns the rows a resynchronisation reads from PostgreSQL into the differences
// against what the log holds, and stages only those (marked Change.resync).
//
// For a table whose rows the log follows by key (PRIMARY_KEY or UNIQUE_INDEX, and no change the
// log never merges since its last TRUNCATE): a row the log does not hold as live becomes an
// INSERT; a row whose values differ from the log's newest image becomes an UPDATE with that image
// as `before`; a row that is the same is left out; after the table's rows, every row the log
// holds as live that PostgreSQL no longer has becomes a DELETE (`before`: its last image). A
// value the log holds only as unchanged_toast, or of another type, counts as different; a column
// the image lacks counts as NULL, and one PostgreSQL no longer has does not count (as streaming
// leaves rows untouched since an ALTER TABLE). Any other table cannot be
// compared row by row: it gets a TRUNCATE followed by its rows as READ. Applied to the log's
// state, the staged changes give exactly the rows that were read. Not thread-safe.
#ifndef WALFEED_SERVER_SOURCE_RESYNC_DIFFER_H_
#define WALFEED_SERVER_SOURCE_RESYNC_DIFFER_H_

#include "absl/status/status.h"
#include "server/core/logged_rows.h"
#include "server/source/change_stager.h"
#include "server/source/snapshot_copier.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class ResyncDiffer final : public CopiedRowHandler {
 public:
  // Both must outlive the differ. `rows` must be caught up, with no seen rows noted.
  ResyncDiffer(LoggedRows* rows, ChangeStager* stager) : rows_(rows), stager_(stager) {}

  absl::Status BeginTable(const v1::Change& table) override;
  absl::Status Row(v1::Change row) override;
  absl::Status EndTable(const v1::Change& table) override;

  // What was staged so far (time, reason, cursors and slot are the caller's to fill).
  const v1::Resynchronisation& counts() const { return counts_; }

 private:
  // Whether `row`'s values equal those of `image` (the log's newest change of that row).
  absl::StatusOr<bool> SameValues(const v1::Change& row, const v1::Change& image) const;

  LoggedRows* const rows_;
  ChangeStager* const stager_;
  // The table being read is compared row by row (else: TRUNCATE and READ).
  bool by_key_ = false;
  v1::Resynchronisation counts_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_RESYNC_DIFFER_H_
