#include "server/log/change_log.h"

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "server/log/position_key.h"

namespace walfeed {
namespace {

constexpr char kChangesFamily[] = "changes";
constexpr char kResumeLsnKey[] = "source/resume_lsn";
constexpr char kSourceIdentityKey[] = "source/identity";

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": ", status.ToString());
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsIOError() || status.IsNoSpace()) return absl::UnavailableError(message);
  if (status.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  return absl::InternalError(message);
}

absl::string_view KeyOf(const rocksdb::Iterator& it) {
  const rocksdb::Slice key = it.key();
  return absl::string_view(key.data(), key.size());
}

}  // namespace

struct ChangeLog::Impl {
  ChangeLogOptions options;
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ColumnFamilyHandle* meta = nullptr;     // owned by `handles`
  rocksdb::ColumnFamilyHandle* changes = nullptr;  // owned by `handles`
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles;

  absl::Mutex append_mu;  // serializes appenders; taken before `mu`
  mutable absl::Mutex mu;
  Position head ABSL_GUARDED_BY(mu);
  Position oldest ABSL_GUARDED_BY(mu);
  uint64_t resume_lsn ABSL_GUARDED_BY(mu) = 0;
  std::string source_identity ABSL_GUARDED_BY(mu);
  ChangeLogStats stats ABSL_GUARDED_BY(mu);
  std::vector<HeadListener> listeners ABSL_GUARDED_BY(mu);

  ~Impl() {
    handles.clear();  // column family handles must go before the DB
    db.reset();
  }
};

ChangeLog::ChangeLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChangeLog::~ChangeLog() = default;

absl::StatusOr<std::unique_ptr<ChangeLog>> ChangeLog::Open(const ChangeLogOptions& options) {
  if (absl::Status valid = options.Validate(); !valid.ok()) return valid;
  auto impl = std::make_unique<Impl>();
  impl->options = options;

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);

  rocksdb::ColumnFamilyOptions changes_options;
  rocksdb::BlockBasedTableOptions table_options;
  table_options.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  changes_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kChangesFamily, changes_options},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> raw_handles;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status opened =
      rocksdb::DB::Open(db_options, options.path, families, &raw_handles, &raw_db);
  if (!opened.ok()) {
    return FromRocks(opened, absl::StrCat("cannot open the change log in '", options.path,
                                          "' (is another walfeed using it?)"));
  }
  impl->db.reset(raw_db);
  for (rocksdb::ColumnFamilyHandle* handle : raw_handles) impl->handles.emplace_back(handle);
  impl->meta = raw_handles[0];
  impl->changes = raw_handles[1];

  std::string resume;
  rocksdb::Status got = impl->db->Get(rocksdb::ReadOptions(), impl->meta, kResumeLsnKey, &resume);
  uint64_t resume_lsn = 0;
  if (got.ok()) {
    absl::StatusOr<uint64_t> decoded = DecodeUint64(resume);
    if (!decoded.ok()) return decoded.status();
    resume_lsn = *decoded;
  } else if (!got.IsNotFound()) {
    return FromRocks(got, "cannot read the change log's resume point");
  }

  std::string identity;
  got = impl->db->Get(rocksdb::ReadOptions(), impl->meta, kSourceIdentityKey, &identity);
  if (!got.ok() && !got.IsNotFound()) {
    return FromRocks(got, "cannot read the change log's source identity");
  }

  Position head, oldest;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        impl->db->NewIterator(rocksdb::ReadOptions(), impl->changes));
    it->SeekToLast();
    if (it->Valid()) {
      absl::StatusOr<Position> last = DecodePositionKey(KeyOf(*it));
      if (!last.ok()) return last.status();
      head = *last;
      it->SeekToFirst();
      absl::StatusOr<Position> first = DecodePositionKey(KeyOf(*it));
      if (!first.ok()) return first.status();
      oldest = *first;
    }
    if (!it->status().ok()) return FromRocks(it->status(), "cannot scan the change log");
  }
  {
    absl::MutexLock lock(&impl->mu);
    impl->head = head;
    impl->oldest = oldest;
    impl->resume_lsn = resume_lsn;
    impl->source_identity = std::move(identity);
  }
  return std::unique_ptr<ChangeLog>(new ChangeLog(std::move(impl)));
}

absl::Status ChangeLog::Append(absl::Span<const Transaction> transactions, uint64_t resume_lsn) {
  absl::MutexLock append_lock(&impl_->append_mu);
  Position head = Head();
  const Position head_before = head;

  rocksdb::WriteBatch batch;
  std::string value;  // reused: one serialization buffer for the whole batch
  uint64_t change_count = 0;
  Position first_appended;
  for (const Transaction& txn : transactions) {
    if (txn.commit_lsn <= head.lsn) {
      return absl::FailedPreconditionError(absl::StrCat(
          "transaction with commit LSN ", FormatLsn(txn.commit_lsn),
          " is not after the log's head ", FormatCursor(head), "; nothing was appended"));
    }
    if (txn.changes.empty()) continue;
    for (size_t i = 0; i < txn.changes.size(); ++i) {
      const v1::Change& change = txn.changes[i];
      if (change.lsn() != txn.commit_lsn || change.seq() != i) {
        return absl::InvalidArgumentError(absl::StrCat(
            "change ", i, " of the transaction at ", FormatLsn(txn.commit_lsn), " says position ",
            FormatCursor({change.lsn(), change.seq()}), "; nothing was appended"));
      }
      value.clear();
      change.SerializeToString(&value);
      rocksdb::Status put = batch.Put(
          impl_->changes, EncodePositionKey({txn.commit_lsn, static_cast<uint32_t>(i)}), value);
      if (!put.ok()) return FromRocks(put, "cannot build the append batch");
    }
    if (first_appended.IsZero()) first_appended = Position{txn.commit_lsn, 0};
    head = Position{txn.commit_lsn, static_cast<uint32_t>(txn.changes.size() - 1)};
    change_count += txn.changes.size();
  }
  rocksdb::Status put = batch.Put(impl_->meta, kResumeLsnKey, EncodeUint64(resume_lsn));
  if (!put.ok()) return FromRocks(put, "cannot build the append batch");

  rocksdb::WriteOptions write_options;
  write_options.sync = impl_->options.sync;
  rocksdb::Status written = impl_->db->Write(write_options, &batch);
  if (!written.ok()) return FromRocks(written, "cannot append to the change log");

  std::vector<HeadListener> listeners;
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->resume_lsn = resume_lsn;
    impl_->stats.changes_appended += change_count;
    impl_->stats.transactions_appended += transactions.size();
    impl_->stats.appends += 1;
    if (head != head_before) {
      if (impl_->head.IsZero()) impl_->oldest = first_appended;
      impl_->head = head;
      listeners = impl_->listeners;
    }
  }
  for (const HeadListener& listener : listeners) listener(head);
  return absl::OkStatus();
}

uint64_t ChangeLog::ResumeLsn() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->resume_lsn;
}

absl::Status ChangeLog::Read(const Position& start, size_t max_records, size_t max_bytes,
                             std::vector<LogRecord>* out) const {
  rocksdb::ReadOptions read_options;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options, impl_->changes));
  size_t records = 0;
  size_t bytes = 0;
  for (it->Seek(EncodePositionKey(start));
       it->Valid() && records < max_records && bytes < max_bytes; it->Next()) {
    absl::StatusOr<Position> position = DecodePositionKey(KeyOf(*it));
    if (!position.ok()) return position.status();
    const rocksdb::Slice value = it->value();
    out->push_back(LogRecord{*position, std::string(value.data(), value.size())});
    ++records;
    bytes += value.size();
  }
  return FromRocks(it->status(), "cannot read the change log");
}

std::string ChangeLog::SourceIdentity() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->source_identity;
}

absl::Status ChangeLog::SetSourceIdentity(absl::string_view identity) {
  rocksdb::WriteOptions write_options;
  write_options.sync = impl_->options.sync;
  rocksdb::Status put = impl_->db->Put(write_options, impl_->meta, kSourceIdentityKey,
                                       rocksdb::Slice(identity.data(), identity.size()));
  if (!put.ok()) return FromRocks(put, "cannot record the change log's source");
  absl::MutexLock lock(&impl_->mu);
  impl_->source_identity = std::string(identity);
  return absl::OkStatus();
}

Position ChangeLog::Head() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->head;
}

Position ChangeLog::Oldest() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->oldest;
}

ChangeLogStats ChangeLog::Stats() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->stats;
}

void ChangeLog::AddHeadListener(HeadListener listener) {
  absl::MutexLock lock(&impl_->mu);
  impl_->listeners.push_back(std::move(listener));
}

}  // namespace walfeed
