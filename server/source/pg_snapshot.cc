#include "server/source/pg_snapshot.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace walfeed {

absl::StatusOr<PgSnapshot> PgSnapshot::Parse(absl::string_view text) {
  const auto malformed = [text](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot '", text, "' is not pg_snapshot's text form: ", why));
  };
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  if (parts.size() != 3) return malformed("expected xmin:xmax:xip-list");
  PgSnapshot snapshot;
  if (!absl::SimpleAtoi(parts[0], &snapshot.xmin_)) return malformed("xmin is not a number");
  if (!absl::SimpleAtoi(parts[1], &snapshot.xmax_)) return malformed("xmax is not a number");
  if (snapshot.xmin_ > snapshot.xmax_) return malformed("xmin is above xmax");
  if (!parts[2].empty()) {
    for (absl::string_view item : absl::StrSplit(parts[2], ',')) {
      uint64_t xid = 0;
      if (!absl::SimpleAtoi(item, &xid)) return malformed("an in-progress id is not a number");
      if (xid < snapshot.xmin_ || xid >= snapshot.xmax_) {
        return malformed("an in-progress id lies outside xmin..xmax");
      }
      snapshot.in_progress_.push_back(static_cast<uint32_t>(xid));
    }
  }
  std::sort(snapshot.in_progress_.begin(), snapshot.in_progress_.end());
  return snapshot;
}

bool PgSnapshot::Sees(uint32_t xid) const {
  // At or after xmax (modulo 2^32, as TransactionIdPrecedes compares): started after the snapshot.
  const int32_t from_xmax = static_cast<int32_t>(xid - static_cast<uint32_t>(xmax_));
  if (from_xmax >= 0) return false;
  return !std::binary_search(in_progress_.begin(), in_progress_.end(), xid);
}

std::string PgSnapshot::ToString() const {
  return absl::StrCat(xmin_, ":", xmax_, ":", absl::StrJoin(in_progress_, ","));
}

}  // namespace walfeed
