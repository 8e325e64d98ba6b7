// Backfill validation: checks a BackfillRequest against PostgreSQL before it is queued, and
// resolves what running it needs (the table, its shape, the range as SQL). A request is refused
// with a sentence when its table is not captured (NotFound), has no key to read it by, gives
// more key values than the key has, or has a condition PostgreSQL does not accept
// (InvalidArgument, with PostgreSQL's own message).
#ifndef WALFEED_SERVER_BACKFILL_BACKFILL_VALIDATION_H_
#define WALFEED_SERVER_BACKFILL_BACKFILL_VALIDATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/source/backfill_chunk.h"
#include "server/source/pg_connection.h"
#include "server/source/table_filter.h"
#include "server/source/table_shape.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

// The default and the largest number of rows per chunk.
inline constexpr uint32_t kDefaultBackfillChunkRows = 1000;
inline constexpr uint32_t kMaxBackfillChunkRows = 100000;

struct ResolvedBackfill {
  std::string schema;
  std::string table;
  TableShape shape;
  std::vector<std::string> key_columns;  // in key order
  BackfillRange range;
  uint32_t chunk_rows = kDefaultBackfillChunkRows;
};

// Checks `request` on `conn` (a plain connection with no transaction open).
absl::StatusOr<ResolvedBackfill> ResolveBackfill(PgConnection& conn, const TableFilter& filter,
                                                 const std::string& publication,
                                                 const v1::BackfillRequest& request);

}  // namespace walfeed

#endif  // WALFEED_SERVER_BACKFILL_BACKFILL_VALIDATION_H_
