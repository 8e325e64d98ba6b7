// The per-key index of the change log, as the log's own translation units use it (internal to
// server/log/).
//
// The "keys" column family maps a row key (RowIdentity) to the position of that row's newest
// change, whether that change deleted the row, and whether it left a TOASTed value out
// (unchanged_toast: the row's older images must then stay, see Judge in log_compaction.cc), and
// a table key to its newest TRUNCATE.
// "compaction/indexed_up_to" records the position up to which the index is complete. While it
// equals the head, Append() keeps the index current in the same atomic batch as the changes;
// after a staged snapshot or a transaction staged in parts it falls behind until CatchUpIndex()
// reads the changes since then (in short steps, each under the append lock).
#ifndef WALFEED_SERVER_LOG_KEY_INDEX_H_
#define WALFEED_SERVER_LOG_KEY_INDEX_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rocksdb/write_batch.h"
#include "server/core/position.h"
#include "server/log/row_identity.h"

namespace walfeed {

struct IndexEntry {
  Position position;
  bool deleted = false;
  // The newest change carries unchanged_toast markers: a consumer needs an older image.
  bool needs_image = false;
};

std::string EncodeRowEntry(const Position& position, bool deleted, bool needs_image = false);

// Decodes a row entry or a table entry (a bare position).
absl::StatusOr<IndexEntry> DecodeIndexEntry(absl::string_view value);

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_KEY_INDEX_H_
