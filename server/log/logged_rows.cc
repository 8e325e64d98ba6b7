// ChangeLog's LoggedRows: the newest image of each row, read through the per-key index, and the
// scratch set of rows a resynchronisation found in the source (see server/core/logged_rows.h).
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/core/large_value.h"
#include "server/log/change_log.h"
#include "server/log/change_log_state.h"
#include "server/log/position_key.h"
#include "server/log/row_identity.h"
#include "server/log/value_chunks.h"

namespace walfeed {

using log_format::kSeenRowPrefix;
using log_internal::FromRocks;
using log_internal::KeyOf;
using log_internal::ToSlice;
using log_internal::ValueOf;

namespace {

// Seen rows are written in batches of about this size.
constexpr size_t kSeenBatchBytes = 1 << 20;

bool HasImage(const v1::Change& change) {
  return change.op() == v1::Change::INSERT || change.op() == v1::Change::UPDATE ||
         change.op() == v1::Change::READ;
}

// The position of the index entry under `key`, zero when there is none.
absl::StatusOr<Position> EntryPosition(const ChangeLog::Impl& impl, const std::string& key) {
  absl::StatusOr<std::optional<IndexEntry>> entry = impl.LookupIndex(key);
  if (!entry.ok()) return entry.status();
  return entry->has_value() ? (*entry)->position : Position{};
}

// The stored change at `position` when it still holds a row image, nullopt otherwise.
absl::StatusOr<std::optional<v1::Change>> ImageAt(const ChangeLog::Impl& impl,
                                                  const Position& position) {
  std::string stored;
  rocksdb::Status got =
      impl.db->Get(rocksdb::ReadOptions(), impl.changes, EncodePositionKey(position), &stored);
  if (got.IsNotFound()) return std::optional<v1::Change>();  // a removed tombstone's row
  if (!got.ok()) return FromRocks(got, "cannot read a row's newest image");
  v1::Change image;
  if (!image.ParseFromString(stored)) {
    return absl::DataLossError(
        absl::StrCat("the change at ", FormatCursor(position), " cannot be parsed"));
  }
  if (!HasImage(image)) return std::optional<v1::Change>();
  return std::optional<v1::Change>(std::move(image));
}

}  // namespace

absl::Status ChangeLog::CatchUpRows() { return CatchUpIndex(); }

absl::StatusOr<bool> ChangeLog::RowsFollowedByKey(const v1::Change& table) const {
  const std::string table_key = TableKeyOf(table);
  absl::StatusOr<Position> truncated = EntryPosition(*impl_, table_key);
  if (!truncated.ok()) return truncated.status();
  absl::StatusOr<Position> unmerged = EntryPosition(*impl_, UnmergedMarkerKey(table_key));
  if (!unmerged.ok()) return unmerged.status();
  return unmerged->IsZero() || *unmerged < *truncated;
}

absl::StatusOr<std::optional<v1::Change>> ChangeLog::LiveRow(const v1::Change& row) const {
  std::string row_key;
  bool deleted = false;
  if (!SingleRowKey(row, &row_key, &deleted)) {
    return absl::InvalidArgumentError("LiveRow needs a change that names one row of a keyed table");
  }
  absl::StatusOr<std::optional<IndexEntry>> entry = impl_->LookupIndex(row_key);
  if (!entry.ok()) return entry.status();
  if (!entry->has_value() || (*entry)->deleted) return std::optional<v1::Change>();
  absl::StatusOr<Position> truncated = EntryPosition(*impl_, TableKeyOfRow(row_key));
  if (!truncated.ok()) return truncated.status();
  if (*truncated > (*entry)->position) return std::optional<v1::Change>();
  return ImageAt(*impl_, (*entry)->position);
}

absl::StatusOr<bool> ChangeLog::LargeValueEquals(const v1::LargeValue& large,
                                                 const v1::Column& column) const {
  const std::optional<v1::LargeValue::Kind> kind = MovableKindOf(column);
  const std::string* value = MovableValue(column);
  if (!kind.has_value() || *kind != large.kind() || value == nullptr ||
      value->size() != large.size()) {
    return false;
  }
  absl::StatusOr<ValueRef> ref = ParseValueRef(large.ref());
  if (!ref.ok()) return ref.status();
  BatchValueStore store(impl_->db.get(), impl_->values, nullptr);
  uint64_t compared = 0;
  bool equal = true;
  absl::Status visited =
      store.Visit(*ref, [&](uint64_t offset, absl::string_view data) -> absl::Status {
        if (!equal) return absl::OkStatus();
        if (offset != compared || offset + data.size() > value->size() ||
            absl::string_view(*value).substr(offset, data.size()) != data) {
          equal = false;
        }
        compared = offset + data.size();
        return absl::OkStatus();
      });
  if (!visited.ok()) return visited;
  return equal && compared == value->size();
}

absl::Status ChangeLog::Impl::FlushSeenRows() {
  if (seen_rows.Count() == 0) return absl::OkStatus();
  absl::Status written = Write(seen_rows, /*sync=*/false, "cannot record the rows seen");
  seen_rows.Clear();
  return written;
}

absl::Status ChangeLog::NoteSeenRow(const v1::Change& row) {
  std::string row_key;
  bool deleted = false;
  if (!SingleRowKey(row, &row_key, &deleted)) {
    return absl::InvalidArgumentError("NoteSeenRow needs a change that names one row");
  }
  absl::MutexLock lock(&impl_->seen_mu);
  rocksdb::Status put =
      impl_->seen_rows.Put(impl_->meta, absl::StrCat(kSeenRowPrefix, row_key), rocksdb::Slice());
  if (!put.ok()) return FromRocks(put, "cannot record a row seen");
  if (impl_->seen_rows.GetDataSize() < kSeenBatchBytes) return absl::OkStatus();
  return impl_->FlushSeenRows();
}

absl::Status ChangeLog::VisitUnseenLiveRows(const v1::Change& table,
                                            const RowVisitor& visit) const {
  {
    absl::MutexLock lock(&impl_->seen_mu);
    if (absl::Status s = impl_->FlushSeenRows(); !s.ok()) return s;
  }
  absl::StatusOr<Position> truncated = EntryPosition(*impl_, TableKeyOf(table));
  if (!truncated.ok()) return truncated.status();
  const std::string prefix = RowKeyPrefix(table);
  const std::string seen_prefix = absl::StrCat(kSeenRowPrefix, prefix);
  rocksdb::ReadOptions scan;
  std::unique_ptr<rocksdb::Iterator> rows(impl_->db->NewIterator(scan, impl_->keys));
  std::unique_ptr<rocksdb::Iterator> seen(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->meta));
  seen->Seek(seen_prefix);
  // Both walk the table's row keys in the same order: a merge, no lookups.
  for (rows->Seek(prefix); rows->Valid() && absl::StartsWith(KeyOf(*rows), prefix); rows->Next()) {
    const absl::string_view row_key = KeyOf(*rows);
    absl::StatusOr<IndexEntry> entry = DecodeIndexEntry(ValueOf(*rows));
    if (!entry.ok()) return entry.status();
    if (entry->deleted || entry->position < *truncated) continue;
    const std::string seen_key = absl::StrCat(kSeenRowPrefix, row_key);
    while (seen->Valid() && absl::StartsWith(KeyOf(*seen), seen_prefix) &&
           KeyOf(*seen) < seen_key) {
      seen->Next();
    }
    if (seen->Valid() && KeyOf(*seen) == seen_key) continue;
    absl::StatusOr<std::optional<v1::Change>> image = ImageAt(*impl_, entry->position);
    if (!image.ok()) return image.status();
    if (!image->has_value()) continue;
    if (absl::Status s = visit(**std::move(image)); !s.ok()) return s;
  }
  if (!rows->status().ok()) return FromRocks(rows->status(), "cannot read the change log's index");
  return FromRocks(seen->status(), "cannot read the rows seen");
}

absl::Status ChangeLog::ForgetSeenRows() {
  absl::MutexLock lock(&impl_->seen_mu);
  impl_->seen_rows.Clear();
  // Past every seen key: the prefix with its last byte raised.
  std::string end = kSeenRowPrefix;
  end.back() = static_cast<char>(end.back() + 1);
  rocksdb::WriteBatch batch;
  rocksdb::Status range = batch.DeleteRange(impl_->meta, kSeenRowPrefix, end);
  if (!range.ok()) return FromRocks(range, "cannot forget the rows seen");
  return impl_->Write(batch, /*sync=*/false, "cannot forget the rows seen");
}

}  // namespace walfeed
