#include "tests/log/log_format_fixture.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/text_format.h"
#include "server/core/metadata_keys.h"
#include "server/core/position.h"
#include "server/core/transaction.h"
#include "server/core/value_ref.h"
#include "server/log/compaction_policy.h"

namespace walfeed::test {
namespace {

const absl::Time kEpoch = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

// Text of at least `bytes` bytes mixing one-, two- and three-byte UTF-8 characters.
std::string UnicodeText(size_t bytes) {
  static const char* const kWords[] = {"a", "ü", "€", " ", "ß", "z", "\n"};
  std::string text;
  for (size_t i = 0; text.size() < bytes; ++i) text += kWords[(i * 7 + i / 3) % 7];
  return text;
}

// `bytes` bytes of every value, so they survive only when stored byte for byte.
std::string Filler(size_t bytes, int seed) {
  std::string text;
  text.reserve(bytes);
  uint32_t state = static_cast<uint32_t>(seed) * 2654435761u + 1;
  for (size_t i = 0; i < bytes; ++i) {
    state = state * 1103515245u + 12345u;
    text.push_back(static_cast<char>(state >> 24));
  }
  return text;
}

v1::Column IntColumn(const std::string& name, int64_t value) {
  v1::Column column;
  column.set_name(name);
  column.set_type("int8");
  column.set_type_oid(20);
  column.set_int_(value);
  return column;
}

v1::Column TextColumn(const std::string& name, const std::string& value) {
  v1::Column column;
  column.set_name(name);
  column.set_type("text");
  column.set_type_oid(25);
  column.set_text(value);
  return column;
}

v1::Column BytesColumn(const std::string& name, const std::string& value) {
  v1::Column column;
  column.set_name(name);
  column.set_type("bytea");
  column.set_type_oid(17);
  column.set_bytes(value);
  return column;
}

// Builds one transaction's changes with the fields the source sets.
class TransactionMaker {
 public:
  TransactionMaker(uint64_t commit_lsn, int minute) {
    txn_.commit_lsn = commit_lsn;
    txn_.end_lsn = commit_lsn + 0x30;
    txn_.xid = static_cast<uint32_t>(700 + minute);
    commit_time_ = kEpoch + absl::Minutes(minute);
  }

  v1::Change& Add(v1::Change::Op op, const std::string& schema, const std::string& table,
                  uint32_t relation_id) {
    v1::Change& change = txn_.changes.emplace_back();
    const Position position{txn_.commit_lsn, static_cast<uint32_t>(txn_.changes.size() - 1)};
    change.set_lsn(position.lsn);
    change.set_seq(position.seq);
    change.set_cursor(FormatCursor(position));
    change.set_op(op);
    change.set_schema(schema);
    change.set_table(table);
    change.set_relation_id(relation_id);
    change.set_xid(txn_.xid);
    const int64_t seconds = absl::ToUnixSeconds(commit_time_);
    change.mutable_commit_time()->set_seconds(seconds);
    return change;
  }

  // A keyed row change: `id` is the primary key.
  v1::Change& AddRow(v1::Change::Op op, const std::string& schema, const std::string& table,
                     uint32_t relation_id, int64_t id) {
    v1::Change& change = Add(op, schema, table, relation_id);
    change.set_key_kind(v1::Change::PRIMARY_KEY);
    *change.add_key() = IntColumn("id", id);
    if (op != v1::Change::DELETE) *change.add_after() = IntColumn("id", id);
    return change;
  }

  Transaction Done() {
    for (size_t i = 0; i < txn_.changes.size(); ++i) {
      txn_.changes[i].set_last_in_transaction(i + 1 == txn_.changes.size());
    }
    return std::move(txn_);
  }

 private:
  Transaction txn_;
  absl::Time commit_time_;
};

constexpr uint32_t kItems = 16401;
constexpr uint32_t kOrders = 16410;
constexpr uint32_t kOddName = 16420;
const char kOddSchema[] = "sch.ema \"x\"";
const char kOddTable[] = "Bestellungen ü\nline.two";

uint64_t Fnv1a(absl::string_view bytes) {
  uint64_t hash = 14695981039346656037u;
  for (unsigned char c : bytes) hash = (hash ^ c) * 1099511628211u;
  return hash;
}

// "ref size=<n> fnv=<hash>" for every large value `columns` refer to.
absl::Status DescribeLargeValues(const ChangeLog& log,
                                 const google::protobuf::RepeatedPtrField<v1::Column>& columns,
                                 std::string* out) {
  for (const v1::Column& column : columns) {
    if (!column.has_large()) continue;
    absl::StatusOr<ValueRef> ref = ParseValueRef(column.large().ref());
    if (!ref.ok()) return ref.status();
    std::string value;
    for (;;) {
      absl::StatusOr<std::string> chunk = log.ReadLargeValue(*ref, value.size(), 1 << 20);
      if (!chunk.ok()) return chunk.status();
      if (chunk->empty()) break;
      value += *chunk;
    }
    absl::StrAppend(out, "  large ", column.large().ref(), " size=", value.size(),
                    " fnv=", Fnv1a(value), "\n");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFormatFixture(ChangeLog& log) {
  // The initial snapshot: staged, then committed with the snapshot's metadata.
  std::vector<v1::Change> snapshot;
  {
    TransactionMaker maker(0x1000000, 0);
    for (int id = 1; id <= 5; ++id) {
      v1::Change& row = maker.AddRow(v1::Change::READ, "public", "items", kItems, id);
      *row.add_after() = TextColumn("name", absl::StrCat("item ", id));
    }
    snapshot = maker.Done().changes;
  }
  if (absl::Status s = log.StageChanges(snapshot); !s.ok()) return s;
  if (absl::Status s =
          log.CommitStaged(Position{0x1000000, 4}, 0x1000001,
                           {{kSnapshotStateKey, "done"}, {kSnapshotSlotKey, "0/1000001"}});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = log.SetMetadata({{kSourceIdentityKey, "system 7, database shop, slot w"},
                                        {kCapturedTablesKey, "tables-v2:6:public5:items"}});
      !s.ok()) {
    return s;
  }

  std::vector<Transaction> transactions;
  {
    TransactionMaker maker(0x2000000, 1);
    for (int id = 1; id <= 3; ++id) {
      v1::Change& row = maker.AddRow(v1::Change::INSERT, "public", "orders", kOrders, id);
      *row.add_after() = TextColumn("status", "new");
      if (id == 1) *row.add_after() = TextColumn("note", UnicodeText(3500));  // out of line
    }
    v1::Change& odd = maker.AddRow(v1::Change::INSERT, kOddSchema, kOddTable, kOddName, 1);
    *odd.add_after() = TextColumn("große Spalte", UnicodeText(2500));  // out of line
    transactions.push_back(maker.Done());
  }
  {
    TransactionMaker maker(0x3000000, 2);
    v1::Change& update = maker.AddRow(v1::Change::UPDATE, "public", "orders", kOrders, 2);
    *update.add_after() = TextColumn("status", "shipped");
    *update.add_before() = IntColumn("id", 2);
    *update.add_before() = TextColumn("status", "new");
    maker.AddRow(v1::Change::DELETE, "public", "orders", kOrders, 3);
    v1::Change& items = maker.AddRow(v1::Change::UPDATE, "public", "items", kItems, 4);
    *items.add_after() = BytesColumn("picture", Filler(4000, 2));  // out of line, chunked
    transactions.push_back(maker.Done());
  }
  {
    TransactionMaker maker(0x4000000, 3);
    v1::Change& message = maker.Add(v1::Change::MESSAGE, "", "", 0);
    message.mutable_message()->set_prefix("app.audit");
    message.mutable_message()->set_content("{\"who\": \"ünïcode\"}");
    message.mutable_message()->set_transactional(true);
    maker.Add(v1::Change::TRUNCATE, kOddSchema, kOddTable, kOddName);
    v1::Change& again = maker.AddRow(v1::Change::INSERT, kOddSchema, kOddTable, kOddName, 2);
    *again.add_after() = TextColumn("große Spalte", "small");
    transactions.push_back(maker.Done());
  }
  if (absl::Status s = log.Append(transactions, 0x4000031); !s.ok()) return s;
  transactions.clear();

  // Compaction: superseded images and the tombstone go, the purge point and the pass stay.
  CompactionPolicy policy;
  policy.lag = absl::ZeroDuration();
  policy.delete_retention = absl::ZeroDuration();
  absl::StatusOr<v1::CompactionResult> compacted = log.Compact(policy, kEpoch + absl::Hours(1));
  if (!compacted.ok()) return compacted.status();

  {
    TransactionMaker maker(0x5000000, 90);
    v1::Change& row = maker.AddRow(v1::Change::INSERT, "public", "orders", kOrders, 4);
    *row.add_after() = TextColumn("status", "after compaction");
    transactions.push_back(maker.Done());
  }
  return log.Append(transactions, 0x5000031);
}

absl::StatusOr<std::string> DescribeLog(const ChangeLog& log) {
  std::string out;
  absl::StrAppend(&out, "log_id ", log.LogId(), "\nhead ", FormatCursor(log.Head()), "\noldest ",
                  FormatCursor(log.Oldest()), "\nresume_lsn ", FormatLsn(log.ResumeLsn()),
                  "\npurge_point ", FormatCursor(log.PurgePoint()), "\n");
  for (const char* key : {kSourceIdentityKey, kSnapshotStateKey, kSnapshotSlotKey,
                          kCapturedTablesKey, kResyncStateKey, kLastResyncKey}) {
    absl::StrAppend(&out, "metadata ", key, " = ", log.Metadata(key), "\n");
  }
  if (std::optional<v1::CompactionResult> last = log.LastCompaction(); last.has_value()) {
    absl::StrAppend(&out, "last_compaction ", last->ShortDebugString(), "\n");
  }
  std::vector<LogRecord> records;
  if (absl::Status s = log.Read(Position{}, 1000, 64 << 20, &records); !s.ok()) return s;
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.SetUseUtf8StringEscaping(true);
  for (const LogRecord& record : records) {
    v1::Change change;
    if (!change.ParseFromString(record.change)) {
      return absl::DataLossError(absl::StrCat("change at ", FormatCursor(record.position)));
    }
    std::string text;
    printer.PrintToString(change, &text);
    absl::StrAppend(&out, "change ", FormatCursor(record.position), " ", text, "\n");
    for (const auto* columns : {&change.key(), &change.before(), &change.after()}) {
      if (absl::Status s = DescribeLargeValues(log, *columns, &out); !s.ok()) return s;
    }
    if (change.key_size() > 0) {
      // The row the change names, as the per-key index finds it now.
      v1::Change row;
      row.set_op(v1::Change::READ);
      row.set_schema(change.schema());
      row.set_table(change.table());
      row.set_relation_id(change.relation_id());
      row.set_key_kind(change.key_kind());
      *row.mutable_key() = change.key();
      absl::StatusOr<std::optional<v1::Change>> live = log.LiveRow(row);
      if (!live.ok()) return live.status();
      absl::StrAppend(&out, "  live ", live->has_value() ? (*live)->cursor() : "none", "\n");
    }
  }
  return out;
}

}  // namespace walfeed::test
