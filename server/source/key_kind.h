// KeyKindOf: what a change's `key` holds, from the table's replica identity setting
// (pg_class.relreplident, as pgoutput's Relation message repeats it). Stream and snapshot use
// this one mapping, so compaction treats a row the same whichever way it arrived.
#ifndef WALFEED_SERVER_SOURCE_KEY_KIND_H_
#define WALFEED_SERVER_SOURCE_KEY_KIND_H_

#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

// `replica_identity` is 'd' (default), 'i' (index), 'f' (full) or 'n' (nothing);
// `has_key_columns` says whether any column is marked as key (DEFAULT without a primary key
// marks none).
inline v1::Change::KeyKind KeyKindOf(char replica_identity, bool has_key_columns) {
  if (!has_key_columns) return v1::Change::NONE;
  switch (replica_identity) {
    case 'd':
      return v1::Change::PRIMARY_KEY;
    case 'i':
      return v1::Change::UNIQUE_INDEX;
    case 'f':
      return v1::Change::FULL_ROW;
    default:
      return v1::Change::NONE;
  }
}

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_KEY_KIND_H_
