#include "server/core/large_value.h"

#include <utility>

namespace walfeed {

std::optional<v1::LargeValue::Kind> MovableKindOf(const v1::Column& column) {
  switch (column.value_case()) {
    case v1::Column::kText:
      return v1::LargeValue::TEXT;
    case v1::Column::kNumeric:
      return v1::LargeValue::NUMERIC;
    case v1::Column::kBytes:
      return v1::LargeValue::BYTES;
    case v1::Column::kJson:
      return v1::LargeValue::JSON;
    case v1::Column::kRawText:
      return v1::LargeValue::RAW_TEXT;
    default:
      return std::nullopt;
  }
}

const std::string* MovableValue(const v1::Column& column) {
  switch (column.value_case()) {
    case v1::Column::kText:
      return &column.text();
    case v1::Column::kNumeric:
      return &column.numeric();
    case v1::Column::kBytes:
      return &column.bytes();
    case v1::Column::kJson:
      return &column.json();
    case v1::Column::kRawText:
      return &column.raw_text();
    default:
      return nullptr;
  }
}

std::string* MutableMovableValue(v1::Column* column) {
  // The same field, reached through a column the caller may change.
  return const_cast<std::string*>(MovableValue(*column));
}

bool HasLargeValues(const v1::Change& change) {
  for (const auto* part : {&change.key(), &change.before(), &change.after()}) {
    for (const v1::Column& column : *part) {
      if (column.value_case() == v1::Column::kLarge) return true;
    }
  }
  return change.message().has_large_content();
}

void RestoreValue(v1::LargeValue::Kind kind, std::string data, v1::Column* column) {
  switch (kind) {
    case v1::LargeValue::TEXT:
      column->set_text(std::move(data));
      return;
    case v1::LargeValue::NUMERIC:
      column->set_numeric(std::move(data));
      return;
    case v1::LargeValue::JSON:
      column->set_json(std::move(data));
      return;
    case v1::LargeValue::RAW_TEXT:
      column->set_raw_text(std::move(data));
      return;
    case v1::LargeValue::BYTES:
    default:
      column->set_bytes(std::move(data));
      return;
  }
}

absl::Status InlineLargeValues(
    v1::Change* change,
    absl::FunctionRef<absl::StatusOr<std::string>(const v1::LargeValue& large)> read) {
  for (auto* part : {change->mutable_key(), change->mutable_before(), change->mutable_after()}) {
    for (v1::Column& column : *part) {
      if (column.value_case() != v1::Column::kLarge) continue;
      absl::StatusOr<std::string> value = read(column.large());
      if (!value.ok()) return value.status();
      RestoreValue(column.large().kind(), *std::move(value), &column);
    }
  }
  if (change->message().has_large_content()) {
    absl::StatusOr<std::string> value = read(change->message().large_content());
    if (!value.ok()) return value.status();
    change->mutable_message()->set_content(*std::move(value));
    change->mutable_message()->clear_large_content();
  }
  return absl::OkStatus();
}

}  // namespace walfeed
