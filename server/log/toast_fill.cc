#include "server/log/toast_fill.h"

#include "server/log/position_key.h"
#include "server/log/row_identity.h"

namespace walfeed {
namespace {

bool HasImage(const v1::Change& change) {
  return change.op() == v1::Change::INSERT || change.op() == v1::Change::UPDATE ||
         change.op() == v1::Change::READ;
}

}  // namespace

bool ToastFiller::NeedsFill(const v1::Change& change) {
  if (change.op() != v1::Change::UPDATE) return false;
  for (const v1::Column& column : change.after()) {
    if (column.value_case() == v1::Column::kUnchangedToast) return true;
  }
  return false;
}

absl::Status ToastFiller::FillFrom(const v1::Change& image, v1::Change* change) const {
  // Only from the same relation: a table dropped and created again, or swapped in under the
  // same name, is another relation whose rows merely share a key (0: a change from before
  // walfeed recorded relations, which proves nothing).
  if (&image != change &&
      (image.relation_id() == 0 || image.relation_id() != change->relation_id())) {
    return absl::OkStatus();
  }
  for (v1::Column& column : *change->mutable_after()) {
    if (column.value_case() != v1::Column::kUnchangedToast) continue;
    // From the change itself: its old row (REPLICA IDENTITY FULL sends it whole).
    const v1::Column* source =
        &image == change ? FindColumn(image.before(), column) : FindColumn(image.after(), column);
    if (source == nullptr || source->type_oid() != column.type_oid() ||
        source->value_case() == v1::Column::kUnchangedToast ||
        source->value_case() == v1::Column::VALUE_NOT_SET) {
      continue;
    }
    const std::string type = column.type();
    column = *source;  // the same name (and raw name)
    column.set_type(type);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Change>> ToastFiller::StoredImage(
    const std::string& row_key, const std::string& table_key) const {
  absl::StatusOr<std::optional<IndexEntry>> entry = impl_->LookupIndex(row_key);
  if (!entry.ok()) return entry.status();
  if (!entry->has_value() || (*entry)->deleted) return std::optional<v1::Change>();
  // Truncated since, or changed since in a way the index does not follow (the table switched
  // to REPLICA IDENTITY FULL, say): the image may be stale.
  for (const std::string& marker :
       {table_key, UnmergedMarkerKey(table_key), RedescribedMarkerKey(table_key)}) {
    absl::StatusOr<std::optional<IndexEntry>> since = impl_->LookupIndex(marker);
    if (!since.ok()) return since.status();
    if (since->has_value() && (*since)->position > (*entry)->position) {
      return std::optional<v1::Change>();
    }
  }
  std::string stored;
  rocksdb::Status got = impl_->db->Get(rocksdb::ReadOptions(), impl_->changes,
                                       EncodePositionKey((*entry)->position), &stored);
  if (got.IsNotFound()) return std::optional<v1::Change>();  // removed by compaction
  if (!got.ok()) return log_internal::FromRocks(got, "cannot read a row's newest image");
  v1::Change image;
  if (!image.ParseFromString(stored) || !HasImage(image)) return std::optional<v1::Change>();
  return std::optional<v1::Change>(std::move(image));
}

absl::StatusOr<const v1::Change*> ToastFiller::Process(const v1::Change& change) {
  const RowIdentity identity = IdentityOf(change);
  const v1::Change* stored = &change;
  // PostgreSQL described the table afresh: no image from before this change is used (the
  // change's own old row still is).
  if (change.relation_redescribed() && !identity.table_key.empty()) EndImages(identity.table_key);
  if (NeedsFill(change)) {
    v1::Change& filled = filled_.emplace_back(change);
    // REPLICA IDENTITY FULL: the old row came with the update.
    if (absl::Status s = FillFrom(filled, &filled); !s.ok()) return s;
    // The row's previous image is under its old key when the update changed the key.
    const RowEffect* previous = nullptr;
    for (const RowEffect& effect : identity.effects) {
      if (previous == nullptr || effect.deleted) previous = &effect;
    }
    if (previous != nullptr && NeedsFill(filled)) {
      if (auto it = recent_.find(previous->row_key); it != recent_.end()) {
        if (it->second != nullptr) {
          if (absl::Status s = FillFrom(*it->second, &filled); !s.ok()) return s;
        }
      } else if (!ended_tables_.contains(identity.table_key)) {
        absl::StatusOr<std::optional<v1::Change>> image =
            StoredImage(previous->row_key, identity.table_key);
        if (!image.ok()) return image.status();
        if (image->has_value()) {
          if (absl::Status s = FillFrom(**image, &filled); !s.ok()) return s;
        }
      }
    }
    stored = &filled;
  }
  const bool ends_images =
      identity.kind == RowIdentity::Kind::kTruncate ||
      (identity.kind == RowIdentity::Kind::kUnmerged && !identity.table_key.empty());
  if (ends_images) EndImages(identity.table_key);
  for (const RowEffect& effect : identity.effects) {
    recent_[effect.row_key] = effect.deleted ? nullptr : stored;
  }
  return stored;
}

void ToastFiller::EndImages(const std::string& table_key) {
  ended_tables_.insert(table_key);
  for (auto it = recent_.begin(); it != recent_.end();) {
    if (TableKeyOfRow(it->first) == table_key) {
      recent_.erase(it++);
    } else {
      ++it;
    }
  }
}

}  // namespace walfeed
