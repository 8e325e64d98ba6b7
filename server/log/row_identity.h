// RowIdentity: how compaction sees one stored change.
//
// A change either sets the newest state of one or more rows (kRow: an INSERT, UPDATE, DELETE
// or snapshot READ of a table whose key is a primary key or unique index), ends a whole table
// (kTruncate), or is never merged (kUnmerged: messages, tables keyed by every column or by
// nothing, whose rows cannot be told apart, and a change whose key value PostgreSQL left out). Row
// and table keys are opaque byte strings, equal exactly when they name the same row or table, and
// never equal to each other. A table is its relation (Change.relation_id, PostgreSQL's OID), not
// its name: its rows stay the same rows across a rename, and a table dropped and created again,
// or swapped in under the old name, is another table. (Changes stored before relations were
// recorded, with relation_id 0, are keyed by name.)
#ifndef WALFEED_SERVER_LOG_ROW_IDENTITY_H_
#define WALFEED_SERVER_LOG_ROW_IDENTITY_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

struct RowEffect {
  std::string row_key;
  // The row no longer exists after this change (a DELETE, or the old key of an UPDATE that
  // changed the key).
  bool deleted = false;
};

struct RowIdentity {
  enum class Kind { kRow, kTruncate, kUnmerged };
  Kind kind = Kind::kUnmerged;
  // The change's table ("" for messages).
  std::string table_key;
  // For kRow: the rows whose newest state this change sets.
  std::vector<RowEffect> effects;
};

RowIdentity IdentityOf(const v1::Change& change);

// The allocation-free common case, for the append path: when `change` sets exactly one row
// (INSERT, READ, DELETE, or an UPDATE that sent no old key) of a mergeable table, writes that
// row's key (as IdentityOf would) into `out`, sets `deleted`, and returns true.
bool SingleRowKey(const v1::Change& change, std::string* out, bool* deleted);

// The column of `columns` named as `like` is (its name and, for a name that is not UTF-8, its
// raw bytes: two such names may look alike), or nullptr.
const v1::Column* FindColumn(const google::protobuf::RepeatedPtrField<v1::Column>& columns,
                             const v1::Column& like);

// The prefix of the row keys of `change`'s table as they were made before relations were
// recorded (by schema and table name): compaction keeps a table's tombstones while such rows
// remain in the index.
std::string NameKeyedRowPrefix(const v1::Change& change);

// The table key of the table a row key belongs to ("" when `row_key` is not one).
std::string TableKeyOfRow(absl::string_view row_key);

// The index key under which the newest never-merged change of a table is recorded: a row's
// newest merged image older than that may be stale (say the table switched to REPLICA IDENTITY
// FULL meanwhile), so it is not used to fill in left-out values.
std::string UnmergedMarkerKey(absl::string_view table_key);

// The index key under which the newest relation_redescribed change of a table is recorded: the
// table's images older than that are not used to fill in left-out values either.
std::string RedescribedMarkerKey(absl::string_view table_key);

// The table key of `change`'s table, and the prefix every row key of that table starts with.
std::string TableKeyOf(const v1::Change& change);
std::string RowKeyPrefix(const v1::Change& change);

// Whether `key` (from the index) is a row key rather than a table key.
bool IsRowKey(absl::string_view key);

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_ROW_IDENTITY_H_
