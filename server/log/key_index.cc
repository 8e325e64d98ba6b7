#include "server/log/key_index.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "server/core/log_format.h"
#include "server/log/change_log_state.h"
#include "server/log/position_key.h"
#include "server/log/toast_fill.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

using log_internal::FromRocks;
using log_internal::KeyOf;

constexpr char kLiveRow = 'L';
constexpr char kDeletedRow = 'D';
// The same, when the change that wrote the entry left a TOASTed value out.
constexpr char kLiveRowNeedingImage = 'M';
constexpr char kDeletedRowNeedingImage = 'N';

char RowTag(bool deleted, bool needs_image) {
  if (needs_image) return deleted ? kDeletedRowNeedingImage : kLiveRowNeedingImage;
  return deleted ? kDeletedRow : kLiveRow;
}

}  // namespace

std::string EncodeRowEntry(const Position& position, bool deleted, bool needs_image) {
  std::string value = EncodePositionKey(position);
  value.push_back(RowTag(deleted, needs_image));
  return value;
}

absl::StatusOr<IndexEntry> DecodeIndexEntry(absl::string_view value) {
  if (value.size() != kPositionKeySize && value.size() != kPositionKeySize + 1) {
    return absl::DataLossError(
        absl::StrCat("an index entry of the change log is ", value.size(), " bytes long"));
  }
  absl::StatusOr<Position> position = DecodePositionKey(value.substr(0, kPositionKeySize));
  if (!position.ok()) return position.status();
  const char tag = value.size() > kPositionKeySize ? value.back() : kLiveRow;
  return IndexEntry{*position, tag == kDeletedRow || tag == kDeletedRowNeedingImage,
                    tag == kLiveRowNeedingImage || tag == kDeletedRowNeedingImage};
}

void ChangeLog::Impl::CollectIndexEntries(const v1::Change& change, const Position& position,
                                          absl::flat_hash_map<std::string, std::string>* out) {
  RowIdentity identity = IdentityOf(change);
  if (change.relation_redescribed() && !identity.table_key.empty()) {
    (*out)[RedescribedMarkerKey(identity.table_key)] = EncodePositionKey(position);
  }
  if (identity.kind == RowIdentity::Kind::kTruncate) {
    (*out)[std::move(identity.table_key)] = EncodePositionKey(position);
  } else if (identity.kind == RowIdentity::Kind::kUnmerged && !identity.table_key.empty()) {
    (*out)[UnmergedMarkerKey(identity.table_key)] = EncodePositionKey(position);
  }
  for (RowEffect& effect : identity.effects) {
    (*out)[std::move(effect.row_key)] =
        EncodeRowEntry(position, effect.deleted, ToastFiller::NeedsFill(change));
  }
}

absl::Status ChangeLog::Impl::IndexInto(rocksdb::WriteBatch& batch, const v1::Change& change,
                                        const Position& position) {
  thread_local std::string row_key;
  bool deleted = false;
  if (!change.relation_redescribed() && SingleRowKey(change, &row_key, &deleted)) {
    char entry[kPositionKeySize + 1];
    EncodePositionKeyTo(position, entry);
    entry[kPositionKeySize] = RowTag(deleted, ToastFiller::NeedsFill(change));
    return FromRocks(batch.Put(keys, row_key, rocksdb::Slice(entry, sizeof(entry))),
                     "cannot build the index batch");
  }
  const RowIdentity identity = IdentityOf(change);
  rocksdb::Status put;
  if (change.relation_redescribed() && !identity.table_key.empty()) {
    put = batch.Put(keys, RedescribedMarkerKey(identity.table_key), EncodePositionKey(position));
  }
  if (!put.ok()) return FromRocks(put, "cannot build the index batch");
  if (identity.kind == RowIdentity::Kind::kTruncate) {
    put = batch.Put(keys, identity.table_key, EncodePositionKey(position));
  } else if (identity.kind == RowIdentity::Kind::kUnmerged && !identity.table_key.empty()) {
    put = batch.Put(keys, UnmergedMarkerKey(identity.table_key), EncodePositionKey(position));
  }
  for (const RowEffect& effect : identity.effects) {
    if (put.ok()) {
      put = batch.Put(keys, effect.row_key,
                      EncodeRowEntry(position, effect.deleted, ToastFiller::NeedsFill(change)));
    }
  }
  return FromRocks(put, "cannot build the index batch");
}

absl::Status ChangeLog::Impl::PutIndexEntries(
    rocksdb::WriteBatch& batch, const absl::flat_hash_map<std::string, std::string>& entries,
    const Position& covered) {
  rocksdb::Status put;
  for (const auto& [key, value] : entries) {
    put = batch.Put(keys, key, value);
    if (!put.ok()) break;
  }
  if (put.ok()) put = batch.Put(meta, log_format::kIndexedUpToKey, EncodePositionKey(covered));
  return FromRocks(put, "cannot build the index batch");
}

absl::StatusOr<bool> ChangeLog::Impl::CatchUpIndexStep(size_t max_records) {
  Position current_head;
  {
    absl::MutexLock lock(&mu);
    current_head = head;
  }
  if (indexed_up_to >= current_head) return true;
  const std::string upper = EncodePositionKey(current_head.Successor());
  const rocksdb::Slice upper_bound(upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper_bound;
  read_options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read_options, changes));
  // Newest entry per key among the changes read: a hot row costs one index write per step.
  absl::flat_hash_map<std::string, std::string> entries;
  Position last = indexed_up_to;
  size_t read = 0;
  v1::Change change;
  for (it->Seek(indexed_up_to.IsZero() ? std::string()
                                       : EncodePositionKey(indexed_up_to.Successor()));
       it->Valid() && read < max_records; it->Next(), ++read) {
    absl::StatusOr<Position> position = DecodePositionKey(KeyOf(*it));
    if (!position.ok()) return position.status();
    last = *position;
    if (!change.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      spdlog::error("event=index_skipped_corrupt_change position={}", FormatCursor(*position));
      continue;
    }
    CollectIndexEntries(change, *position, &entries);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "cannot read the change log");
  const bool reached_head = read < max_records || last >= current_head;
  const Position covered = reached_head ? current_head : last;
  rocksdb::WriteBatch batch;
  if (absl::Status s = PutIndexEntries(batch, entries, covered); !s.ok()) return s;
  // Derived data: no sync of its own (the next synced append syncs it), and the position it
  // covers is written with it.
  if (absl::Status s = Write(batch, /*sync=*/false, "cannot update the change log's index");
      !s.ok()) {
    return s;
  }
  indexed_up_to = covered;
  return reached_head;
}

absl::StatusOr<std::optional<IndexEntry>> ChangeLog::Impl::LookupIndex(
    const std::string& key) const {
  std::string value;
  rocksdb::Status got = db->Get(rocksdb::ReadOptions(), keys, key, &value);
  if (got.IsNotFound()) return std::optional<IndexEntry>();
  if (!got.ok()) return FromRocks(got, "cannot read the change log's index");
  absl::StatusOr<IndexEntry> entry = DecodeIndexEntry(value);
  if (!entry.ok()) return entry.status();
  return std::optional<IndexEntry>(*entry);
}

absl::Status ChangeLog::CatchUpIndex(const std::atomic<bool>* cancel) {
  for (;;) {
    if (cancel != nullptr && cancel->load()) return absl::CancelledError("index catch-up stopped");
    absl::MutexLock append_lock(&impl_->append_mu);
    absl::StatusOr<bool> current = impl_->CatchUpIndexStep(kIndexStepRecords);
    if (!current.ok()) return current.status();
    if (*current) return absl::OkStatus();
  }
}

bool ChangeLog::IndexIsCurrent() const {
  absl::MutexLock append_lock(&impl_->append_mu);
  return impl_->indexed_up_to >= Head();
}

}  // namespace walfeed
