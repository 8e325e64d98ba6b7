// ChangeLog::Compact: compaction by primary key, tombstone purging and retention.
//
// Why a cleaner and not a RocksDB compaction filter: a filter decides inside RocksDB's own
// compactions, at times RocksDB picks, and drops data without a write walfeed could pair with
// the purge point. The promise that a reader is never silently handed a state that misses a
// delete needs the purge point to be durable no later than the removal it covers, and an
// operator's `compact` needs to know when the work is done and what it removed. The cleaner
// writes each batch of deletes together with the purge point in one synced WriteBatch, then asks
// RocksDB to compact the range it cleared so the space really comes back. Its cost is a
// sequential read of the log below the lag window per pass (one protobuf parse and one or two
// index lookups per change), off the append and read paths; bench/compaction.py measures it.
//
// A pass has two steps:
// 1. Index: bring the per-key index up to the head, reading the changes appended since the
//    last pass (row key -> newest position and whether the row was deleted; table -> newest
//    TRUNCATE). The index lags the log between passes, which only makes a pass keep more.
// 2. Clean: read the log from the oldest change up to the lag window and delete what the policy
//    allows, in batches, each with the purge point it raises.
#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "rocksdb/options.h"
#include "server/core/fault_point.h"
#include "server/core/log_format.h"
#include "server/core/proto_time.h"
#include "server/log/change_log.h"
#include "server/log/change_log_state.h"
#include "server/log/out_of_line_values.h"
#include "server/log/position_key.h"
#include "server/log/row_identity.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

using log_internal::FromRocks;
using log_internal::KeyOf;
using log_internal::ToSlice;
using log_internal::ValueOf;

// Changes removed per WriteBatch.
constexpr size_t kRecordsPerBatch = 10000;
// Index lookups a pass remembers. Appends move entries meanwhile, but only to newer positions:
// a stale cached entry can only make the pass keep more, and WriteRemovals re-checks the
// entries it deletes under the append lock.
constexpr size_t kLookupCacheEntries = 200000;

// One compaction pass over the log of `impl`.
class Pass {
 public:
  Pass(ChangeLog::Impl* impl, const CompactionPolicy& policy, absl::Time now,
       const std::atomic<bool>* cancel)
      : impl_(impl), policy_(policy), now_(now), cancel_(cancel) {}

  absl::StatusOr<v1::CompactionResult> Run() {
    const absl::Time started = absl::Now();
    result_.mutable_started_at()->set_seconds(absl::ToUnixSeconds(started));
    result_.set_log_bytes_before(impl_->DiskBytes());
    absl::StatusOr<Position> indexed = IndexUpToHead();
    if (!indexed.ok()) return indexed.status();
    if (absl::Status cleaned = Clean(*indexed); !cleaned.ok()) return cleaned;
    if (absl::Status reclaimed = Reclaim(); !reclaimed.ok()) return reclaimed;
    // After Reclaim: a seek from the start no longer walks over the removed changes. Under the
    // append lock, so that it cannot overwrite what the first append to an empty log sets.
    {
      absl::MutexLock append_lock(&impl_->append_mu);
      impl_->RefreshOldest();
    }
    absl::StatusOr<uint64_t> live = CountLiveKeys();
    if (!live.ok()) return live.status();
    result_.set_live_keys(*live);
    result_.set_log_bytes_after(impl_->DiskBytes());
    ToProtoDuration(absl::Now() - started, result_.mutable_took());
    const Position purge_point = impl_->ReadPurgePoint();
    if (!purge_point.IsZero()) result_.set_purge_cursor(FormatCursor(purge_point));
    rocksdb::WriteBatch batch;
    rocksdb::Status put =
        batch.Put(impl_->meta, log_format::kLastCompactionKey, result_.SerializeAsString());
    if (!put.ok()) return FromRocks(put, "cannot record the compaction's result");
    if (absl::Status s = impl_->WriteSynced(batch, "cannot record the compaction's result");
        !s.ok()) {
      return s;
    }
    return result_;
  }

 private:
  // Step 1: brings the index up to the head (appends keep it there from then on); returns the
  // position it covered when it became current.
  absl::StatusOr<Position> IndexUpToHead() {
    for (;;) {
      absl::MutexLock append_lock(&impl_->append_mu);
      absl::StatusOr<bool> current = impl_->CatchUpIndexStep(ChangeLog::kIndexStepRecords);
      if (!current.ok()) return current.status();
      if (*current) return impl_->indexed_up_to;
      if (Cancelled()) return absl::CancelledError("the compaction pass was stopped");
    }
  }

  bool Cancelled() const { return cancel_ != nullptr && cancel_->load(); }

  // The first position inside the count part of the lag window (the head's successor when
  // there is none).
  absl::StatusOr<Position> CountWindowStart(const Position& head) {
    if (policy_.lag_changes == 0 || head.IsZero()) return head.Successor();
    std::unique_ptr<rocksdb::Iterator> it(
        impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->changes));
    it->SeekForPrev(EncodePositionKey(head));
    for (uint64_t i = 1; i < policy_.lag_changes && it->Valid(); ++i) it->Prev();
    if (!it->status().ok()) return FromRocks(it->status(), "cannot read the change log");
    if (!it->Valid()) return Position{};  // fewer changes than the window: keep them all
    return DecodePositionKey(KeyOf(*it));
  }

  absl::StatusOr<std::optional<IndexEntry>> Lookup(const std::string& key) {
    if (auto cached = lookups_.find(key); cached != lookups_.end()) return cached->second;
    absl::StatusOr<std::optional<IndexEntry>> found = impl_->LookupIndex(key);
    if (!found.ok()) return found;
    if (lookups_.size() >= kLookupCacheEntries) lookups_.clear();
    lookups_.emplace(key, *found);
    return found;
  }

  // The position of the newest TRUNCATE of a table (zero when none), cached for the pass.
  absl::StatusOr<Position> TruncatedAt(const std::string& table_key) {
    if (auto it = truncated_at_.find(table_key); it != truncated_at_.end()) return it->second;
    absl::StatusOr<std::optional<IndexEntry>> entry = Lookup(table_key);
    if (!entry.ok()) return entry.status();
    const Position at = entry->has_value() ? (*entry)->position : Position{};
    truncated_at_.emplace(table_key, at);
    return at;
  }

  enum class Verdict { kKeep, kSuperseded, kPurge, kRetention };

  // What the policy says about the change at `position`; `own_entries` receives the index keys
  // that point at it (to be removed with it).
  absl::StatusOr<Verdict> Judge(const Position& position, const v1::Change& change,
                                std::vector<std::string>* own_entries) {
    const RowIdentity identity = IdentityOf(change);
    const absl::Time committed = FromProtoTimestamp(change.commit_time());
    if (!identity.table_key.empty()) {
      absl::StatusOr<Position> truncated = TruncatedAt(identity.table_key);
      if (!truncated.ok()) return truncated.status();
      if (*truncated > position) {
        for (const RowEffect& effect : identity.effects) {
          absl::StatusOr<std::optional<IndexEntry>> entry = Lookup(effect.row_key);
          if (!entry.ok()) return entry.status();
          if (entry->has_value() && (*entry)->position == position) {
            own_entries->push_back(effect.row_key);
          }
        }
        return Verdict::kSuperseded;
      }
    }
    switch (identity.kind) {
      case RowIdentity::Kind::kTruncate:
        return Tombstone(change, committed);
      case RowIdentity::Kind::kUnmerged:
        if (committed <= now_ - policy_.retention || excess_bytes_ > 0) return Verdict::kRetention;
        return Verdict::kKeep;
      case RowIdentity::Kind::kRow:
        break;
    }
    bool newest_live = false;
    bool newest_deleted = false;
    for (const RowEffect& effect : identity.effects) {
      absl::StatusOr<std::optional<IndexEntry>> entry = Lookup(effect.row_key);
      if (!entry.ok()) return entry.status();
      // The row's newest change left a TOASTed value out: it is filled from this older image by
      // whoever rebuilds the row, so the image stays until a change carrying every value comes.
      if (entry->has_value() && (*entry)->needs_image && (*entry)->position > position) {
        return Verdict::kKeep;
      }
      if (!entry->has_value() || (*entry)->position != position) continue;  // a newer one
      own_entries->push_back(effect.row_key);
      ((*entry)->deleted ? newest_deleted : newest_live) = true;
    }
    if (newest_live) return Verdict::kKeep;
    if (!newest_deleted) return Verdict::kSuperseded;
    return Tombstone(change, committed);
  }

  // A delete or truncate, newest of its row or table: purged once its retention ran out, unless
  // the index still holds rows of its table keyed by name, from changes stored before relations
  // were recorded: those it may have ended, and without it they would come back.
  absl::StatusOr<Verdict> Tombstone(const v1::Change& change, absl::Time committed) {
    if (committed > now_ - policy_.delete_retention) return Verdict::kKeep;
    if (change.relation_id() == 0) return Verdict::kPurge;
    const std::string prefix = NameKeyedRowPrefix(change);
    auto cached = name_keyed_rows_.find(prefix);
    if (cached == name_keyed_rows_.end()) {
      rocksdb::ReadOptions read_options;
      std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options, impl_->keys));
      it->Seek(prefix);
      if (!it->status().ok()) return FromRocks(it->status(), "cannot read the per-key index");
      const bool remain = it->Valid() && absl::StartsWith(KeyOf(*it), prefix);
      cached = name_keyed_rows_.emplace(prefix, remain).first;
    }
    return cached->second ? Verdict::kKeep : Verdict::kPurge;
  }

  // Step 2: removes what the policy allows below the lag window and below `indexed`.
  absl::Status Clean(const Position& indexed) {
    absl::StatusOr<Position> window = CountWindowStart(indexed);
    if (!window.ok()) return window.status();
    Position bound = std::min(*window, indexed.Successor());
    if (policy_.keep_from.has_value()) bound = std::min(bound, *policy_.keep_from);
    if (policy_.retention_bytes > 0 && result_.log_bytes_before() > policy_.retention_bytes) {
      excess_bytes_ = static_cast<int64_t>(result_.log_bytes_before() - policy_.retention_bytes);
    }
    const std::string upper = EncodePositionKey(bound);
    const rocksdb::Slice upper_bound(upper);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper_bound;
    read_options.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options, impl_->changes));
    rocksdb::WriteBatch batch;
    size_t in_batch = 0;
    Position batch_purge;
    v1::Change change;
    std::vector<std::string> own_entries;
    bool window_reached = false;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::StatusOr<Position> position = DecodePositionKey(KeyOf(*it));
      if (!position.ok()) return position.status();
      if (!change.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        continue;  // kept; IndexUpToHead logged it
      }
      if (FromProtoTimestamp(change.commit_time()) > now_ - policy_.lag) {
        result_.set_lag_cursor(FormatCursor(*position));
        window_reached = true;
        break;
      }
      result_.set_changes_examined(result_.changes_examined() + 1);
      if (result_.changes_examined() % kRecordsPerBatch == 0 && Cancelled()) {
        return absl::CancelledError("the compaction pass was stopped");
      }
      own_entries.clear();
      absl::StatusOr<Verdict> verdict = Judge(*position, change, &own_entries);
      if (!verdict.ok()) return verdict.status();
      if (*verdict == Verdict::kKeep) continue;
      switch (*verdict) {
        case Verdict::kSuperseded:
          result_.set_superseded_removed(result_.superseded_removed() + 1);
          break;
        case Verdict::kPurge:
          result_.set_tombstones_purged(result_.tombstones_purged() + 1);
          batch_purge = *position;
          break;
        case Verdict::kRetention:
          result_.set_retention_removed(result_.retention_removed() + 1);
          batch_purge = *position;
          break;
        case Verdict::kKeep:
          break;
      }
      excess_bytes_ -=
          static_cast<int64_t>(it->key().size() + it->value().size() + OutOfLineBytes(change));
      rocksdb::Status deleted = batch.Delete(impl_->changes, it->key());
      // Its values stored out of line sort in its own key range (value_chunks.h).
      if (deleted.ok() && HasOutOfLineValues(change)) {
        deleted =
            batch.DeleteRange(impl_->values, it->key(), EncodePositionKey(position->Successor()));
        removed_values_ = true;
      }
      if (!deleted.ok()) return FromRocks(deleted, "cannot build the compaction batch");
      for (std::string& entry : own_entries)
        ended_entries_.emplace_back(std::move(entry), *position);
      last_removed_ = *position;
      if (++in_batch == kRecordsPerBatch) {
        if (absl::Status s = WriteRemovals(batch, batch_purge); !s.ok()) return s;
        in_batch = 0;
        batch_purge = Position{};
        if (Cancelled()) return absl::CancelledError("the compaction pass was stopped");
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), "cannot read the change log");
    if (!window_reached && bound <= indexed) result_.set_lag_cursor(FormatCursor(bound));
    return WriteRemovals(batch, batch_purge);
  }

  // Writes one batch of removals, synced, with the purge point it raises (if any). The
  // in-memory purge point is raised first: a reader that sees a removal sees the point. Index
  // entries of removed changes go in the same batch, under the append lock and only if no
  // append has pointed them at a newer change since the pass looked.
  absl::Status WriteRemovals(rocksdb::WriteBatch& batch, const Position& purge) {
    if (batch.Count() == 0) return absl::OkStatus();
    absl::MutexLock append_lock(&impl_->append_mu);
    for (const auto& [key, position] : ended_entries_) {
      absl::StatusOr<std::optional<IndexEntry>> entry = impl_->LookupIndex(key);
      if (!entry.ok()) return entry.status();
      if (!entry->has_value() || (*entry)->position != position) continue;
      rocksdb::Status deleted = batch.Delete(impl_->keys, key);
      if (!deleted.ok()) return FromRocks(deleted, "cannot build the compaction batch");
    }
    ended_entries_.clear();
    if (!purge.IsZero()) {
      Position raised;
      {
        absl::MutexLock lock(&impl_->mu);
        impl_->purge_point = std::max(impl_->purge_point, purge);
        raised = impl_->purge_point;
      }
      // Never lower than what is stored: a later pass may purge below an earlier one.
      rocksdb::Status put =
          batch.Put(impl_->meta, log_format::kPurgePointKey, EncodePositionKey(raised));
      if (!put.ok()) return FromRocks(put, "cannot build the compaction batch");
    }
    absl::Status written = impl_->WriteSynced(batch, "cannot write a compaction batch");
    batch.Clear();
    if (written.ok()) WALFEED_FAULT_POINT("compaction.after_delete_batch");
    return written;
  }

  // Lets RocksDB drop the removed changes from its files now rather than some day.
  absl::Status Reclaim() {
    if (last_removed_.IsZero()) return absl::OkStatus();
    rocksdb::CompactRangeOptions options;
    options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
    // Automatic compactions go on meanwhile: an exclusive manual one would let L0 files pile up
    // to the stop-writes trigger on a big log and stall appends (and PostgreSQL's keepalives).
    options.exclusive_manual_compaction = false;
    const std::string end = EncodePositionKey(last_removed_.Successor());
    const rocksdb::Slice end_slice(end);
    rocksdb::Status compacted =
        impl_->db->CompactRange(options, impl_->changes, nullptr, &end_slice);
    if (compacted.ok()) compacted = impl_->db->CompactRange(options, impl_->keys, nullptr, nullptr);
    if (compacted.ok() && removed_values_) {
      compacted = impl_->db->CompactRange(options, impl_->values, nullptr, &end_slice);
    }
    // The small records of the default family pin old write-ahead log files until it is
    // flushed too: without this the space of the removed changes stays on disk in the WAL.
    if (compacted.ok()) compacted = impl_->db->Flush(rocksdb::FlushOptions(), impl_->meta);
    return FromRocks(compacted, "cannot compact the change log's files");
  }

  // Rows whose newest change is not a delete and not older than a TRUNCATE of their table.
  absl::StatusOr<uint64_t> CountLiveKeys() {
    rocksdb::ReadOptions read_options;
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options, impl_->keys));
    uint64_t live = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!IsRowKey(KeyOf(*it))) continue;
      absl::StatusOr<IndexEntry> entry = DecodeIndexEntry(ValueOf(*it));
      if (!entry.ok()) return entry.status();
      if (entry->deleted) continue;
      absl::StatusOr<Position> truncated = TruncatedAt(TableKeyOfRow(KeyOf(*it)));
      if (!truncated.ok()) return truncated.status();
      if (*truncated > entry->position) continue;
      ++live;
    }
    if (!it->status().ok()) return FromRocks(it->status(), "cannot read the change log's index");
    return live;
  }

  ChangeLog::Impl* const impl_;
  const CompactionPolicy policy_;
  const absl::Time now_;
  const std::atomic<bool>* const cancel_;
  v1::CompactionResult result_;
  absl::flat_hash_map<std::string, Position> truncated_at_;
  absl::flat_hash_map<std::string, std::optional<IndexEntry>> lookups_;
  // Index entries that pointed at changes removed in the current batch.
  std::vector<std::pair<std::string, Position>> ended_entries_;
  int64_t excess_bytes_ = 0;
  Position last_removed_;
  // Whether the index holds name-keyed rows of a table (by NameKeyedRowPrefix), for the pass.
  absl::flat_hash_map<std::string, bool> name_keyed_rows_;
  // Values stored out of line went with a removed change.
  bool removed_values_ = false;
};

}  // namespace

Position ChangeLog::Impl::ReadPurgePoint() const {
  absl::MutexLock lock(&mu);
  return purge_point;
}

absl::StatusOr<v1::CompactionResult> ChangeLog::Compact(const CompactionPolicy& policy,
                                                        absl::Time now,
                                                        const std::atomic<bool>* cancel) {
  if (absl::Status valid = policy.Validate(); !valid.ok()) return valid;
  if (!impl_->compaction_mu.TryLock()) {
    return absl::FailedPreconditionError(
        "a compaction pass is already running; try again when it has finished");
  }
  absl::StatusOr<v1::CompactionResult> result = Pass(impl_.get(), policy, now, cancel).Run();
  if (result.ok()) {
    absl::MutexLock lock(&impl_->mu);
    impl_->last_compaction = *result;
  }
  impl_->compaction_mu.Unlock();
  return result;
}

}  // namespace walfeed
