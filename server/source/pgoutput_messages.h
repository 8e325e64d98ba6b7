// The pgoutput logical replication messages (protocol version 1), as plain structs.
// Field names follow PostgreSQL's "Logical Replication Message Formats" page.
#ifndef WALFEED_SERVER_SOURCE_PGOUTPUT_MESSAGES_H_
#define WALFEED_SERVER_SOURCE_PGOUTPUT_MESSAGES_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "server/core/table_name.h"

namespace walfeed::pgoutput {

// One column of TupleData.
struct TupleColumn {
  enum class Kind : char { kNull = 'n', kUnchangedToast = 'u', kText = 't', kBinary = 'b' };
  Kind kind = Kind::kNull;
  std::string data;  // for kText and kBinary
};
using TupleData = std::vector<TupleColumn>;

struct Begin {
  uint64_t final_lsn = 0;   // the commit LSN
  int64_t commit_time = 0;  // microseconds since 2000-01-01 UTC
  uint32_t xid = 0;
};

struct Commit {
  uint8_t flags = 0;
  uint64_t commit_lsn = 0;
  uint64_t end_lsn = 0;
  int64_t commit_time = 0;
};

struct Origin {
  uint64_t commit_lsn = 0;
  std::string name;
};

struct RelationColumn {
  bool is_key = false;
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_modifier = 0;
};

struct Relation {
  uint32_t relation_id = 0;
  std::string schema;  // "" means pg_catalog
  std::string name;
  char replica_identity = 'd';  // d default, n nothing, f full, i index
  std::vector<RelationColumn> columns;
};

// The relation's table, in schema "pg_catalog" when pgoutput sent no schema.
inline TableName TableOf(const Relation& relation) {
  return TableName{relation.schema.empty() ? "pg_catalog" : relation.schema, relation.name};
}

struct Type {
  uint32_t type_oid = 0;
  std::string schema;
  std::string name;
};

struct Insert {
  uint32_t relation_id = 0;
  TupleData new_tuple;
};

struct Update {
  uint32_t relation_id = 0;
  // 'K' (old key columns), 'O' (old row, REPLICA IDENTITY FULL) or 0 when absent.
  char old_kind = 0;
  TupleData old_tuple;
  TupleData new_tuple;
};

struct Delete {
  uint32_t relation_id = 0;
  char old_kind = 'K';  // 'K' or 'O'
  TupleData old_tuple;
};

struct Truncate {
  bool cascade = false;
  bool restart_identity = false;
  std::vector<uint32_t> relation_ids;
};

struct LogicalMessage {
  bool transactional = false;
  uint64_t lsn = 0;
  std::string prefix;
  std::string content;
};

using Message = std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete,
                             Truncate, LogicalMessage>;

}  // namespace walfeed::pgoutput

#endif  // WALFEED_SERVER_SOURCE_PGOUTPUT_MESSAGES_H_
