#include "server/log/row_identity.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace walfeed {
namespace {

constexpr char kRowTag = 'r';
constexpr char kTableTag = 't';

// Appends `text` length-prefixed, so that no two sequences of parts encode alike.
void AppendPart(absl::string_view text, std::string* out) {
  const uint32_t size = static_cast<uint32_t>(text.size());
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(size >> shift));
  out->append(text.data(), text.size());
}

std::string TableKey(const v1::Change& change) {
  std::string key(1, kTableTag);
  AppendPart(change.schema(), &key);
  AppendPart(change.table(), &key);
  return key;
}

// The key columns' names and values (not their types: a key column whose type widens, say int4
// to int8, still names the same row).
std::string RowKey(const v1::Change& change,
                   const google::protobuf::RepeatedPtrField<v1::Column>& key_columns) {
  std::string key(1, kRowTag);
  AppendPart(change.schema(), &key);
  AppendPart(change.table(), &key);
  v1::Column value_only;
  std::string value;
  for (const v1::Column& column : key_columns) {
    AppendPart(column.name(), &key);
    value_only = column;
    value_only.clear_name();
    value_only.clear_type();
    value_only.clear_type_oid();
    value.clear();
    value_only.SerializeToString(&value);
    AppendPart(value, &key);
  }
  return key;
}

// The old key of an UPDATE, from `before`, when PostgreSQL sent one: the key columns of the old
// row, in the order of `key`. Empty when `before` lacks one of them.
google::protobuf::RepeatedPtrField<v1::Column> OldKeyColumns(const v1::Change& change) {
  google::protobuf::RepeatedPtrField<v1::Column> old_key;
  for (const v1::Column& key_column : change.key()) {
    const v1::Column* found = nullptr;
    for (const v1::Column& column : change.before()) {
      if (column.name() == key_column.name()) {
        found = &column;
        break;
      }
    }
    if (found == nullptr) return {};
    *old_key.Add() = *found;
  }
  return old_key;
}

// The length of the length-prefixed part at the front of `text`, prefix included (0 when
// `text` does not start with a whole part).
size_t PartLength(absl::string_view text) {
  if (text.size() < 4) return 0;
  uint32_t size = 0;
  for (int i = 0; i < 4; ++i) size = (size << 8) | static_cast<unsigned char>(text[i]);
  return text.size() - 4 < size ? 0 : 4 + size;
}

}  // namespace

std::string TableKeyOfRow(absl::string_view row_key) {
  if (!IsRowKey(row_key)) return std::string();
  absl::string_view rest = row_key.substr(1);
  const size_t schema = PartLength(rest);
  if (schema == 0) return std::string();
  const size_t table = PartLength(rest.substr(schema));
  if (table == 0) return std::string();
  std::string key(1, kTableTag);
  key.append(rest.data(), schema + table);
  return key;
}

bool IsRowKey(absl::string_view key) { return !key.empty() && key[0] == kRowTag; }

RowIdentity IdentityOf(const v1::Change& change) {
  RowIdentity identity;
  if (change.op() == v1::Change::MESSAGE || change.table().empty()) return identity;
  identity.table_key = TableKey(change);
  if (change.op() == v1::Change::TRUNCATE) {
    identity.kind = RowIdentity::Kind::kTruncate;
    return identity;
  }
  const bool mergeable =
      change.key_kind() == v1::Change::PRIMARY_KEY || change.key_kind() == v1::Change::UNIQUE_INDEX;
  if (!mergeable || change.key().empty()) return identity;
  identity.kind = RowIdentity::Kind::kRow;
  switch (change.op()) {
    case v1::Change::INSERT:
    case v1::Change::READ:
      identity.effects.push_back({RowKey(change, change.key()), false});
      break;
    case v1::Change::DELETE:
      identity.effects.push_back({RowKey(change, change.key()), true});
      break;
    case v1::Change::UPDATE: {
      std::string new_key = RowKey(change, change.key());
      if (change.before_size() > 0) {
        const google::protobuf::RepeatedPtrField<v1::Column> old_columns = OldKeyColumns(change);
        if (!old_columns.empty()) {
          std::string old_key = RowKey(change, old_columns);
          if (old_key != new_key) identity.effects.push_back({std::move(old_key), true});
        }
      }
      identity.effects.push_back({std::move(new_key), false});
      break;
    }
    default:
      identity.kind = RowIdentity::Kind::kUnmerged;
      break;
  }
  return identity;
}

}  // namespace walfeed
