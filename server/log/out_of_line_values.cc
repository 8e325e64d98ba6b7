#include "server/log/out_of_line_values.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/large_value.h"

namespace walfeed {
namespace {

// Below this a value is not worth a reference (which takes about as much room).
constexpr size_t kMinMovableBytes = 64;

using Columns = google::protobuf::RepeatedPtrField<v1::Column>;

bool KeyMayMove(const v1::Change& change) {
  return change.key_kind() != v1::Change::PRIMARY_KEY &&
         change.key_kind() != v1::Change::UNIQUE_INDEX;
}

// Whether `column` of `part` holds a key value that the row's identity is read from (a merged
// row's key columns, and their old values in `before`): those never leave the change.
bool HoldsMergedKey(const v1::Change& change, ValuePart part, const v1::Column& column) {
  if (KeyMayMove(change)) return false;
  if (part == ValuePart::kKey) return true;
  if (part != ValuePart::kBefore) return false;
  for (const v1::Column& key : change.key()) {
    if (key.name() == column.name() && key.raw_name() == column.raw_name()) return true;
  }
  return false;
}

// The parts of `change` whose columns may leave it, with the part each is.
std::vector<std::pair<ValuePart, Columns*>> MovableParts(v1::Change* change) {
  std::vector<std::pair<ValuePart, Columns*>> parts = {
      {ValuePart::kBefore, change->mutable_before()}, {ValuePart::kAfter, change->mutable_after()}};
  if (KeyMayMove(*change)) parts.emplace_back(ValuePart::kKey, change->mutable_key());
  return parts;
}

template <typename Visit>
void ForEachLargeValue(const v1::Change& change, const Visit& visit) {
  for (const Columns* part : {&change.key(), &change.before(), &change.after()}) {
    for (const v1::Column& column : *part) {
      if (column.value_case() == v1::Column::kLarge) visit(column.large());
    }
  }
  if (change.message().has_large_content()) visit(change.message().large_content());
}

// Writes `data` to `store` under `ref` in chunks and returns the reference that replaces it.
absl::StatusOr<v1::LargeValue> Store(const OutOfLineLimits& limits, const ValueRef& ref,
                                     absl::string_view data, v1::LargeValue::Kind kind,
                                     ValueChunkStore* store) {
  for (size_t offset = 0; offset < data.size(); offset += limits.chunk_bytes) {
    if (absl::Status s = store->Put(ref, offset, data.substr(offset, limits.chunk_bytes)); !s.ok())
      return s;
  }
  v1::LargeValue large;
  large.set_ref(FormatValueRef(ref));
  large.set_size(data.size());
  large.set_kind(kind);
  return large;
}

absl::Status MoveColumn(const OutOfLineLimits& limits, const ValueRef& ref, v1::Column* column,
                        ValueChunkStore* store) {
  const std::optional<v1::LargeValue::Kind> kind = MovableKindOf(*column);
  const std::string* value = MutableMovableValue(column);
  if (!kind || value == nullptr) return absl::OkStatus();
  absl::StatusOr<v1::LargeValue> large = Store(limits, ref, *value, *kind, store);
  if (!large.ok()) return large.status();
  *column->mutable_large() = *std::move(large);  // frees the value
  return absl::OkStatus();
}

// Copies the chunks of a reference to another position under `own`; false when they are not
// all there.
absl::StatusOr<bool> CopyReference(const v1::LargeValue& large, const ValueRef& own,
                                   ValueChunkStore* store) {
  absl::StatusOr<ValueRef> source = ParseValueRef(large.ref());
  if (!source.ok()) return false;
  // First make sure the chunks are all there, so that a failed copy leaves none behind.
  uint64_t seen = 0;
  bool contiguous = true;
  absl::Status visited = store->Visit(*source, [&](uint64_t offset, absl::string_view data) {
    contiguous = contiguous && offset == seen;
    seen += data.size();
    return absl::OkStatus();
  });
  if (!visited.ok()) return visited;
  if (!contiguous || seen != large.size()) return false;
  visited = store->Visit(*source, [&](uint64_t offset, absl::string_view data) {
    return store->Put(own, offset, data);
  });
  if (!visited.ok()) return visited;
  return true;
}

absl::Status CopyReferences(const Position& position, v1::Change* change, ValueChunkStore* store) {
  for (auto& [part, columns] : MovableParts(change)) {
    for (int i = 0; i < columns->size(); ++i) {
      v1::Column& column = (*columns)[i];
      if (column.value_case() != v1::Column::kLarge) continue;
      const ValueRef own{position, part, static_cast<uint32_t>(i)};
      const std::string own_text = FormatValueRef(own);
      if (column.large().ref() == own_text) continue;
      absl::StatusOr<bool> copied = CopyReference(column.large(), own, store);
      if (!copied.ok()) return copied.status();
      if (*copied) {
        column.mutable_large()->set_ref(own_text);
      } else {
        column.set_unchanged_toast(true);
      }
    }
  }
  return absl::OkStatus();
}

struct Candidate {
  ValueRef ref;
  v1::Column* column;
  size_t size;
};

}  // namespace

bool MayMoveOutOfLine(const v1::Change& change, const OutOfLineLimits& limits) {
  size_t total = 0;
  for (const Columns* part : {&change.key(), &change.before(), &change.after()}) {
    for (const v1::Column& column : *part) {
      if (column.value_case() == v1::Column::kLarge) return true;
      const std::string* value = MovableValue(column);
      const size_t size = value == nullptr ? 0 : value->size();
      if (size > limits.value_bytes && size >= kMinMovableBytes) return true;
      total += size;
    }
  }
  if (change.has_message()) {
    if (change.message().has_large_content()) return true;
    const size_t size = change.message().content().size();
    if (size > limits.value_bytes && size >= kMinMovableBytes) return true;
    total += size;
  }
  return total > limits.change_bytes;
}

absl::Status MoveOutOfLine(const OutOfLineLimits& limits, const Position& position,
                           v1::Change* change, ValueChunkStore* store) {
  if (absl::Status s = CopyReferences(position, change, store); !s.ok()) return s;
  std::vector<Candidate> candidates;
  for (auto& [part, columns] : MovableParts(change)) {
    for (int i = 0; i < columns->size(); ++i) {
      v1::Column* column = &(*columns)[i];
      const std::string* value = MutableMovableValue(column);
      if (value == nullptr || value->size() < kMinMovableBytes) continue;
      if (HoldsMergedKey(*change, part, *column)) continue;
      candidates.push_back(
          {ValueRef{position, part, static_cast<uint32_t>(i)}, column, value->size()});
    }
  }
  // Longest first; the first ones over value_bytes go whatever the change's size.
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.size > b.size; });
  v1::LogicalMessage* message = change->has_message() ? change->mutable_message() : nullptr;
  size_t remaining = change->ByteSizeLong();
  const auto move_content = [&]() -> absl::Status {
    absl::StatusOr<v1::LargeValue> large = Store(limits, ValueRef{position, ValuePart::kMessage, 0},
                                                 message->content(), v1::LargeValue::BYTES, store);
    if (!large.ok()) return large.status();
    remaining -= message->content().size();
    message->clear_content();
    *message->mutable_large_content() = *std::move(large);
    return absl::OkStatus();
  };
  if (message != nullptr && message->content().size() > limits.value_bytes &&
      message->content().size() >= kMinMovableBytes) {
    if (absl::Status s = move_content(); !s.ok()) return s;
  }
  for (Candidate& candidate : candidates) {
    if (candidate.size <= limits.value_bytes && remaining <= limits.change_bytes) break;
    if (absl::Status s = MoveColumn(limits, candidate.ref, candidate.column, store); !s.ok())
      return s;
    remaining -= std::min(remaining, candidate.size);
  }
  if (message != nullptr && remaining > limits.change_bytes &&
      message->content().size() >= kMinMovableBytes) {
    if (absl::Status s = move_content(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool HasOutOfLineValues(const v1::Change& change) { return HasLargeValues(change); }

std::vector<v1::LargeValue> OutOfLineValues(const v1::Change& change) {
  std::vector<v1::LargeValue> values;
  ForEachLargeValue(change, [&values](const v1::LargeValue& large) { values.push_back(large); });
  return values;
}

uint64_t OutOfLineBytes(const v1::Change& change) {
  uint64_t bytes = 0;
  ForEachLargeValue(change, [&bytes](const v1::LargeValue& large) { bytes += large.size(); });
  return bytes;
}

}  // namespace walfeed
