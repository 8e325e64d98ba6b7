// ChangeLog's internals, shared by the translation units that implement it (change_log.cc for
// appends and reads, log_compaction.cc for compaction). Not for use outside server/log/.
//
// The column families and keys they read and write are in log_format.h.
#ifndef WALFEED_SERVER_LOG_CHANGE_LOG_STATE_H_
#define WALFEED_SERVER_LOG_CHANGE_LOG_STATE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "server/log/change_log.h"
#include "server/log/key_index.h"
#include "server/log/log_format.h"
#include "server/log/position_key.h"
#include "server/log/touched_tables.h"

namespace walfeed {
namespace log_internal {

inline absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": ", status.ToString());
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsIOError() || status.IsNoSpace()) return absl::UnavailableError(message);
  if (status.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  return absl::InternalError(message);
}

inline absl::string_view KeyOf(const rocksdb::Iterator& it) {
  const rocksdb::Slice key = it.key();
  return absl::string_view(key.data(), key.size());
}

inline absl::string_view ValueOf(const rocksdb::Iterator& it) {
  const rocksdb::Slice value = it.value();
  return absl::string_view(value.data(), value.size());
}

inline rocksdb::Slice ToSlice(absl::string_view text) {
  return rocksdb::Slice(text.data(), text.size());
}

}  // namespace log_internal

struct ChangeLog::Impl {
  ChangeLogOptions options;
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ColumnFamilyHandle* meta = nullptr;     // owned by `handles`
  rocksdb::ColumnFamilyHandle* changes = nullptr;  // owned by `handles`
  rocksdb::ColumnFamilyHandle* keys = nullptr;     // owned by `handles`
  rocksdb::ColumnFamilyHandle* values = nullptr;   // owned by `handles`
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles;
  std::string log_id;  // set by Open(); changed only by AdoptLogId(), before anything reads it

  absl::Mutex append_mu ABSL_ACQUIRED_BEFORE(mu);  // serializes writers
  // The per-key index is complete up to here; it is current while this equals the head.
  Position indexed_up_to ABSL_GUARDED_BY(append_mu);
  // StageChanges(): the last change staged above the head (zero, or at most the head, when none
  // is): a backfill's rows must not land among them (AppendReads waits).
  Position staged_last ABSL_GUARDED_BY(append_mu);
  // How many changes StageChanges() wrote since the last commit or discard: the append or
  // CommitStaged() that makes them visible counts them as appended.
  uint64_t staged_changes ABSL_GUARDED_BY(append_mu) = 0;
  // AppendStored(): the last record written (staged or committed) and what was staged since the
  // last commit (a reopen discards staged records, and a new Impl starts at the head).
  Position stored_staged_last ABSL_GUARDED_BY(append_mu);
  uint64_t stored_staged_changes ABSL_GUARDED_BY(append_mu) = 0;
  uint64_t stored_staged_transactions ABSL_GUARDED_BY(append_mu) = 0;
  // Held by a compaction pass from start to end; TryLock tells a second caller to wait. The
  // outermost lock: a pass takes the others inside it.
  absl::Mutex compaction_mu ABSL_ACQUIRED_BEFORE(append_mu);
  mutable absl::Mutex mu;
  Position head ABSL_GUARDED_BY(mu);
  Position oldest ABSL_GUARDED_BY(mu);
  // Raised before the deletes it covers are written, so that a reader that saw them sees it.
  Position purge_point ABSL_GUARDED_BY(mu);
  uint64_t resume_lsn ABSL_GUARDED_BY(mu) = 0;
  ChangeLogStats stats ABSL_GUARDED_BY(mu);
  std::optional<v1::CompactionResult> last_compaction ABSL_GUARDED_BY(mu);
  std::vector<HeadListener> listeners ABSL_GUARDED_BY(mu);
  // Seen rows not yet written (logged_rows.cc).
  absl::Mutex seen_mu ABSL_ACQUIRED_BEFORE(write_mu);
  rocksdb::WriteBatch seen_rows ABSL_GUARDED_BY(seen_mu);
  // Writes `seen_rows` (not synced: a crash forgets them with the resynchronisation).
  absl::Status FlushSeenRows() ABSL_EXCLUSIVE_LOCKS_REQUIRED(seen_mu);

  ~Impl() {
    handles.clear();  // column family handles must go before the DB
    db.reset();
  }

  // The first stored position at or after `from`, or zero.
  absl::StatusOr<Position> FirstAtOrAfter(const std::string& from) const;
  // Re-reads the oldest stored position into `oldest`.
  void RefreshOldest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(append_mu);
  // Deletes everything above `head`, synced. No-op when nothing is there.
  absl::Status DeleteAbove(const Position& head);
  // Puts the head and resume point into `batch`.
  absl::Status PutHead(rocksdb::WriteBatch& batch, const Position& new_head, uint64_t resume);
  absl::Status WriteSynced(rocksdb::WriteBatch& batch, absl::string_view what);
  // Every write goes through here: after a failed write (a full disk) RocksDB stops accepting
  // writes, so the next one first tries to resume it.
  absl::Status Write(rocksdb::WriteBatch& batch, bool sync, absl::string_view what);
  std::atomic<bool> write_failed{false};
  // Taken by Write() for its whole course; the innermost lock.
  absl::Mutex write_mu ABSL_ACQUIRED_AFTER(append_mu, mu);
  // A position stored in the default column family under `key` (zero when absent).
  absl::StatusOr<Position> ReadPosition(absl::string_view key) const;
  Position ReadPurgePoint() const;
  // The size of the stored changes and index on disk (SST files plus memtables).
  uint64_t DiskBytes() const;
  // The per-key index (key_index.cc). Adds the index entries `change` at `position` makes to
  // `out` (newest wins: later calls overwrite earlier ones for the same key).
  static void CollectIndexEntries(const v1::Change& change, const Position& position,
                                  absl::flat_hash_map<std::string, std::string>* out);
  // Puts the index entries `change` at `position` makes into `batch` (the append path).
  absl::Status IndexInto(rocksdb::WriteBatch& batch, const v1::Change& change,
                         const Position& position);
  // Puts `entries` and the position the index then covers into `batch`.
  absl::Status PutIndexEntries(rocksdb::WriteBatch& batch,
                               const absl::flat_hash_map<std::string, std::string>& entries,
                               const Position& covered);
  // Indexes up to `max_records` changes past indexed_up_to; returns whether the index is now
  // current. Holding append_mu keeps appends out while it reads up to the head.
  absl::StatusOr<bool> CatchUpIndexStep(size_t max_records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(append_mu);
  absl::StatusOr<std::optional<IndexEntry>> LookupIndex(const std::string& key) const;

  // Serializes `change`, stored at `position`, into `value`, its large values moved out of line
  // into `batch` (out_of_line_values.h). Returns the change as stored: `change` itself, or
  // `moved`, which then holds it with its references.
  absl::StatusOr<const v1::Change*> SerializeForStore(const v1::Change& change,
                                                      const Position& position,
                                                      rocksdb::WriteBatch& batch,
                                                      std::string* value, v1::Change* moved);

  // After a durable write: publish the new head and tell the listeners (outside `mu`, under
  // `append_mu`, which the caller holds: listeners hear advances one at a time, in order).
  // `commit_time`: the newest appended transaction's, when this append had one. `touched`: the
  // tables of the new changes, nullptr when not known (see HeadAdvance).
  void Publish(const Position& new_head, uint64_t resume, uint64_t changes_count,
               uint64_t transactions, std::optional<absl::Time> commit_time,
               const TouchedTables* touched = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(append_mu)
      ABSL_LOCKS_EXCLUDED(mu);
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_CHANGE_LOG_STATE_H_
