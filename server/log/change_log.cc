#include "server/log/change_log.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "server/core/change_wire_format.h"
#include "server/core/error_reason.h"
#include "server/core/event_counters.h"
#include "server/core/invariant.h"
#include "server/core/proto_time.h"
#include "server/log/change_log_state.h"
#include "server/log/position_key.h"
#include "server/log/toast_fill.h"
#include "server/log/value_chunks.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

// Reads starting more than this many WAL bytes behind the head do not fill the block cache.
constexpr uint64_t kCacheFillWindow = uint64_t{64} << 20;

using log_format::kChangesFamily;
using log_format::kHeadKey;
using log_format::kKeysFamily;
using log_format::kMetadataPrefix;
using log_format::kResumeLsnKey;
using log_internal::FromRocks;
using log_internal::KeyOf;

// Index catch-up steps an append may take before filling in left-out values (see Append).
constexpr int kMaxCatchUpStepsOnAppend = 4;
using log_internal::ToSlice;

// Sorts after every position key: the end of "everything above the head".
const std::string kEndOfPositions(kPositionKeySize + 1, '\xff');

// The first key above `head` (everything when the log is empty).
std::string AboveHead(const Position& head) {
  return head.IsZero() ? std::string() : EncodePositionKey(head.Successor());
}

}  // namespace

absl::StatusOr<Position> ChangeLog::Impl::FirstAtOrAfter(const std::string& from) const {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), changes));
  it->Seek(from);
  if (!it->status().ok()) return FromRocks(it->status(), "cannot scan the change log");
  if (!it->Valid()) return Position{};
  return DecodePositionKey(KeyOf(*it));
}

void ChangeLog::Impl::RefreshOldest() {
  absl::StatusOr<Position> first = FirstAtOrAfter(std::string());
  absl::MutexLock lock(&mu);
  if (first.ok()) oldest = *first;
}

absl::Status ChangeLog::Impl::DeleteAbove(const Position& above_this) {
  const std::string start = AboveHead(above_this);
  absl::StatusOr<Position> above = FirstAtOrAfter(start);
  if (!above.ok()) return above.status();
  if (above->IsZero()) {
    // No change above the head; value chunks may be (a replica stages a large value's chunks
    // before its change).
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), values));
    it->Seek(start);
    if (!it->Valid()) return FromRocks(it->status(), "cannot read the change log");
  } else {
    // Parts of a transaction staged before a crash or a lost connection: PostgreSQL sends it
    // again whole.
    spdlog::info("event=staged_changes_discarded head={} first_discarded={}",
                 FormatCursor(above_this), FormatCursor(*above));
  }
  rocksdb::WriteBatch batch;
  rocksdb::Status deleted = batch.DeleteRange(changes, start, kEndOfPositions);
  if (deleted.ok()) deleted = batch.DeleteRange(values, start, kEndOfPositions);
  if (!deleted.ok()) return FromRocks(deleted, "cannot discard staged changes");
  return WriteSynced(batch, "cannot discard staged changes");
}

absl::Status ChangeLog::Impl::PutHead(rocksdb::WriteBatch& batch, const Position& new_head,
                                      uint64_t resume) {
  rocksdb::Status put = batch.Put(meta, log_format::kResumeLsnKey, EncodeUint64(resume));
  if (put.ok()) put = batch.Put(meta, log_format::kHeadKey, EncodePositionKey(new_head));
  return FromRocks(put, "cannot build the append batch");
}

absl::Status ChangeLog::Impl::WriteSynced(rocksdb::WriteBatch& batch, absl::string_view what) {
  return Write(batch, options.sync, what);
}

absl::Status ChangeLog::Impl::Write(rocksdb::WriteBatch& batch, bool sync, absl::string_view what) {
  // One write at a time, whoever writes (appends, compaction, metadata): after a failed write
  // the next one must first see the failure and resume, never write behind it (RocksDB 7.8, as
  // Debian builds it, aborts on an assertion when a write reaches a log file that just failed).
  absl::MutexLock lock(&write_mu);
  if (write_failed.load()) {
    // RocksDB refuses writes after a failed one (a full disk, say) until resumed; resuming
    // fails for as long as the cause remains, and nothing is written meanwhile.
    rocksdb::Status resumed = db->Resume();
    if (!resumed.ok()) {
      return absl::UnavailableError(absl::StrCat(
          what, ": the change log cannot write (is the disk full?): ", resumed.ToString()));
    }
    write_failed.store(false);
    spdlog::warn("event=log_writes_resumed");
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = sync;
  const rocksdb::Status written = db->Write(write_options, &batch);
  if (!written.ok() && (written.IsIOError() || written.IsNoSpace())) {
    write_failed.store(true);
    spdlog::error("event=log_write_failed error=\"{}\"", written.ToString());
    CountEvent("log_write_failed");
  }
  return FromRocks(written, what);
}

absl::StatusOr<Position> ChangeLog::Impl::ReadPosition(absl::string_view key) const {
  std::string stored;
  rocksdb::Status got = db->Get(rocksdb::ReadOptions(), meta, ToSlice(key), &stored);
  if (got.IsNotFound()) return Position{};
  if (!got.ok()) return FromRocks(got, absl::StrCat("cannot read '", key, "' from the change log"));
  return DecodePositionKey(stored);
}

uint64_t ChangeLog::Impl::DiskBytes() const {
  uint64_t total = 0;
  for (rocksdb::ColumnFamilyHandle* family : {changes, keys, values}) {
    uint64_t value = 0;
    if (db->GetIntProperty(family, rocksdb::DB::Properties::kLiveSstFilesSize, &value)) {
      total += value;
    }
    if (db->GetIntProperty(family, rocksdb::DB::Properties::kCurSizeAllMemTables, &value)) {
      total += value;
    }
  }
  return total;
}

absl::StatusOr<const v1::Change*> ChangeLog::Impl::SerializeForStore(const v1::Change& change,
                                                                     const Position& position,
                                                                     rocksdb::WriteBatch& batch,
                                                                     std::string* value,
                                                                     v1::Change* moved) {
  if (!MayMoveOutOfLine(change, options.out_of_line)) {
    value->clear();
    change.SerializeToString(value);
    if (value->size() <= options.out_of_line.change_bytes) return &change;
    std::string().swap(*value);  // give a large serialization back before the copy
  }
  *moved = change;
  BatchValueStore store(db.get(), values, &batch);
  if (absl::Status s = MoveOutOfLine(options.out_of_line, position, moved, &store); !s.ok()) {
    return s;
  }
  value->clear();
  moved->SerializeToString(value);
  return moved;
}

void ChangeLog::Impl::Publish(const Position& new_head, uint64_t resume, uint64_t changes_count,
                              uint64_t transactions, std::optional<absl::Time> commit_time,
                              const TouchedTables* touched) {
  append_mu.AssertHeld();
  std::vector<HeadListener> to_call;
  Position previous;
  {
    absl::MutexLock lock(&mu);
    previous = head;
    resume_lsn = resume;
    stats.changes_appended += changes_count;
    stats.transactions_appended += transactions;
    stats.appends += 1;
    if (commit_time) {
      stats.newest_commit_time = *commit_time;
      stats.newest_append_time = absl::Now();
    }
    if (new_head > head) {
      head = new_head;
      to_call = listeners;
    }
  }
  if (previous.IsZero() && !new_head.IsZero()) RefreshOldest();
  HeadAdvance advance;
  advance.previous = previous;
  advance.head = new_head;
  if (touched != nullptr && !touched->all()) {
    advance.tables = touched->keys();
    advance.all_tables = false;
  }
  for (const HeadListener& listener : to_call) listener(advance);
}

ChangeLog::ChangeLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChangeLog::~ChangeLog() = default;

namespace {

// What an append does besides storing the changes, decided before its batch is built.
struct AppendPlan {
  // The batch ends a transaction staged in parts: its earlier parts are not indexed yet.
  bool staged_parts = false;
  // Values left out of UPDATEs are filled in from the rows' older images (toast_fill.h).
  bool fill = false;
  // The per-key index is kept current in the same batch.
  bool index = false;
};

// Values left out of UPDATEs are filled in, and the per-key index kept current, for
// transactions held whole; one staged in parts is indexed later by CatchUpIndex() and keeps
// its unchanged_toast markers (its earlier parts are not indexed yet).
absl::StatusOr<AppendPlan> PlanAppend(ChangeLog::Impl& impl,
                                      absl::Span<const Transaction> transactions,
                                      const Position& old_head)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.append_mu) {
  AppendPlan plan;
  bool needs_fill = false;
  for (const Transaction& txn : transactions) {
    if (txn.changes.empty()) continue;
    plan.staged_parts = plan.staged_parts || txn.changes.front().seq() > 0;
    for (const v1::Change& change : txn.changes) {
      needs_fill = needs_fill || ToastFiller::NeedsFill(change);
    }
  }
  plan.fill = needs_fill && !plan.staged_parts;
  if (plan.fill && impl.indexed_up_to < old_head) {
    // The filler reads the index: bring it up to the head first, but only so far: a long
    // catch-up here would stall ingest (the Compactor catches up in the background within a
    // second of a snapshot or staged transaction).
    bool current = false;
    for (int step = 0; step < kMaxCatchUpStepsOnAppend && !current; ++step) {
      absl::StatusOr<bool> caught_up = impl.CatchUpIndexStep(ChangeLog::kIndexStepRecords);
      if (!caught_up.ok()) return caught_up.status();
      current = *caught_up;
    }
    if (!current) {
      plan.fill = false;
      spdlog::warn("event=toast_fill_skipped reason=index_behind indexed_up_to={} head={}",
                   FormatCursor(impl.indexed_up_to), FormatCursor(old_head));
    }
  }
  plan.index = !plan.staged_parts && impl.indexed_up_to >= old_head;
  return plan;
}

// What an append's batch holds, for publishing it once durable.
struct AppendedChanges {
  Position head;
  uint64_t changes = 0;
  std::optional<absl::Time> newest_commit;  // of the last transaction with changes
  TouchedTables touched;
};

// Checks that every transaction continues after `old_head` (and, ending a staged transaction,
// after its staged part), then puts its changes as stored (filled and moved out of line as
// `plan` says), their index entries, the new head and `resume_lsn` into `batch`.
absl::Status BuildAppendBatch(ChangeLog::Impl& impl, absl::Span<const Transaction> transactions,
                              uint64_t resume_lsn, const Position& old_head, const AppendPlan& plan,
                              rocksdb::WriteBatch& batch, AppendedChanges* appended) {
  std::optional<ToastFiller> filler;
  if (plan.fill) filler.emplace(&impl);
  Position head = old_head;
  std::string value;  // reused: one serialization buffer for the whole batch
  v1::Change moved;   // reused: a change with values moved out of line
  for (const Transaction& txn : transactions) {
    if (txn.commit_lsn <= head.lsn) {
      return absl::FailedPreconditionError(absl::StrCat(
          "transaction with commit LSN ", FormatLsn(txn.commit_lsn),
          " is not after the log's head ", FormatCursor(head), "; nothing was appended"));
    }
    if (txn.changes.empty()) continue;
    // A transaction too large to hold was staged in parts; this is its last part, and the part
    // before it must be there.
    const uint32_t first_seq = txn.changes.front().seq();
    if (first_seq > 0) {
      std::string previous;
      rocksdb::Status found =
          impl.db->Get(rocksdb::ReadOptions(), impl.changes,
                       EncodePositionKey({txn.commit_lsn, first_seq - 1}), &previous);
      if (!found.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the transaction at ", FormatLsn(txn.commit_lsn), " continues at seq ", first_seq,
            " but its staged part before that is missing; nothing was appended"));
      }
    }
    for (size_t i = 0; i < txn.changes.size(); ++i) {
      const v1::Change& change = txn.changes[i];
      if (change.lsn() != txn.commit_lsn || change.seq() != first_seq + i) {
        return absl::InvalidArgumentError(absl::StrCat(
            "change ", i, " of the transaction at ", FormatLsn(txn.commit_lsn), " says position ",
            FormatCursor({change.lsn(), change.seq()}), "; nothing was appended"));
      }
      appended->touched.Add(change.schema(), change.table());
      const v1::Change* stored = &change;
      if (filler) {
        absl::StatusOr<const v1::Change*> processed = filler->Process(change);
        if (!processed.ok()) return processed.status();
        stored = *processed;
      }
      const Position position{txn.commit_lsn, change.seq()};
      // Indexed as stored: a value copied from an older image that turned out missing is a
      // marker there, and the index must say the row still needs an image.
      absl::StatusOr<const v1::Change*> stored_form =
          impl.SerializeForStore(*stored, position, batch, &value, &moved);
      if (!stored_form.ok()) return stored_form.status();
      if (plan.index) {
        if (absl::Status s = impl.IndexInto(batch, **stored_form, position); !s.ok()) return s;
      }
      rocksdb::Status put = batch.Put(impl.changes, EncodePositionKey(position), value);
      if (!put.ok()) return FromRocks(put, "cannot build the append batch");
    }
    head = Position{txn.commit_lsn, txn.changes.back().seq()};
    appended->changes += txn.changes.size();
    appended->newest_commit = FromProtoTimestamp(txn.changes.back().commit_time());
  }
  if (plan.index) {
    if (absl::Status s = impl.PutIndexEntries(batch, {}, head); !s.ok()) return s;
  }
  // The last part of a staged transaction publishes the earlier parts' changes too.
  if (plan.staged_parts) appended->touched.SetAll();
  appended->head = head;
  return impl.PutHead(batch, head, resume_lsn);
}

}  // namespace

absl::Status ChangeLog::Append(absl::Span<const Transaction> transactions, uint64_t resume_lsn) {
  absl::MutexLock append_lock(&impl_->append_mu);
  const Position old_head = Head();
  absl::StatusOr<AppendPlan> plan = PlanAppend(*impl_, transactions, old_head);
  if (!plan.ok()) return plan.status();
  rocksdb::WriteBatch batch;
  AppendedChanges appended;
  if (absl::Status s =
          BuildAppendBatch(*impl_, transactions, resume_lsn, old_head, *plan, batch, &appended);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = impl_->WriteSynced(batch, "cannot append to the change log"); !s.ok()) {
    return s;
  }
  WALFEED_INVARIANT(appended.head >= old_head, "an append moved the log's head back");
  if (plan->index) impl_->indexed_up_to = appended.head;
  // A staged transaction's earlier parts are published, and counted, with its last.
  appended.changes += std::exchange(impl_->staged_changes, 0);
  impl_->Publish(appended.head, resume_lsn, appended.changes, transactions.size(),
                 appended.newest_commit, &appended.touched);
  return absl::OkStatus();
}

absl::Status ChangeLog::StageChanges(absl::Span<const v1::Change> changes) {
  // The most bytes one staging write holds.
  constexpr size_t kStageBatchBytes = 4 << 20;
  absl::MutexLock append_lock(&impl_->append_mu);
  Position last = Head();
  for (const v1::Change& change : changes) {
    const Position position{change.lsn(), change.seq()};
    if (position <= last) {
      return absl::FailedPreconditionError(absl::StrCat("staged change at ", FormatCursor(position),
                                                        " is not after ", FormatCursor(last),
                                                        "; nothing was staged"));
    }
    last = position;
  }
  rocksdb::WriteBatch batch;
  std::string value;
  v1::Change moved;
  for (const v1::Change& change : changes) {
    const Position position{change.lsn(), change.seq()};
    if (absl::StatusOr<const v1::Change*> stored =
            impl_->SerializeForStore(change, position, batch, &value, &moved);
        !stored.ok()) {
      return stored.status();
    }
    rocksdb::Status put = batch.Put(impl_->changes, EncodePositionKey(position), value);
    if (!put.ok()) return FromRocks(put, "cannot build the staging batch");
    // Staged changes are invisible until CommitStaged(), so they may reach the log in several
    // writes: a bounded batch keeps a large transaction's memory independent of its part size.
    if (batch.GetDataSize() >= kStageBatchBytes) {
      if (absl::Status s = impl_->Write(batch, /*sync=*/false, "cannot stage changes"); !s.ok()) {
        return s;
      }
      batch.Clear();
    }
  }
  if (!changes.empty()) impl_->staged_last = last;
  // Not synced: CommitStaged()'s synced write makes the log durable up to here.
  if (absl::Status s = impl_->Write(batch, /*sync=*/false, "cannot stage changes"); !s.ok()) {
    return s;
  }
  impl_->staged_changes += changes.size();
  return absl::OkStatus();
}

absl::Status ChangeLog::CommitStaged(const Position& last, uint64_t resume_lsn,
                                     const MetadataUpdates& metadata) {
  absl::MutexLock append_lock(&impl_->append_mu);
  const Position head = Head();
  if (last < head) {
    return absl::FailedPreconditionError(absl::StrCat("cannot commit staged changes up to ",
                                                      FormatCursor(last), ", below the head ",
                                                      FormatCursor(head)));
  }
  rocksdb::WriteBatch batch;
  if (absl::Status s = impl_->PutHead(batch, last, resume_lsn); !s.ok()) return s;
  for (const auto& [key, value] : metadata) {
    rocksdb::Status put =
        batch.Put(impl_->meta, absl::StrCat(kMetadataPrefix, key), ToSlice(value));
    if (!put.ok()) return FromRocks(put, "cannot record metadata with staged changes");
  }
  if (absl::Status s = impl_->WriteSynced(batch, "cannot append to the change log"); !s.ok())
    return s;
  impl_->Publish(last, resume_lsn, std::exchange(impl_->staged_changes, 0), 0, std::nullopt);
  return absl::OkStatus();
}

absl::Status ChangeLog::AppendStored(absl::Span<const StoredChunk> chunks,
                                     absl::Span<const LogRecord> records, bool commit,
                                     const MetadataUpdates& metadata) {
  absl::MutexLock append_lock(&impl_->append_mu);
  const Position head = Head();
  // Records continue after the head and after what earlier calls staged.
  if (impl_->stored_staged_last < head) {
    impl_->stored_staged_last = head;
    impl_->stored_staged_changes = 0;
    impl_->stored_staged_transactions = 0;
  }
  rocksdb::WriteBatch batch;
  BatchValueStore values(impl_->db.get(), impl_->values, &batch);
  for (const StoredChunk& chunk : chunks) {
    if (chunk.ref.position <= head) {
      return absl::FailedPreconditionError(absl::StrCat(
          "a value chunk of the change at ", FormatCursor(chunk.ref.position),
          " is not after the log's head ", FormatCursor(head), "; nothing was appended"));
    }
    if (absl::Status s = values.Put(chunk.ref, chunk.offset, chunk.data); !s.ok()) return s;
  }
  Position last = impl_->stored_staged_last;
  uint64_t transactions = 0;
  std::optional<absl::Time> newest_commit;
  for (const LogRecord& record : records) {
    ChangeSummary summary;
    if (SummarizeChange(record.change, &summary) && summary.last_in_transaction) ++transactions;
    if (record.position <= last) {
      return absl::FailedPreconditionError(
          absl::StrCat("the stored change at ", FormatCursor(record.position), " is not after ",
                       FormatCursor(last), "; nothing was appended"));
    }
    last = record.position;
    rocksdb::Status put =
        batch.Put(impl_->changes, EncodePositionKey(record.position), ToSlice(record.change));
    if (!put.ok()) return FromRocks(put, "cannot build the append batch");
  }
  for (const auto& [key, value] : metadata) {
    rocksdb::Status put =
        batch.Put(impl_->meta, absl::StrCat(kMetadataPrefix, key), ToSlice(value));
    if (!put.ok()) return FromRocks(put, "cannot record metadata with stored changes");
  }
  if (!commit) {
    if (absl::Status s = impl_->WriteSynced(batch, "cannot stage stored changes"); !s.ok()) {
      return s;
    }
    impl_->stored_staged_last = last;
    impl_->stored_staged_changes += records.size();
    impl_->stored_staged_transactions += transactions;
    return absl::OkStatus();
  }
  // The source's resume point of a replica: just past its newest change (a transaction's commit
  // record, or a non-transactional message's record, starts after it).
  const uint64_t resume_lsn = last.lsn + 1;
  if (!records.empty()) {
    v1::Change newest;
    if (newest.ParseFromString(records.back().change) && newest.has_commit_time()) {
      newest_commit = FromProtoTimestamp(newest.commit_time());
    }
  }
  if (absl::Status s = impl_->PutHead(batch, last, resume_lsn); !s.ok()) return s;
  if (absl::Status s = impl_->WriteSynced(batch, "cannot append stored changes"); !s.ok()) {
    return s;
  }
  impl_->Publish(last, resume_lsn, impl_->stored_staged_changes + records.size(),
                 impl_->stored_staged_transactions + transactions, newest_commit);
  impl_->stored_staged_last = last;
  impl_->stored_staged_changes = 0;
  impl_->stored_staged_transactions = 0;
  return absl::OkStatus();
}

absl::Status ChangeLog::AdoptLogId(absl::string_view log_id) {
  absl::MutexLock append_lock(&impl_->append_mu);
  if (log_id == impl_->log_id) return absl::OkStatus();
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->changes));
  it->SeekToFirst();
  if (it->Valid() || !Head().IsZero()) {
    return absl::FailedPreconditionError(
        absl::StrCat("this data directory holds the log ", impl_->log_id,
                     ", not a copy of the log ", log_id, ": give the replica an empty --data-dir"));
  }
  rocksdb::WriteBatch batch;
  rocksdb::Status put = batch.Put(impl_->meta, log_format::kLogIdKey, ToSlice(log_id));
  if (!put.ok()) return FromRocks(put, "cannot record the change log's id");
  if (absl::Status s = impl_->WriteSynced(batch, "cannot record the change log's id"); !s.ok()) {
    return s;
  }
  spdlog::info("event=log_id_adopted log_id={} previous={}", std::string(log_id), impl_->log_id);
  impl_->log_id = std::string(log_id);
  return absl::OkStatus();
}

absl::Status ChangeLog::DiscardStaged() {
  absl::MutexLock append_lock(&impl_->append_mu);
  impl_->staged_last = Position();
  impl_->staged_changes = 0;
  return impl_->DeleteAbove(Head());
}

std::string ChangeLog::Metadata(absl::string_view key) const {
  std::string value;
  rocksdb::Status got = impl_->db->Get(rocksdb::ReadOptions(), impl_->meta,
                                       absl::StrCat(kMetadataPrefix, key), &value);
  return got.ok() ? value : std::string();
}

absl::Status ChangeLog::SetMetadata(absl::string_view key, absl::string_view value) {
  const std::string what = absl::StrCat("cannot record '", key, "' in the change log");
  rocksdb::WriteBatch batch;
  rocksdb::Status put = batch.Put(impl_->meta, absl::StrCat(kMetadataPrefix, key), ToSlice(value));
  if (!put.ok()) return FromRocks(put, what);
  return impl_->WriteSynced(batch, what);
}

absl::Status ChangeLog::SetMetadata(const MetadataUpdates& updates) {
  rocksdb::WriteBatch batch;
  for (const auto& [key, value] : updates) {
    rocksdb::Status put =
        batch.Put(impl_->meta, absl::StrCat(kMetadataPrefix, key), ToSlice(value));
    if (!put.ok()) return FromRocks(put, "cannot record metadata in the change log");
  }
  return impl_->WriteSynced(batch, "cannot record metadata in the change log");
}

const std::string& ChangeLog::LogId() const { return impl_->log_id; }

uint64_t ChangeLog::ResumeLsn() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->resume_lsn;
}

absl::Status ChangeLog::Read(const Position& start, size_t max_records, size_t max_bytes,
                             std::vector<LogRecord>* out) const {
  return Visit(start, max_records, max_bytes,
               [out](const Position& position, absl::string_view change) {
                 out->push_back(LogRecord{position, std::string(change)});
                 return true;
               });
}

absl::Status ChangeLog::Visit(const Position& start, size_t max_records, size_t max_bytes,
                              const RecordVisitor& visit) const {
  const Position head = Head();
  if (head.IsZero() || start > head) return absl::OkStatus();
  const std::string upper = EncodePositionKey(head.Successor());
  const rocksdb::Slice upper_bound(upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper_bound;
  // A reader far behind the head (catching up from the start, say) reads blocks no one reads
  // again soon: keeping them out of the block cache spares its insert and evict work and the
  // blocks the followers of the head share (bench/catchup.py).
  read_options.fill_cache = head.lsn - std::min(head.lsn, start.lsn) < kCacheFillWindow;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options, impl_->changes));
  size_t records = 0;
  size_t bytes = 0;
  for (it->Seek(EncodePositionKey(start)); it->Valid() && records < max_records; it->Next()) {
    absl::StatusOr<Position> position = DecodePositionKey(KeyOf(*it));
    if (!position.ok()) return position.status();
    const rocksdb::Slice value = it->value();
    // Cut before the record that would cross the byte bound, never after it: a batch exceeds
    // the bound only when its one record alone does.
    if (records > 0 && bytes + value.size() > max_bytes) break;
    ++records;
    bytes += value.size();
    if (!visit(*position, absl::string_view(value.data(), value.size()))) break;
  }
  return FromRocks(it->status(), "cannot read the change log");
}

absl::StatusOr<v1::LargeValue> ChangeLog::FindLargeValue(const ValueRef& ref) const {
  const auto not_found = [&ref](absl::string_view why) {
    return WithReason(
        absl::NotFoundError(absl::StrCat(
            "no value is stored out of line at '", FormatValueRef(ref), "': ", why,
            "; if the feed sent you this reference, a newer change of its row follows it: resume "
            "from the cursor before its change to read on without it")),
        reason::kValueNotFound);
  };
  if (ref.position > Head()) return not_found("the log holds no change at that position");
  std::string stored;
  rocksdb::Status got = impl_->db->Get(rocksdb::ReadOptions(), impl_->changes,
                                       EncodePositionKey(ref.position), &stored);
  if (got.IsNotFound()) {
    return not_found("the change is no longer in the log (compaction removed it)");
  }
  if (!got.ok()) return FromRocks(got, "cannot read the change log");
  v1::Change change;
  if (!change.ParseFromString(stored)) {
    return absl::DataLossError(
        absl::StrCat("the change at ", FormatCursor(ref.position), " cannot be parsed"));
  }
  const google::protobuf::RepeatedPtrField<v1::Column>* columns = nullptr;
  switch (ref.part) {
    case ValuePart::kKey:
      columns = &change.key();
      break;
    case ValuePart::kBefore:
      columns = &change.before();
      break;
    case ValuePart::kAfter:
      columns = &change.after();
      break;
    case ValuePart::kMessage:
      if (change.message().has_large_content()) return change.message().large_content();
      return not_found("the change holds no such value");
  }
  if (columns == nullptr || ref.index >= static_cast<uint32_t>(columns->size()) ||
      (*columns)[static_cast<int>(ref.index)].value_case() != v1::Column::kLarge) {
    return not_found("the change holds no such value");
  }
  return (*columns)[static_cast<int>(ref.index)].large();
}

absl::StatusOr<std::string> ChangeLog::ReadLargeValue(const ValueRef& ref, uint64_t offset,
                                                      size_t max_bytes) const {
  return ReadValueChunk(impl_->db.get(), impl_->values, ref, offset, max_bytes);
}

absl::Status ChangeLog::VisitValueChunks(
    const Position& first, const Position& last, const ChunkVisitor& visit,
    const std::optional<std::pair<ValueRef, uint64_t>>& start_at) const {
  const Position head = Head();
  if (head.IsZero() || first > head) return absl::OkStatus();
  return walfeed::VisitValueChunks(impl_->db.get(), impl_->values, first, std::min(last, head),
                                   visit, start_at);
}

Position ChangeLog::Head() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->head;
}

Position ChangeLog::Oldest() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->oldest;
}

Position ChangeLog::PurgePoint() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->purge_point;
}

absl::Status ChangeLog::RaisePurgePoint(const Position& position) {
  Position raised;
  {
    absl::MutexLock lock(&impl_->mu);
    if (position <= impl_->purge_point) return absl::OkStatus();
    raised = position;
  }
  rocksdb::WriteBatch batch;
  rocksdb::Status put =
      batch.Put(impl_->meta, log_format::kPurgePointKey, EncodePositionKey(raised));
  if (!put.ok()) return FromRocks(put, "cannot record the purge point");
  if (absl::Status written = impl_->WriteSynced(batch, "cannot record the purge point");
      !written.ok()) {
    return written;
  }
  absl::MutexLock lock(&impl_->mu);
  impl_->purge_point = std::max(impl_->purge_point, raised);
  return absl::OkStatus();
}

std::optional<v1::CompactionResult> ChangeLog::LastCompaction() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->last_compaction;
}

uint64_t ChangeLog::DiskBytes() const { return impl_->DiskBytes(); }

ChangeLogStats ChangeLog::Stats() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->stats;
}

void ChangeLog::AddHeadListener(HeadListener listener) {
  absl::MutexLock lock(&impl_->mu);
  impl_->listeners.push_back(std::move(listener));
}

}  // namespace walfeed
