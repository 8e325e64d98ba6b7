#include "server/source/transaction_builder.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/core/position.h"
#include "server/core/utf8.h"
#include "server/source/key_kind.h"
#include "server/source/value_converter.h"

namespace walfeed {
namespace {

// Seconds from 1970-01-01 to 2000-01-01.
constexpr int64_t kPgEpochUnixSeconds = 946684800;

}  // namespace

const TableFilter TransactionBuilder::kNoFilter;

std::vector<v1::Change> TransactionBuilder::TakeOpenChanges() {
  std::vector<v1::Change> taken;
  if (!open_ || open_->transaction.changes.size() < 2) return taken;
  std::vector<v1::Change>& changes = open_->transaction.changes;
  v1::Change newest = std::move(changes.back());
  changes.pop_back();
  taken.swap(changes);
  changes.push_back(std::move(newest));
  return taken;
}

bool TransactionBuilder::Included(uint32_t relation_id) const {
  auto it = relation_filters_.find(relation_id);
  return it == relation_filters_.end() || it->second.included;
}

void SetPgTimestamp(int64_t pg_micros, google::protobuf::Timestamp* out) {
  int64_t seconds = pg_micros / 1000000;
  int64_t micros = pg_micros % 1000000;
  if (micros < 0) {
    micros += 1000000;
    seconds -= 1;
  }
  out->set_seconds(seconds + kPgEpochUnixSeconds);
  out->set_nanos(static_cast<int32_t>(micros * 1000));
}

const pgoutput::Relation* TransactionBuilder::FindRelation(uint32_t relation_id) const {
  auto it = relations_.find(relation_id);
  return it == relations_.end() ? nullptr : &it->second;
}

const pgoutput::Relation* TransactionBuilder::FindIncludedRelation(uint32_t relation_id) const {
  return Included(relation_id) ? FindRelation(relation_id) : nullptr;
}

absl::StatusOr<const pgoutput::Relation*> TransactionBuilder::RelationFor(
    absl::string_view what, uint32_t relation_id) const {
  const pgoutput::Relation* relation = FindRelation(relation_id);
  if (relation == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(what, " names relation id ", relation_id,
                                                      " that no Relation message described"));
  }
  return relation;
}

absl::StatusOr<v1::Change*> TransactionBuilder::StartChange(absl::string_view what,
                                                            const pgoutput::Relation* relation) {
  if (!open_) {
    return absl::FailedPreconditionError(absl::StrCat(what, " arrived outside a transaction"));
  }
  Transaction& txn = open_->transaction;
  v1::Change& change = txn.changes.emplace_back();
  const Position position{txn.commit_lsn, open_->next_seq++};
  change.set_lsn(position.lsn);
  change.set_seq(position.seq);
  change.set_cursor(absl::StrCat(open_->lsn_text, ":", position.seq));
  change.set_lsn_text(open_->lsn_text);
  change.set_xid(txn.xid);
  SetPgTimestamp(open_->begin.commit_time, change.mutable_commit_time());
  if (relation != nullptr) {
    SetName(TableOf(*relation).schema, change.mutable_schema(), change.mutable_raw_schema());
    SetName(relation->name, change.mutable_table(), change.mutable_raw_table());
    change.set_relation_id(relation->relation_id);
    if (redescribed_.erase(relation->relation_id) > 0) change.set_relation_redescribed(true);
    const bool has_key_columns =
        std::any_of(relation->columns.begin(), relation->columns.end(),
                    [](const pgoutput::RelationColumn& column) { return column.is_key; });
    change.set_key_kind(KeyKindOf(relation->replica_identity, has_key_columns));
  }
  return &change;
}

void TransactionBuilder::FillColumns(const pgoutput::Relation& relation, pgoutput::TupleData& tuple,
                                     Columns which, Values take,
                                     google::protobuf::RepeatedPtrField<v1::Column>* out) const {
  const size_t count = std::min(tuple.size(), relation.columns.size());
  const std::vector<bool>* excluded = nullptr;
  if (auto it = relation_filters_.find(relation.relation_id);
      it != relation_filters_.end() && !it->second.excluded_columns.empty()) {
    excluded = &it->second.excluded_columns;
  }
  out->Reserve(static_cast<int>(count));
  for (size_t i = 0; i < count; ++i) {
    const pgoutput::RelationColumn& meta = relation.columns[i];
    if (which == Columns::kKey && !meta.is_key) continue;
    if (excluded != nullptr && (*excluded)[i]) continue;
    v1::Column* column = out->Add();
    SetName(meta.name, column->mutable_name(), column->mutable_raw_name());
    column->set_type(types_.NameOf(meta.type_oid));
    column->set_type_oid(meta.type_oid);
    if (take == Values::kMove) {
      SetColumnValue(types_.BaseOf(meta.type_oid), std::move(tuple[i]), column);
    } else {
      SetColumnValue(types_.BaseOf(meta.type_oid), tuple[i], column);
    }
  }
}

absl::StatusOr<std::optional<Transaction>> TransactionBuilder::Consume(pgoutput::Message message,
                                                                       int64_t server_time) {
  if (auto* begin = std::get_if<pgoutput::Begin>(&message)) {
    if (open_) {
      return absl::FailedPreconditionError(absl::StrCat("Begin of xid ", begin->xid,
                                                        " arrived inside the transaction of xid ",
                                                        open_->begin.xid));
    }
    open_.emplace();
    open_->begin = *begin;
    open_->transaction.commit_lsn = begin->final_lsn;
    open_->lsn_text = FormatLsn(begin->final_lsn);
    open_->transaction.xid = begin->xid;
    return std::nullopt;
  }
  if (auto* commit = std::get_if<pgoutput::Commit>(&message)) return OnCommit(*commit);
  if (auto* r = std::get_if<pgoutput::Relation>(&message)) {
    const std::string schema = TableOf(*r).schema;
    RelationFilter& verdict = relation_filters_[r->relation_id];
    verdict.included = filter_->IncludesTable(schema, r->name);
    verdict.excluded_columns.clear();
    if (filter_->excludes_columns()) {
      // Fail closed: an excluded column that vanished was probably renamed, and its values
      // would now be stored under the new name.
      for (const std::string& column : filter_->ExcludedColumnsOf(schema, r->name)) {
        bool present = false;
        for (const pgoutput::RelationColumn& c : r->columns) present = present || c.name == column;
        if (!present) {
          return absl::FailedPreconditionError(absl::StrCat(
              "--exclude-columns names ", schema, ".", r->name, ".", column,
              " but the table no longer has that column (renamed or dropped?); walfeed stops "
              "rather than risk storing it: update --exclude-columns and restart"));
        }
      }
      bool any = false;
      std::vector<bool> mask(r->columns.size());
      for (size_t i = 0; i < r->columns.size(); ++i) {
        mask[i] = filter_->ExcludesColumn(schema, r->name, r->columns[i].name);
        any = any || mask[i];
      }
      if (any) verdict.excluded_columns = std::move(mask);
    }
    redescribed_.insert(r->relation_id);
    relations_[r->relation_id] = std::move(*r);
    return std::nullopt;
  }
  if (auto* type = std::get_if<pgoutput::Type>(&message)) {
    types_.AddIfUnknown(type->type_oid, type->schema, type->name);
    return std::nullopt;
  }
  if (std::holds_alternative<pgoutput::Origin>(message)) return std::nullopt;
  if (auto* insert = std::get_if<pgoutput::Insert>(&message)) {
    if (!Included(insert->relation_id)) return std::nullopt;
    absl::StatusOr<const pgoutput::Relation*> relation = RelationFor("Insert", insert->relation_id);
    if (!relation.ok()) return relation.status();
    absl::StatusOr<v1::Change*> change = StartChange("Insert", *relation);
    if (!change.ok()) return change.status();
    (*change)->set_op(v1::Change::INSERT);
    FillColumns(**relation, insert->new_tuple, Columns::kKey, Values::kCopy,
                (*change)->mutable_key());
    FillColumns(**relation, insert->new_tuple, Columns::kAll, Values::kMove,
                (*change)->mutable_after());
    return std::nullopt;
  }
  if (auto* update = std::get_if<pgoutput::Update>(&message)) {
    if (!Included(update->relation_id)) return std::nullopt;
    absl::StatusOr<const pgoutput::Relation*> relation = RelationFor("Update", update->relation_id);
    if (!relation.ok()) return relation.status();
    absl::StatusOr<v1::Change*> change = StartChange("Update", *relation);
    if (!change.ok()) return change.status();
    (*change)->set_op(v1::Change::UPDATE);
    FillColumns(**relation, update->new_tuple, Columns::kKey, Values::kCopy,
                (*change)->mutable_key());
    if (update->old_kind != 0) {
      // 'K' carries only the old key (the other columns come as NULL); 'O' the whole old row.
      FillColumns(**relation, update->old_tuple,
                  update->old_kind == 'K' ? Columns::kKey : Columns::kAll, Values::kMove,
                  (*change)->mutable_before());
    }
    FillColumns(**relation, update->new_tuple, Columns::kAll, Values::kMove,
                (*change)->mutable_after());
    return std::nullopt;
  }
  if (auto* del = std::get_if<pgoutput::Delete>(&message)) {
    if (!Included(del->relation_id)) return std::nullopt;
    absl::StatusOr<const pgoutput::Relation*> relation = RelationFor("Delete", del->relation_id);
    if (!relation.ok()) return relation.status();
    absl::StatusOr<v1::Change*> change = StartChange("Delete", *relation);
    if (!change.ok()) return change.status();
    (*change)->set_op(v1::Change::DELETE);
    FillColumns(**relation, del->old_tuple, Columns::kKey, Values::kCopy, (*change)->mutable_key());
    FillColumns(**relation, del->old_tuple, del->old_kind == 'K' ? Columns::kKey : Columns::kAll,
                Values::kMove, (*change)->mutable_before());
    return std::nullopt;
  }
  if (auto* truncate = std::get_if<pgoutput::Truncate>(&message)) {
    for (uint32_t relation_id : truncate->relation_ids) {
      if (!Included(relation_id)) continue;
      absl::StatusOr<const pgoutput::Relation*> relation = RelationFor("Truncate", relation_id);
      if (!relation.ok()) return relation.status();
      absl::StatusOr<v1::Change*> change = StartChange("Truncate", *relation);
      if (!change.ok()) return change.status();
      (*change)->set_op(v1::Change::TRUNCATE);
      (*change)->mutable_truncate()->set_cascade(truncate->cascade);
      (*change)->mutable_truncate()->set_restart_identity(truncate->restart_identity);
    }
    return std::nullopt;
  }
  if (auto* logical = std::get_if<pgoutput::LogicalMessage>(&message)) {
    return OnMessage(std::move(*logical), server_time);
  }
  return absl::InternalError("unhandled pgoutput message");
}

absl::StatusOr<std::optional<Transaction>> TransactionBuilder::OnCommit(
    const pgoutput::Commit& commit) {
  if (!open_) return absl::FailedPreconditionError("Commit arrived outside a transaction");
  if (commit.commit_lsn != open_->begin.final_lsn) {
    return absl::FailedPreconditionError(absl::StrCat("Commit at ", FormatLsn(commit.commit_lsn),
                                                      " does not match its Begin at ",
                                                      FormatLsn(open_->begin.final_lsn)));
  }
  Transaction txn = std::move(open_->transaction);
  open_.reset();
  txn.end_lsn = commit.end_lsn;
  if (!txn.changes.empty()) txn.changes.back().set_last_in_transaction(true);
  return std::optional<Transaction>(std::move(txn));
}

absl::StatusOr<std::optional<Transaction>> TransactionBuilder::OnMessage(
    pgoutput::LogicalMessage message, int64_t server_time) {
  if (message.transactional) {
    absl::StatusOr<v1::Change*> change = StartChange("transactional Message", nullptr);
    if (!change.ok()) return change.status();
    (*change)->set_op(v1::Change::MESSAGE);
    v1::LogicalMessage* out = (*change)->mutable_message();
    SetName(message.prefix, out->mutable_prefix(), out->mutable_raw_prefix());
    out->set_content(std::move(message.content));
    out->set_transactional(true);
    return std::nullopt;
  }
  if (open_) {
    return absl::FailedPreconditionError("non-transactional Message arrived inside a transaction");
  }
  // Its own one-change transaction. pgoutput gives the LSN where the message record ends, which
  // is where the next record (perhaps a commit) begins; so the message takes the position just
  // before it, and confirming the end LSN marks the message done.
  if (message.lsn == 0) return absl::InvalidArgumentError("non-transactional Message has LSN 0/0");
  open_.emplace();
  open_->begin.final_lsn = message.lsn - 1;
  open_->begin.commit_time = server_time;
  open_->transaction.commit_lsn = message.lsn - 1;
  open_->lsn_text = FormatLsn(message.lsn - 1);
  absl::StatusOr<v1::Change*> change = StartChange("Message", nullptr);
  if (!change.ok()) return change.status();
  (*change)->set_op(v1::Change::MESSAGE);
  v1::LogicalMessage* out = (*change)->mutable_message();
  SetName(message.prefix, out->mutable_prefix(), out->mutable_raw_prefix());
  out->set_content(std::move(message.content));
  out->set_transactional(false);
  pgoutput::Commit commit;
  commit.commit_lsn = message.lsn - 1;
  commit.end_lsn = message.lsn;
  commit.commit_time = server_time;
  return OnCommit(commit);
}

}  // namespace walfeed
