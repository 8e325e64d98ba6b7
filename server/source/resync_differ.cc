#include "server/source/resync_differ.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/large_value.h"
#include "server/core/log_format.h"
#include "server/core/table_name.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

bool KeyedKind(v1::Change::KeyKind kind) {
  return kind == v1::Change::PRIMARY_KEY || kind == v1::Change::UNIQUE_INDEX;
}

const v1::Column* Named(const google::protobuf::RepeatedPtrField<v1::Column>& columns,
                        const v1::Column& like) {
  for (const v1::Column& column : columns) {
    if (column.name() == like.name() && column.raw_name() == like.raw_name()) return &column;
  }
  return nullptr;
}

// Whether two inline values are the same value (both were converted from PostgreSQL's text form
// by the same rules, so equal text gives equal fields).
bool SameInlineValue(const v1::Column& a, const v1::Column& b) {
  if (a.value_case() != b.value_case() || a.type_oid() != b.type_oid() ||
      a.raw_text_encoding() != b.raw_text_encoding()) {
    return false;
  }
  switch (a.value_case()) {
    case v1::Column::kNull:
      return true;
    case v1::Column::kInt:
      return a.int_() == b.int_();
    case v1::Column::kFloat: {
      // Bit for bit: NaN equals NaN, -0 is not 0.
      const double x = a.float_(), y = b.float_();
      return std::memcmp(&x, &y, sizeof(x)) == 0;
    }
    case v1::Column::kBool:
      return a.bool_() == b.bool_();
    case v1::Column::kTimestamp:
      return a.timestamp().seconds() == b.timestamp().seconds() &&
             a.timestamp().nanos() == b.timestamp().nanos();
    case v1::Column::kDate:
      return a.date() == b.date();
    case v1::Column::kUuid:
      return a.uuid() == b.uuid();
    default: {
      const std::string* x = MovableValue(a);
      const std::string* y = MovableValue(b);
      return x != nullptr && y != nullptr && *x == *y;
    }
  }
}

}  // namespace

absl::Status ResyncDiffer::BeginTable(const v1::Change& table) {
  by_key_ = false;
  counts_.set_tables(counts_.tables() + 1);
  if (KeyedKind(table.key_kind())) {
    absl::StatusOr<bool> followed = rows_->RowsFollowedByKey(table);
    if (!followed.ok()) return followed.status();
    by_key_ = *followed;
  }
  if (by_key_) return absl::OkStatus();
  v1::Change truncate = table;
  truncate.set_op(v1::Change::TRUNCATE);
  truncate.set_resync(true);
  counts_.set_truncated_tables(counts_.truncated_tables() + 1);
  return stager_->Add(std::move(truncate));
}

absl::Status ResyncDiffer::Row(v1::Change row) {
  counts_.set_rows_read(counts_.rows_read() + 1);
  row.set_resync(true);
  if (!by_key_ || row.key().empty()) {
    counts_.set_reads(counts_.reads() + 1);
    return stager_->Add(std::move(row));
  }
  if (absl::Status s = rows_->NoteSeenRow(row); !s.ok()) return s;
  absl::StatusOr<std::optional<v1::Change>> image = rows_->LiveRow(row);
  if (!image.ok()) return image.status();
  if (!image->has_value()) {
    row.set_op(v1::Change::INSERT);
    counts_.set_inserts(counts_.inserts() + 1);
    return stager_->Add(std::move(row));
  }
  absl::StatusOr<bool> same = SameValues(row, **image);
  if (!same.ok()) return same.status();
  if (*same) return absl::OkStatus();
  row.set_op(v1::Change::UPDATE);
  *row.mutable_before() = std::move(*(*image)->mutable_after());
  counts_.set_updates(counts_.updates() + 1);
  return stager_->Add(std::move(row));
}

absl::Status ResyncDiffer::EndTable(const v1::Change& table) {
  if (!by_key_) return absl::OkStatus();
  return rows_->VisitUnseenLiveRows(table, [&](v1::Change newest) -> absl::Status {
    v1::Change deleted = table;
    deleted.set_op(v1::Change::DELETE);
    deleted.set_resync(true);
    *deleted.mutable_key() = std::move(*newest.mutable_key());
    *deleted.mutable_before() = std::move(*newest.mutable_after());
    counts_.set_deletes(counts_.deletes() + 1);
    return stager_->Add(std::move(deleted));
  });
}

absl::StatusOr<bool> ResyncDiffer::SameValues(const v1::Change& row,
                                              const v1::Change& image) const {
  const auto differs = [&](absl::string_view why) {
    spdlog::debug("event=resync_row_differs table=\"{}\" image={} why=\"{}\"",
                  EscapeForLog(FormatTableName(row.schema(), row.table())), image.cursor(),
                  EscapeForLog(why));
    return false;
  };
  // As streaming leaves them: a column added since the image was taken is NULL to a consumer
  // that holds the image, and a column dropped since is nothing PostgreSQL still has.
  for (const v1::Column& column : row.after()) {
    const v1::Column* stored = Named(image.after(), column);
    if (stored == nullptr) {
      if (column.value_case() == v1::Column::kNull) continue;
      return differs(absl::StrCat("no column ", column.name()));
    }
    if (stored->value_case() == v1::Column::kNull && column.value_case() == v1::Column::kNull) {
      continue;  // whatever the column's type
    }
    if (stored->value_case() != v1::Column::kLarge) {
      if (!SameInlineValue(column, *stored)) {
        return differs(absl::StrCat("column ", column.name(), " value case ", stored->value_case(),
                                    " -> ", column.value_case()));
      }
      continue;
    }
    if (stored->type_oid() != column.type_oid()) {
      return differs(absl::StrCat("column ", column.name(), " type"));
    }
    absl::StatusOr<bool> equal = rows_->LargeValueEquals(stored->large(), column);
    if (!equal.ok()) return equal.status();
    if (!*equal) return differs(absl::StrCat("column ", column.name(), " large value"));
  }
  return true;
}

}  // namespace walfeed
