// The change log's on-disk format: every RocksDB column family, every key of the default family
// and how each value is encoded, in one place (internal to server/log/). A change to anything
// here that an older walfeed could misread raises kLogFormatVersion and adds an upgrade step to
// log_format_version.cc; ChangeLog::Open refuses a log whose version it does not know.
//
// Column families
//   "default"  small records, keys below.
//   "changes"  one record per change: key = position key (position_key.h: lsn as 8 big-endian
//              bytes, seq as 4), value = the serialized walfeed.v1.Change, its large values
//              replaced by walfeed.v1.LargeValue references (out_of_line_values.h). Bytewise key
//              order is feed order. Records above "log/head" are staged parts of an uncommitted
//              transaction or snapshot and are discarded on open.
//   "keys"     the per-key index compaction builds (key_index.h): row key (row_identity.h, tag
//              'r') -> position key + one tag byte ('L' live, 'D' deleted, 'M'/'N' the same when
//              the change left a TOASTed value out); table key (tag 't') -> position key of its
//              newest TRUNCATE; unmerged and redescribed markers (tags 'u', 'd') -> position key.
//              Every index key starts with a tag byte below 0xff.
//   "values"   chunks of out-of-line values (value_chunks.h): key = position key | part (1) |
//              column index (2, big-endian) | offset (8, big-endian), value = the chunk's bytes.
//
// Keys of the default family
//   "log/format_version"        decimal text, kLogFormatVersion (absent: a log written before
//                               the version was recorded, format 1).
//   "log/id"                    the log's identity, a UUID's text form (log_id.h).
//   "log/head"                  position key of the last committed change.
//   "source/resume_lsn"         8 big-endian bytes: where the source resumes streaming.
//   "compaction/indexed_up_to"  position key: the index covers the changes up to here.
//   "compaction/index_format"   decimal text, kIndexFormat: another one rebuilds the index.
//   "compaction/purge_point"    position key: compaction may have removed changes before it.
//   "compaction/last"           serialized walfeed.v1.CompactionResult of the last pass.
//   "resync/seen/<row key>"     empty: a row a resynchronisation found in the source.
//   "meta/<key>"                TransactionSink metadata, keys and values in
//                               server/core/metadata_keys.h.
#ifndef WALFEED_SERVER_LOG_LOG_FORMAT_H_
#define WALFEED_SERVER_LOG_LOG_FORMAT_H_

namespace walfeed {
namespace log_format {

// The format this walfeed writes. 1: the layout above (every log before the version was stored).
inline constexpr int kLogFormatVersion = 1;
// The oldest format this walfeed upgrades on open.
inline constexpr int kOldestReadableFormat = 1;

inline constexpr char kDefaultFamily[] = "default";  // RocksDB's name for it
inline constexpr char kChangesFamily[] = "changes";
inline constexpr char kKeysFamily[] = "keys";
inline constexpr char kValuesFamily[] = "values";

inline constexpr char kFormatVersionKey[] = "log/format_version";
inline constexpr char kLogIdKey[] = "log/id";
inline constexpr char kHeadKey[] = "log/head";
inline constexpr char kResumeLsnKey[] = "source/resume_lsn";
inline constexpr char kIndexedUpToKey[] = "compaction/indexed_up_to";
inline constexpr char kIndexFormatKey[] = "compaction/index_format";
// The per-key index's own format: 2, tables keyed by relation (row_identity.h). An index of
// another format is emptied and rebuilt from the changes, so it needs no log format upgrade.
inline constexpr char kIndexFormat[] = "2";
inline constexpr char kPurgePointKey[] = "compaction/purge_point";
inline constexpr char kLastCompactionKey[] = "compaction/last";
inline constexpr char kSeenRowPrefix[] = "resync/seen/";
inline constexpr char kMetadataPrefix[] = "meta/";

}  // namespace log_format
}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_LOG_FORMAT_H_
