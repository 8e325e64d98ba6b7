#include "server/source/pgoutput_decoder.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/source/byte_reader.h"

namespace walfeed {
namespace {

using pgoutput::TupleColumn;
using pgoutput::TupleData;

// A column count beyond PostgreSQL's limit (1,600) means the bytes are not pgoutput.
constexpr uint16_t kMaxColumns = 1600;

bool ReadTupleData(ByteReader& in, TupleData* tuple) {
  uint16_t count;
  if (!in.ReadU16("TupleData column count", &count)) return false;
  if (count > kMaxColumns) {
    return in.Fail(absl::StrCat("TupleData has ", count, " columns, more than PostgreSQL allows"));
  }
  tuple->resize(count);
  for (TupleColumn& column : *tuple) {
    uint8_t kind;
    if (!in.ReadU8("TupleData column kind", &kind)) return false;
    switch (kind) {
      case 'n':
        column.kind = TupleColumn::Kind::kNull;
        break;
      case 'u':
        column.kind = TupleColumn::Kind::kUnchangedToast;
        break;
      case 't':
      case 'b': {
        column.kind = kind == 't' ? TupleColumn::Kind::kText : TupleColumn::Kind::kBinary;
        uint32_t length;
        if (!in.ReadU32("TupleData value length", &length)) return false;
        if (!in.ReadBytes(length, "TupleData value", &column.data)) return false;
        break;
      }
      default:
        return in.Fail(
            absl::StrFormat("TupleData column kind 0x%02x is not one of n, u, t, b", kind));
    }
  }
  return true;
}

bool ReadOldTuple(ByteReader& in, char* old_kind, TupleData* tuple) {
  uint8_t marker;
  if (!in.ReadU8("old tuple marker", &marker)) return false;
  if (marker != 'K' && marker != 'O') {
    return in.Fail(absl::StrFormat("expected old tuple marker K or O, got 0x%02x", marker));
  }
  *old_kind = static_cast<char>(marker);
  return ReadTupleData(in, tuple);
}

bool ExpectNewTuple(ByteReader& in, TupleData* tuple) {
  uint8_t marker;
  if (!in.ReadU8("new tuple marker", &marker)) return false;
  if (marker != 'N')
    return in.Fail(absl::StrFormat("expected new tuple marker N, got 0x%02x", marker));
  return ReadTupleData(in, tuple);
}

bool DecodeRelation(ByteReader& in, pgoutput::Relation* r) {
  uint8_t identity;
  uint16_t count;
  if (!in.ReadU32("relation id", &r->relation_id) || !in.ReadCString("namespace", &r->schema) ||
      !in.ReadCString("relation name", &r->name) || !in.ReadU8("replica identity", &identity) ||
      !in.ReadU16("column count", &count)) {
    return false;
  }
  if (identity != 'd' && identity != 'n' && identity != 'f' && identity != 'i') {
    return in.Fail(absl::StrFormat("replica identity 0x%02x is not one of d, n, f, i", identity));
  }
  if (count > kMaxColumns) {
    return in.Fail(absl::StrCat("Relation has ", count, " columns, more than PostgreSQL allows"));
  }
  r->replica_identity = static_cast<char>(identity);
  r->columns.resize(count);
  for (pgoutput::RelationColumn& column : r->columns) {
    uint8_t flags;
    uint32_t modifier;
    if (!in.ReadU8("column flags", &flags) || !in.ReadCString("column name", &column.name) ||
        !in.ReadU32("column type", &column.type_oid) || !in.ReadU32("column typmod", &modifier)) {
      return false;
    }
    column.is_key = (flags & 1) != 0;
    column.type_modifier = static_cast<int32_t>(modifier);
  }
  return true;
}

bool DecodeTruncate(ByteReader& in, pgoutput::Truncate* t) {
  uint32_t count;
  uint8_t options;
  if (!in.ReadU32("relation count", &count) || !in.ReadU8("truncate options", &options))
    return false;
  if (count > in.remaining() / 4) {
    return in.Fail(
        absl::StrCat("Truncate names ", count, " relations but has room for ", in.remaining() / 4));
  }
  t->cascade = (options & 1) != 0;
  t->restart_identity = (options & 2) != 0;
  t->relation_ids.resize(count);
  for (uint32_t& id : t->relation_ids) {
    if (!in.ReadU32("truncated relation id", &id)) return false;
  }
  return true;
}

bool DecodeLogicalMessage(ByteReader& in, pgoutput::LogicalMessage* m) {
  uint8_t flags;
  uint32_t length;
  if (!in.ReadU8("message flags", &flags) || !in.ReadU64("message LSN", &m->lsn) ||
      !in.ReadCString("message prefix", &m->prefix) || !in.ReadU32("message length", &length) ||
      !in.ReadBytes(length, "message content", &m->content)) {
    return false;
  }
  m->transactional = (flags & 1) != 0;
  return true;
}

// Decodes the body after the tag into `message`; false with in.status() set on error.
bool DecodeBody(char tag, ByteReader& in, pgoutput::Message* message) {
  switch (tag) {
    case 'B': {
      pgoutput::Begin b;
      if (!in.ReadU64("final LSN", &b.final_lsn) || !in.ReadI64("commit time", &b.commit_time) ||
          !in.ReadU32("xid", &b.xid)) {
        return false;
      }
      *message = b;
      return true;
    }
    case 'C': {
      pgoutput::Commit c;
      if (!in.ReadU8("flags", &c.flags) || !in.ReadU64("commit LSN", &c.commit_lsn) ||
          !in.ReadU64("end LSN", &c.end_lsn) || !in.ReadI64("commit time", &c.commit_time)) {
        return false;
      }
      *message = c;
      return true;
    }
    case 'O': {
      pgoutput::Origin o;
      if (!in.ReadU64("origin commit LSN", &o.commit_lsn) ||
          !in.ReadCString("origin name", &o.name)) {
        return false;
      }
      *message = std::move(o);
      return true;
    }
    case 'R': {
      pgoutput::Relation r;
      if (!DecodeRelation(in, &r)) return false;
      *message = std::move(r);
      return true;
    }
    case 'Y': {
      pgoutput::Type t;
      if (!in.ReadU32("type OID", &t.type_oid) || !in.ReadCString("type namespace", &t.schema) ||
          !in.ReadCString("type name", &t.name)) {
        return false;
      }
      *message = std::move(t);
      return true;
    }
    case 'I': {
      pgoutput::Insert i;
      if (!in.ReadU32("relation id", &i.relation_id) || !ExpectNewTuple(in, &i.new_tuple))
        return false;
      *message = std::move(i);
      return true;
    }
    case 'U': {
      pgoutput::Update u;
      if (!in.ReadU32("relation id", &u.relation_id)) return false;
      uint8_t marker;
      if (!in.ReadU8("tuple marker", &marker)) return false;
      if (marker == 'K' || marker == 'O') {
        u.old_kind = static_cast<char>(marker);
        if (!ReadTupleData(in, &u.old_tuple) || !ExpectNewTuple(in, &u.new_tuple)) return false;
      } else if (marker == 'N') {
        if (!ReadTupleData(in, &u.new_tuple)) return false;
      } else {
        return in.Fail(absl::StrFormat("expected tuple marker K, O or N, got 0x%02x", marker));
      }
      *message = std::move(u);
      return true;
    }
    case 'D': {
      pgoutput::Delete d;
      if (!in.ReadU32("relation id", &d.relation_id) ||
          !ReadOldTuple(in, &d.old_kind, &d.old_tuple)) {
        return false;
      }
      *message = std::move(d);
      return true;
    }
    case 'T': {
      pgoutput::Truncate t;
      if (!DecodeTruncate(in, &t)) return false;
      *message = std::move(t);
      return true;
    }
    case 'M': {
      pgoutput::LogicalMessage m;
      if (!DecodeLogicalMessage(in, &m)) return false;
      *message = std::move(m);
      return true;
    }
    default:
      return in.Fail(absl::StrFormat("unknown message type 0x%02x", static_cast<uint8_t>(tag)));
  }
}

}  // namespace

absl::StatusOr<pgoutput::Message> DecodePgOutputMessage(absl::string_view bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("pgoutput message is empty");
  const char tag = bytes[0];
  ByteReader in(bytes.substr(1));
  pgoutput::Message message;
  if (!DecodeBody(tag, in, &message)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed pgoutput message '", absl::string_view(&tag, 1), "': ", in.status().message()));
  }
  if (in.remaining() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed pgoutput message '", absl::string_view(&tag, 1),
                     "': ", in.remaining(), " unexpected bytes after the message"));
  }
  return message;
}

}  // namespace walfeed
