#include "server/log/row_identity.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace walfeed {
namespace {

constexpr char kRowTag = 'r';
constexpr char kTableTag = 't';
constexpr char kUnmergedTag = 'u';
constexpr char kRedescribedTag = 'd';

// Appends `text` length-prefixed, so that no two sequences of parts encode alike.
void AppendPart(absl::string_view text, std::string* out) {
  const uint32_t size = static_cast<uint32_t>(text.size());
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(size >> shift));
  out->append(text.data(), text.size());
}

// A length no part can have: what follows is a relation OID, not a name.
constexpr char kRelationMark[] = "\xff\xff\xff\xff";
constexpr size_t kRelationIdentitySize = 8;

// The table a change belongs to: its relation (pg_class OID), so that a table renamed is still
// the same table and one swapped in under an old name is another; by name only for changes
// stored before walfeed recorded relations (relation_id 0).
void AppendTableIdentity(const v1::Change& change, std::string* out) {
  if (change.relation_id() == 0) {
    AppendPart(change.schema(), out);
    AppendPart(change.table(), out);
    return;
  }
  out->append(kRelationMark, 4);
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>(change.relation_id() >> shift));
  }
}

std::string TableKey(const v1::Change& change) {
  std::string key(1, kTableTag);
  AppendTableIdentity(change, &key);
  return key;
}

// Appends `value` big-endian.
void AppendFixed(uint64_t value, int bytes, std::string* out) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>(value >> shift));
  }
}

// One key column's value, length-prefixed: which field holds it, then its bytes (not its type:
// a key column whose type widens, say int4 to int8, still names the same row). Written in
// place, without a temporary: this runs for every appended change.
void AppendValue(const v1::Column& column, std::string* out) {
  const size_t length_at = out->size();
  out->append(4, '\0');
  out->push_back(static_cast<char>(column.value_case()));
  switch (column.value_case()) {
    case v1::Column::kInt:
      AppendFixed(static_cast<uint64_t>(column.int_()), 8, out);
      break;
    case v1::Column::kFloat: {
      uint64_t bits;
      const double number = column.float_();
      static_assert(sizeof(bits) == sizeof(number));
      std::memcpy(&bits, &number, sizeof(bits));
      AppendFixed(bits, 8, out);
      break;
    }
    case v1::Column::kBool:
      out->push_back(column.bool_() ? 1 : 0);
      break;
    case v1::Column::kText:
      out->append(column.text());
      break;
    case v1::Column::kNumeric:
      out->append(column.numeric());
      break;
    case v1::Column::kBytes:
      out->append(column.bytes());
      break;
    case v1::Column::kJson:
      out->append(column.json());
      break;
    case v1::Column::kTimestamp:
      AppendFixed(static_cast<uint64_t>(column.timestamp().seconds()), 8, out);
      AppendFixed(static_cast<uint32_t>(column.timestamp().nanos()), 4, out);
      break;
    case v1::Column::kDate:
      out->append(column.date());
      break;
    case v1::Column::kUuid:
      out->append(column.uuid());
      break;
    default:  // null, unchanged_toast, unset: the tag says it all
      break;
  }
  const uint32_t length = static_cast<uint32_t>(out->size() - length_at - 4);
  for (int i = 0; i < 4; ++i) (*out)[length_at + i] = static_cast<char>(length >> (24 - 8 * i));
}

// The key columns' names and values, appended to `key`.
template <typename Columns, typename Deref>
void AppendRowKey(const v1::Change& change, const Columns& key_columns, Deref deref,
                  std::string* key) {
  key->push_back(kRowTag);
  AppendTableIdentity(change, key);
  for (const auto& item : key_columns) {
    const v1::Column& column = deref(item);
    AppendPart(column.name(), key);
    AppendValue(column, key);
  }
}

const v1::Column& Self(const v1::Column& column) { return column; }
const v1::Column& Pointee(const v1::Column* column) { return *column; }

std::string RowKey(const v1::Change& change) {
  std::string key;
  AppendRowKey(change, change.key(), Self, &key);
  return key;
}

bool Mergeable(const v1::Change& change) {
  return (change.key_kind() == v1::Change::PRIMARY_KEY ||
          change.key_kind() == v1::Change::UNIQUE_INDEX) &&
         !change.key().empty() && !change.table().empty();
}

bool HasLeftOutKeyValue(const v1::Change& change) {
  for (const v1::Column& column : change.key()) {
    if (column.value_case() == v1::Column::kUnchangedToast) return true;
  }
  return false;
}

// The key columns of an UPDATE's new row, a left-out value taken from the old key; empty when
// one is left out and not in `before` either.
std::vector<const v1::Column*> NewKeyColumns(const v1::Change& change) {
  std::vector<const v1::Column*> columns;
  for (const v1::Column& column : change.key()) {
    const v1::Column* value = &column;
    if (column.value_case() == v1::Column::kUnchangedToast) {
      value = FindColumn(change.before(), column);
      if (value == nullptr || value->value_case() == v1::Column::kUnchangedToast) return {};
    }
    columns.push_back(value);
  }
  return columns;
}

// The old key of an UPDATE, from `before`, when PostgreSQL sent one: the key columns of the old
// row, in the order of `key`. Empty when `before` lacks one of them.
std::vector<const v1::Column*> OldKeyColumns(const v1::Change& change) {
  std::vector<const v1::Column*> old_key;
  for (const v1::Column& key_column : change.key()) {
    const v1::Column* found = FindColumn(change.before(), key_column);
    if (found == nullptr || found->value_case() == v1::Column::kUnchangedToast) return {};
    old_key.push_back(found);
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

const v1::Column* FindColumn(const google::protobuf::RepeatedPtrField<v1::Column>& columns,
                             const v1::Column& like) {
  for (const v1::Column& column : columns) {
    if (column.name() == like.name() && column.raw_name() == like.raw_name()) return &column;
  }
  return nullptr;
}

std::string NameKeyedRowPrefix(const v1::Change& change) {
  std::string prefix(1, kRowTag);
  AppendPart(change.schema(), &prefix);
  AppendPart(change.table(), &prefix);
  return prefix;
}

std::string TableKeyOfRow(absl::string_view row_key) {
  if (!IsRowKey(row_key)) return std::string();
  absl::string_view rest = row_key.substr(1);
  std::string key(1, kTableTag);
  if (absl::StartsWith(rest, absl::string_view(kRelationMark, 4))) {
    if (rest.size() < kRelationIdentitySize) return std::string();
    key.append(rest.data(), kRelationIdentitySize);
    return key;
  }
  const size_t schema = PartLength(rest);
  if (schema == 0) return std::string();
  const size_t table = PartLength(rest.substr(schema));
  if (table == 0) return std::string();
  key.append(rest.data(), schema + table);
  return key;
}

std::string TableKeyOf(const v1::Change& change) { return TableKey(change); }

std::string RowKeyPrefix(const v1::Change& change) {
  std::string prefix(1, kRowTag);
  AppendTableIdentity(change, &prefix);
  return prefix;
}

std::string RedescribedMarkerKey(absl::string_view table_key) {
  if (table_key.empty()) return std::string();
  std::string key(table_key);
  key[0] = kRedescribedTag;
  return key;
}

bool IsRowKey(absl::string_view key) { return !key.empty() && key[0] == kRowTag; }

std::string UnmergedMarkerKey(absl::string_view table_key) {
  if (table_key.empty()) return std::string();
  std::string key(table_key);
  key[0] = kUnmergedTag;
  return key;
}

bool SingleRowKey(const v1::Change& change, std::string* out, bool* deleted) {
  if (!Mergeable(change) || HasLeftOutKeyValue(change)) return false;
  switch (change.op()) {
    case v1::Change::INSERT:
    case v1::Change::READ:
      *deleted = false;
      break;
    case v1::Change::DELETE:
      *deleted = true;
      break;
    case v1::Change::UPDATE:
      if (change.before_size() > 0) return false;  // the key may have changed
      *deleted = false;
      break;
    default:
      return false;
  }
  out->clear();
  AppendRowKey(change, change.key(), Self, out);
  return true;
}

RowIdentity IdentityOf(const v1::Change& change) {
  RowIdentity identity;
  if (change.op() == v1::Change::MESSAGE || change.table().empty()) return identity;
  identity.table_key = TableKey(change);
  if (change.op() == v1::Change::TRUNCATE) {
    identity.kind = RowIdentity::Kind::kTruncate;
    return identity;
  }
  if (!Mergeable(change)) return identity;
  identity.kind = RowIdentity::Kind::kRow;
  switch (change.op()) {
    case v1::Change::INSERT:
    case v1::Change::READ:
    case v1::Change::DELETE:
      if (HasLeftOutKeyValue(change)) {
        identity.kind = RowIdentity::Kind::kUnmerged;
        return identity;
      }
      identity.effects.push_back({RowKey(change), change.op() == v1::Change::DELETE});
      break;
    case v1::Change::UPDATE: {
      // A key value PostgreSQL left out (a huge TOASTed key that did not change) comes from the
      // old key it sent along; without one the row cannot be named.
      std::vector<const v1::Column*> new_columns = NewKeyColumns(change);
      if (new_columns.empty()) {
        identity.kind = RowIdentity::Kind::kUnmerged;
        return identity;
      }
      std::string new_key;
      AppendRowKey(change, new_columns, Pointee, &new_key);
      if (change.before_size() > 0) {
        const std::vector<const v1::Column*> old_columns = OldKeyColumns(change);
        if (!old_columns.empty()) {
          std::string old_key;
          AppendRowKey(change, old_columns, Pointee, &old_key);
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
