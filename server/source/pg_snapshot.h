// PgSnapshot: which transactions a PostgreSQL MVCC snapshot sees, from pg_current_snapshot()'s
// text form "xmin:xmax:xip1,xip2,...".
//
// A backfill reads each chunk under such a snapshot and asks, for the newest change the log holds
// of a row, whether the chunk's snapshot saw that change's transaction: a committed transaction is
// seen when its id is below xmax and not in the in-progress list. The log carries 32-bit
// transaction ids (Change.xid); they are compared with the snapshot's 64-bit ones modulo 2^32
// within PostgreSQL's own 2^31 window, the way PostgreSQL compares them. A plain value.
#ifndef WALFEED_SERVER_SOURCE_PG_SNAPSHOT_H_
#define WALFEED_SERVER_SOURCE_PG_SNAPSHOT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace walfeed {

class PgSnapshot {
 public:
  // InvalidArgument unless `text` is pg_snapshot's text form.
  static absl::StatusOr<PgSnapshot> Parse(absl::string_view text);

  // Whether a transaction with id `xid` that committed is visible in the snapshot.
  bool Sees(uint32_t xid) const;

  uint64_t xmin() const { return xmin_; }
  uint64_t xmax() const { return xmax_; }
  std::string ToString() const;

 private:
  uint64_t xmin_ = 0;
  uint64_t xmax_ = 0;
  std::vector<uint32_t> in_progress_;  // sorted, low 32 bits
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_PG_SNAPSHOT_H_
