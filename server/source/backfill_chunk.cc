#include "server/source/backfill_chunk.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/position.h"

namespace walfeed {
namespace {

// Rows fetched from the chunk's cursor at a time: the byte bound is checked between fetches.
constexpr int kRowsPerFetch = 200;
// A page header's size: the long one at the start of a segment, the short one elsewhere.
constexpr uint64_t kLongPageHeader = 40;
constexpr uint64_t kShortPageHeader = 24;

// "(k1, k2)" and "('v1'::t1, 'v2'::t2)" over the first `values.size()` key columns.
std::string KeyTuple(PgConnection& conn, const TableShape& shape, size_t width) {
  std::vector<std::string> columns;
  for (size_t i = 0; i < width; ++i) {
    columns.push_back(conn.QuoteIdentifier(shape.columns[shape.key_order[i]]));
  }
  return absl::StrCat("(", absl::StrJoin(columns, ", "), ")");
}

std::string ValueTuple(PgConnection& conn, const TableShape& shape,
                       const std::vector<std::string>& values) {
  std::vector<std::string> literals;
  for (size_t i = 0; i < values.size(); ++i) {
    literals.push_back(absl::StrCat(conn.QuoteLiteral(values[i]), "::", shape.key_sql_types[i]));
  }
  return absl::StrCat("(", absl::StrJoin(literals, ", "), ")");
}

}  // namespace

std::string BackfillCondition(PgConnection& conn, const TableShape& shape,
                              const BackfillRange& range, const std::vector<std::string>& after) {
  std::vector<std::string> conditions;
  const auto compare = [&](const std::vector<std::string>& values, const char* op) {
    if (values.empty()) return;
    conditions.push_back(absl::StrCat(KeyTuple(conn, shape, values.size()), " ", op, " ",
                                      ValueTuple(conn, shape, values)));
  };
  compare(after, ">");
  compare(range.from_key, ">=");
  compare(range.to_key, "<=");
  if (!shape.row_filter.empty()) conditions.push_back(absl::StrCat("(", shape.row_filter, ")"));
  if (!range.where.empty()) conditions.push_back(absl::StrCat("(", range.where, "\n)"));
  return conditions.empty() ? "TRUE" : absl::StrJoin(conditions, " AND ");
}

uint64_t LastRecordEnd(uint64_t insert_lsn, uint64_t wal_block_size, uint64_t wal_segment_size) {
  if (wal_segment_size > 0 && insert_lsn % wal_segment_size == kLongPageHeader) {
    return insert_lsn - kLongPageHeader;
  }
  if (wal_block_size > 0 && insert_lsn % wal_block_size == kShortPageHeader) {
    return insert_lsn - kShortPageHeader;
  }
  return insert_lsn;
}

absl::StatusOr<BackfillChunk> ReadBackfillChunk(PgConnection& conn, const TableShape& shape,
                                                const TypeCatalog& types,
                                                const v1::Change& described,
                                                const BackfillRange& range,
                                                const std::vector<std::string>& after,
                                                uint32_t max_rows, uint64_t max_bytes) {
  if (absl::Status s = conn.Query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").status();
      !s.ok()) {
    return s;
  }
  // A transaction left by a failure is rolled back.
  struct RollbackUnlessCommitted {
    PgConnection& conn;
    bool committed = false;
    ~RollbackUnlessCommitted() {
      if (!committed) conn.Query("ROLLBACK").status().IgnoreError();
    }
  } transaction{conn};
  // The first statement takes the transaction's snapshot; the insert position, read while it
  // runs, is after every commit the snapshot sees.
  absl::StatusOr<QueryRows> placed = conn.Query(
      "SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text, "
      "(SELECT setting FROM pg_settings WHERE name = 'wal_block_size'), "
      "(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size')");
  if (!placed.ok()) return placed.status();
  if (placed->rows.size() != 1 || placed->rows[0].size() != 4) {
    return absl::InternalError("PostgreSQL's snapshot query gave an unexpected result");
  }
  const std::vector<std::string>& facts = placed->rows[0];
  BackfillChunk chunk;
  absl::StatusOr<PgSnapshot> snapshot = PgSnapshot::Parse(facts[0]);
  if (!snapshot.ok()) return snapshot.status();
  chunk.snapshot = *snapshot;
  absl::StatusOr<uint64_t> insert_lsn = ParseLsn(facts[1]);
  if (!insert_lsn.ok()) return insert_lsn.status();
  uint64_t block_size = 0;
  uint64_t segment_size = 0;
  if (!absl::SimpleAtoi(facts[2], &block_size) || !absl::SimpleAtoi(facts[3], &segment_size)) {
    return absl::InternalError(
        absl::StrCat("PostgreSQL gave WAL sizes '", facts[2], "' and '", facts[3], "'"));
  }
  chunk.seen_through = LastRecordEnd(*insert_lsn, block_size, segment_size);

  std::vector<std::string> order;
  for (size_t i = 0; i < shape.key_order.size(); ++i) {
    order.push_back(conn.QuoteIdentifier(shape.columns[shape.key_order[i]]));
  }
  absl::Status declared =
      conn.Query(absl::StrCat("DECLARE walfeed_backfill NO SCROLL CURSOR FOR SELECT ",
                              shape.select_list, " FROM ", shape.partitioned ? "" : "ONLY ",
                              shape.qualified, " WHERE ",
                              BackfillCondition(conn, shape, range, after), " ORDER BY ",
                              absl::StrJoin(order, ", "), " LIMIT ", max_rows))
          .status();
  if (!declared.ok()) return declared;
  uint64_t fetched = 0;
  bool exhausted = false;
  while (chunk.bytes < max_bytes) {
    absl::StatusOr<QueryRows> batch =
        conn.Query(absl::StrCat("FETCH FORWARD ", kRowsPerFetch, " FROM walfeed_backfill"));
    if (!batch.ok()) return batch.status();
    fetched += batch->rows.size();
    if (batch->rows.size() < static_cast<size_t>(kRowsPerFetch)) exhausted = true;
    for (size_t r = 0; r < batch->rows.size(); ++r) {
      for (const std::string& value : batch->rows[r]) chunk.bytes += value.size();
      if (r + 1 == batch->rows.size()) {
        chunk.last_key.clear();
        for (size_t key : shape.key_order) chunk.last_key.push_back(batch->rows[r][key]);
      }
      chunk.rows.push_back(ReadRowAsChange(*batch, r, shape, types, described));
    }
    if (exhausted) break;
  }
  // The cursor ran dry before its LIMIT: nothing of the range follows.
  chunk.last = exhausted && fetched < max_rows;
  if (absl::Status s = conn.Query("COMMIT").status(); !s.ok()) return s;
  transaction.committed = true;
  return chunk;
}

}  // namespace walfeed
