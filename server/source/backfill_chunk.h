// Backfill chunks: one chunk of a backfill's rows, read in key order after the previous chunk's
// last key, in a read-only REPEATABLE READ transaction of its own (no long-running snapshot, no
// lock beyond what a SELECT takes), with what places it in the stream:
// - the transaction's snapshot (which transactions the rows reflect), and
// - `seen_through`: a WAL position every transaction visible in that snapshot committed before,
//   so once the source has streamed that far, every change the rows reflect is in the log.
// A chunk ends after `max_rows` rows or once `max_bytes` of values were read, whichever is
// first; `last` says whether the range has no rows after it.
#ifndef WALFEED_SERVER_SOURCE_BACKFILL_CHUNK_H_
#define WALFEED_SERVER_SOURCE_BACKFILL_CHUNK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/source/pg_connection.h"
#include "server/source/pg_snapshot.h"
#include "server/source/table_shape.h"
#include "server/source/type_catalog.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

// Which rows of a table a backfill reads, as SQL over a TableShape.
struct BackfillRange {
  // Inclusive bounds on a prefix of the key (text values in key order); empty: unbounded.
  std::vector<std::string> from_key;
  std::vector<std::string> to_key;
  // The caller's SQL condition ("" when none).
  std::string where;
};

// The WHERE clause (without the keyword, "TRUE" when nothing restricts) that selects the rows of
// `range` after the key `after` (empty: from the start), and the publication's row filter.
std::string BackfillCondition(PgConnection& conn, const TableShape& shape,
                              const BackfillRange& range, const std::vector<std::string>& after);

struct BackfillChunk {
  std::vector<v1::Change> rows;       // READ changes of the table, in key order, without positions
  std::vector<std::string> last_key;  // of the last row; empty when there was none
  bool last = false;                  // nothing of the range follows
  PgSnapshot snapshot;
  uint64_t seen_through = 0;
  uint64_t bytes = 0;
};

// Reads the chunk after `after` on `conn` (a plain connection with no transaction open).
absl::StatusOr<BackfillChunk> ReadBackfillChunk(PgConnection& conn, const TableShape& shape,
                                                const TypeCatalog& types,
                                                const v1::Change& described,
                                                const BackfillRange& range,
                                                const std::vector<std::string>& after,
                                                uint32_t max_rows, uint64_t max_bytes);

// The end of the last WAL record inserted before pg_current_wal_insert_lsn() said `insert_lsn`:
// that function names the first byte a new record would use, past a page header when the last
// record ended at a page boundary (the WAL is never written up to there while idle).
uint64_t LastRecordEnd(uint64_t insert_lsn, uint64_t wal_block_size, uint64_t wal_segment_size);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_BACKFILL_CHUNK_H_
