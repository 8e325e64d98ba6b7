// ChangeLog::Open: opens the RocksDB database, checks and upgrades the stored format
// (log_format.h), then recovers the log's state from what is durable: the head and resume point,
// what was staged and never committed (discarded), the log's id, the oldest change, the purge
// point and the per-key index's progress.
#include <algorithm>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "server/log/change_log.h"
#include "server/log/change_log_state.h"
#include "server/log/disk_full_injection.h"
#include "server/log/log_format.h"
#include "server/log/log_id.h"
#include "server/log/position_key.h"
#include "server/log/rocksdb_event_logger.h"
#include "server/log/rocksdb_info_log.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

using log_internal::FromRocks;
using log_internal::KeyOf;

// The column families, in the order Impl's handles take them.
constexpr const char* kFamilies[] = {log_format::kDefaultFamily, log_format::kChangesFamily,
                                     log_format::kKeysFamily, log_format::kValuesFamily};

// A log with column families this walfeed does not know was written by a newer one: refused
// before RocksDB opens it (which would fail with a message naming no cause) or changes anything.
absl::Status CheckColumnFamilies(const std::string& path) {
  std::vector<std::string> names;
  // Fails when there is no database yet: nothing to check.
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok()) {
    return absl::OkStatus();
  }
  std::vector<std::string> unknown;
  for (const std::string& name : names) {
    if (std::find(std::begin(kFamilies), std::end(kFamilies), name) == std::end(kFamilies)) {
      unknown.push_back(absl::StrCat("'", name, "'"));
    }
  }
  if (unknown.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the change log in '", path, "' holds column families this walfeed does not know (",
      absl::StrJoin(unknown, ", "),
      "): it was written by a newer walfeed; run that version or a newer one on this data "
      "directory (nothing in it was changed)"));
}

absl::StatusOr<std::unique_ptr<ChangeLog::Impl>> OpenDatabase(const ChangeLogOptions& options) {
  // RocksDB would create it too, but first logs an error about the missing directory.
  std::error_code created;
  std::filesystem::create_directories(options.path, created);
  if (created) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the change log in '", options.path,
                     "': cannot create it as a directory: ", created.message()));
  }
  if (absl::Status s = CheckColumnFamilies(options.path); !s.ok()) return s;
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.listeners.push_back(std::make_shared<RocksDbEventLogger>());
  // RocksDB's messages go to walfeed's log, not to a LOG file beside the data: RocksDB 7.8 aborts
  // on the first message after its LOG file hit a full disk.
  db_options.info_log = std::make_shared<RocksDbInfoLog>();
  db_options.info_log_level = RocksDbInfoLog::LevelForWalfeedsLog();
  // Bounds the write-ahead log: past this, RocksDB flushes the column families that pin old WAL
  // files (the small default family is written with every append but rarely fills a memtable).
  db_options.max_total_wal_size = 256 << 20;
  // The test suite's full disk on demand (disk_full_injection.h); nullptr: RocksDB's default.
  if (rocksdb::Env* env = DiskFullInjectingEnv()) db_options.env = env;

  rocksdb::ColumnFamilyOptions changes_options;
  rocksdb::BlockBasedTableOptions table_options;
  table_options.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  // Changes are read in order: 32 KiB blocks cost far less per change to fetch, decompress and
  // cache than the 4 KiB default (a raw scan took 0.49 instead of 0.72 us a change).
  table_options.block_size = 32 << 10;
  changes_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {kFamilies[0], rocksdb::ColumnFamilyOptions()},
      {kFamilies[1], changes_options},
      // RocksDB's default skiplist memtable. A hash of skiplists (one per row key) made each
      // index insert cheaper, but every flush then sorted the whole memtable into a new skiplist:
      // a quarter of walfeed's ingest CPU (1000-row transactions: 9.4-11.2 s of CPU per million
      // changes against 5.8-8.2 with the default).
      {kFamilies[2], rocksdb::ColumnFamilyOptions()},
      {kFamilies[3], rocksdb::ColumnFamilyOptions()},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> raw_handles;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status opened =
      rocksdb::DB::Open(db_options, options.path, families, &raw_handles, &raw_db);
  if (!opened.ok()) {
    return FromRocks(opened, absl::StrCat("cannot open the change log in '", options.path,
                                          "' (is another walfeed using it?)"));
  }
  auto impl = std::make_unique<ChangeLog::Impl>();
  impl->options = options;
  impl->db.reset(raw_db);
  for (rocksdb::ColumnFamilyHandle* handle : raw_handles) impl->handles.emplace_back(handle);
  impl->meta = raw_handles[0];
  impl->changes = raw_handles[1];
  impl->keys = raw_handles[2];
  impl->values = raw_handles[3];
  return impl;
}

// Brings a log of format `from` to format `from` + 1. No step exists yet: format 1 is the first.
absl::Status UpgradeFormatStep(ChangeLog::Impl& impl, int from) {
  return absl::InternalError(
      absl::StrCat("no upgrade of the change log in '", impl.options.path, "' from format ", from));
}

// Checks the stored format version: refuses a newer or unreadable one before changing anything,
// upgrades an older one step by step, and records the current one (in a new log, and in one
// written before the version was stored, which is format 1).
absl::Status CheckAndUpgradeFormat(ChangeLog::Impl& impl) {
  const std::string& path = impl.options.path;
  std::string stored;
  const rocksdb::Status got =
      impl.db->Get(rocksdb::ReadOptions(), impl.meta, log_format::kFormatVersionKey, &stored);
  if (!got.ok() && !got.IsNotFound()) {
    return FromRocks(got, "cannot read the change log's format version");
  }
  int version = log_format::kOldestReadableFormat;
  if (got.ok() && (!absl::SimpleAtoi(stored, &version) || version < 1)) {
    return absl::DataLossError(absl::StrCat(
        "the change log in '", path, "' records format version '", absl::CHexEscape(stored),
        "', which is no version walfeed writes: the data directory is damaged"));
  }
  if (version > log_format::kLogFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the change log in '", path, "' is of format ", version,
        ", written by a newer walfeed; this walfeed reads formats ",
        log_format::kOldestReadableFormat, " to ", log_format::kLogFormatVersion,
        ": run that version or a newer one on this data directory (nothing in it was changed)"));
  }
  if (version < log_format::kOldestReadableFormat) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the change log in '", path, "' is of format ", version,
        ", which this walfeed no longer upgrades: open it once with a walfeed that reads format ",
        version, " and ", log_format::kOldestReadableFormat, ", then with this one"));
  }
  if (got.ok() && version == log_format::kLogFormatVersion) return absl::OkStatus();
  for (int from = version; from < log_format::kLogFormatVersion; ++from) {
    if (absl::Status s = UpgradeFormatStep(impl, from); !s.ok()) return s;
    spdlog::info("event=log_format_upgraded from={} to={}", from, from + 1);
  }
  rocksdb::WriteBatch batch;
  const rocksdb::Status put = batch.Put(impl.meta, log_format::kFormatVersionKey,
                                        std::to_string(log_format::kLogFormatVersion));
  if (!put.ok()) return FromRocks(put, "cannot record the change log's format version");
  return impl.Write(batch, /*sync=*/true, "cannot record the change log's format version");
}

// Reads the log's id into impl.log_id, creating (and syncing) it when the log has none.
absl::Status ReadOrCreateLogId(ChangeLog::Impl& impl) {
  rocksdb::Status got =
      impl.db->Get(rocksdb::ReadOptions(), impl.meta, log_format::kLogIdKey, &impl.log_id);
  if (got.ok()) return absl::OkStatus();
  if (!got.IsNotFound()) return FromRocks(got, "cannot read the change log's id");
  impl.log_id = NewLogId();
  rocksdb::WriteBatch batch;
  rocksdb::Status put = batch.Put(impl.meta, log_format::kLogIdKey, impl.log_id);
  if (!put.ok()) return FromRocks(put, "cannot record the change log's id");
  if (absl::Status s = impl.Write(batch, /*sync=*/true, "cannot record the change log's id");
      !s.ok()) {
    return s;
  }
  spdlog::info("event=log_id_created log_id={}", impl.log_id);
  return absl::OkStatus();
}

// An index written in another format is emptied, to be rebuilt from the changes by
// CatchUpIndex() (compaction removes nothing the index does not cover meanwhile).
absl::Status ResetIndexOfAnotherFormat(ChangeLog::Impl& impl) {
  std::string format;
  const rocksdb::Status got =
      impl.db->Get(rocksdb::ReadOptions(), impl.meta, log_format::kIndexFormatKey, &format);
  if (!got.ok() && !got.IsNotFound()) return FromRocks(got, "cannot read the index's format");
  if (got.ok() && format == log_format::kIndexFormat) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  // Every index key starts with a tag byte below 0xff (log_format.h).
  rocksdb::Status reset = batch.DeleteRange(impl.keys, rocksdb::Slice(), "\xff");
  if (reset.ok()) reset = batch.Delete(impl.meta, log_format::kIndexedUpToKey);
  if (reset.ok())
    reset = batch.Put(impl.meta, log_format::kIndexFormatKey, log_format::kIndexFormat);
  if (!reset.ok()) return FromRocks(reset, "cannot reset the per-key index");
  std::string indexed;
  if (got.ok() ||
      impl.db->Get(rocksdb::ReadOptions(), impl.meta, log_format::kIndexedUpToKey, &indexed).ok()) {
    spdlog::info("event=index_rebuild reason=format_changed from={} to={}", got.ok() ? format : "1",
                 log_format::kIndexFormat);
  }
  return impl.WriteSynced(batch, "cannot reset the per-key index");
}

absl::StatusOr<uint64_t> ReadResumeLsn(const ChangeLog::Impl& impl) {
  std::string stored;
  const rocksdb::Status got =
      impl.db->Get(rocksdb::ReadOptions(), impl.meta, log_format::kResumeLsnKey, &stored);
  if (got.IsNotFound()) return 0;
  if (!got.ok()) return FromRocks(got, "cannot read the change log's resume point");
  return DecodeUint64(stored);
}

// The committed head, with whatever a crash left staged above it discarded. A log without a
// recorded head (a new one, or one written before the head was recorded, which never staged
// anything) takes its last change, recorded before anything can be staged, so that staged
// changes are never taken for committed ones.
absl::StatusOr<Position> RecoverHead(ChangeLog::Impl& impl, uint64_t resume_lsn) {
  std::string stored;
  const rocksdb::Status got =
      impl.db->Get(rocksdb::ReadOptions(), impl.meta, log_format::kHeadKey, &stored);
  if (got.ok()) {
    absl::StatusOr<Position> head = DecodePositionKey(stored);
    if (!head.ok()) return head.status();
    if (absl::Status discarded = impl.DeleteAbove(*head); !discarded.ok()) return discarded;
    return head;
  }
  if (!got.IsNotFound()) return FromRocks(got, "cannot read the change log's head");
  Position head;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(rocksdb::ReadOptions(), impl.changes));
  it->SeekToLast();
  if (!it->status().ok()) return FromRocks(it->status(), "cannot scan the change log");
  if (it->Valid()) {
    absl::StatusOr<Position> last = DecodePositionKey(KeyOf(*it));
    if (!last.ok()) return last.status();
    head = *last;
  }
  rocksdb::WriteBatch batch;
  if (absl::Status s = impl.PutHead(batch, head, resume_lsn); !s.ok()) return s;
  if (absl::Status s = impl.WriteSynced(batch, "cannot append to the change log"); !s.ok()) {
    return s;
  }
  return head;
}

// The last compaction pass as recorded (nullopt when none was, or the record is unreadable: it
// is only shown).
std::optional<v1::CompactionResult> ReadLastCompaction(const ChangeLog::Impl& impl) {
  std::string stored;
  if (!impl.db->Get(rocksdb::ReadOptions(), impl.meta, log_format::kLastCompactionKey, &stored)
           .ok()) {
    return std::nullopt;
  }
  v1::CompactionResult last;
  if (!last.ParseFromString(stored)) return std::nullopt;
  return last;
}

// Reads the log's state from what is durable into `impl`.
absl::Status Recover(ChangeLog::Impl& impl) {
  absl::StatusOr<uint64_t> resume_lsn = ReadResumeLsn(impl);
  if (!resume_lsn.ok()) return resume_lsn.status();
  absl::StatusOr<Position> head = RecoverHead(impl, *resume_lsn);
  if (!head.ok()) return head.status();
  if (absl::Status s = ReadOrCreateLogId(impl); !s.ok()) return s;
  absl::StatusOr<Position> oldest = impl.FirstAtOrAfter(std::string());
  if (!oldest.ok()) return oldest.status();
  absl::StatusOr<Position> purge_point = impl.ReadPosition(log_format::kPurgePointKey);
  if (!purge_point.ok()) return purge_point.status();
  if (absl::Status s = ResetIndexOfAnotherFormat(impl); !s.ok()) return s;
  absl::StatusOr<Position> indexed_up_to = impl.ReadPosition(log_format::kIndexedUpToKey);
  if (!indexed_up_to.ok()) return indexed_up_to.status();
  {
    absl::MutexLock append_lock(&impl.append_mu);
    impl.indexed_up_to = std::min(*indexed_up_to, *head);
  }
  absl::MutexLock lock(&impl.mu);
  impl.head = *head;
  impl.oldest = *oldest;
  impl.purge_point = *purge_point;
  impl.resume_lsn = *resume_lsn;
  impl.last_compaction = ReadLastCompaction(impl);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChangeLog>> ChangeLog::Open(const ChangeLogOptions& options) {
  if (absl::Status valid = options.Validate(); !valid.ok()) return valid;
  absl::StatusOr<std::unique_ptr<Impl>> impl = OpenDatabase(options);
  if (!impl.ok()) return impl.status();
  // Before anything else is read: what the rest reads depends on the format.
  if (absl::Status s = CheckAndUpgradeFormat(**impl); !s.ok()) return s;
  if (absl::Status s = Recover(**impl); !s.ok()) return s;
  return std::unique_ptr<ChangeLog>(new ChangeLog(*std::move(impl)));
}

}  // namespace walfeed
