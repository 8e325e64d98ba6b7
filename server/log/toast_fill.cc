#include "server/log/toast_fill.h"

#include "server/log/position_key.h"
#include "server/log/row_identity.h"

namespace walfeed {
namespace {

bool HasImage(const v1::Change& change) {
  return change.op() == v1::Change::INSERT || change.op() == v1::Change::UPDATE ||
         change.op() == v1::Change::READ;
}

const v1::Column* Find(const google::protobuf::RepeatedPtrField<v1::Column>& columns,
                       const std::string& name) {
  for (const v1::Column& column : columns) {
    if (column.name() == name) return &column;
  }
  return nullptr;
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
  for (v1::Column& column : *change->mutable_after()) {
    if (column.value_case() != v1::Column::kUnchangedToast) continue;
    // From the change itself: its old row (REPLICA IDENTITY FULL sends it whole).
    const v1::Column* source =
        &image == change ? Find(image.before(), column.name()) : Find(image.after(), column.name());
    if (source == nullptr || source->type_oid() != column.type_oid() ||
        source->value_case() == v1::Column::kUnchangedToast ||
        source->value_case() == v1::Column::VALUE_NOT_SET) {
      continue;
    }
    const std::string name = column.name();
    const std::string type = column.type();
    column = *source;
    column.set_name(name);
    column.set_type(type);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Change>> ToastFiller::StoredImage(
    const std::string& row_key, const std::string& table_key) const {
  absl::StatusOr<std::optional<IndexEntry>> entry = impl_->LookupIndex(row_key);
  if (!entry.ok()) return entry.status();
  if (!entry->has_value() || (*entry)->deleted) return std::optional<v1::Change>();
  absl::StatusOr<std::optional<IndexEntry>> truncated = impl_->LookupIndex(table_key);
  if (!truncated.ok()) return truncated.status();
  if (truncated->has_value() && (*truncated)->position > (*entry)->position) {
    return std::optional<v1::Change>();
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
  if (NeedsFill(change)) {
    v1::Change& filled = filled_.emplace_back(change);
    // REPLICA IDENTITY FULL: the old row came with the update.
    if (absl::Status s = FillFrom(filled, &filled); !s.ok()) return s;
    for (const RowEffect& effect : identity.effects) {
      if (effect.deleted || !NeedsFill(filled)) continue;
      if (auto it = recent_.find(effect.row_key); it != recent_.end()) {
        if (it->second != nullptr) {
          if (absl::Status s = FillFrom(*it->second, &filled); !s.ok()) return s;
        }
      } else if (!truncated_tables_.contains(identity.table_key)) {
        absl::StatusOr<std::optional<v1::Change>> image =
            StoredImage(effect.row_key, identity.table_key);
        if (!image.ok()) return image.status();
        if (image->has_value()) {
          if (absl::Status s = FillFrom(**image, &filled); !s.ok()) return s;
        }
      }
    }
    stored = &filled;
  }
  if (identity.kind == RowIdentity::Kind::kTruncate) {
    truncated_tables_.insert(identity.table_key);
    for (auto it = recent_.begin(); it != recent_.end();) {
      if (TableKeyOfRow(it->first) == identity.table_key) {
        recent_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  for (const RowEffect& effect : identity.effects) {
    recent_[effect.row_key] = effect.deleted ? nullptr : stored;
  }
  return stored;
}

}  // namespace walfeed
