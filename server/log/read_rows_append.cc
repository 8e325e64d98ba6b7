// ChangeLog::AppendReads: a backfill's rows, judged against the newest change of each row under
// the append lock and appended right after the head (see change_log.h).
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "server/core/invariant.h"
#include "server/core/proto_time.h"
#include "server/log/change_log.h"
#include "server/log/change_log_state.h"
#include "server/log/position_key.h"
#include "server/log/row_identity.h"
#include "server/log/touched_tables.h"

namespace walfeed {

using log_format::kMetadataPrefix;
using log_internal::FromRocks;
using log_internal::ToSlice;

namespace {

// The newest change of the row `row_key` names: the row's own, or its table's newest TRUNCATE
// when that is later; zero when the log holds neither.
absl::StatusOr<Position> NewestChangeOf(const ChangeLog::Impl& impl, const std::string& row_key) {
  absl::StatusOr<std::optional<IndexEntry>> row = impl.LookupIndex(row_key);
  if (!row.ok()) return row.status();
  absl::StatusOr<std::optional<IndexEntry>> table = impl.LookupIndex(TableKeyOfRow(row_key));
  if (!table.ok()) return table.status();
  Position newest;
  if (row->has_value()) newest = (*row)->position;
  if (table->has_value() && (*table)->position > newest) newest = (*table)->position;
  return newest;
}

// Whether the row `row` names has a newest change that `supersedes` judges newer than `row`.
absl::StatusOr<bool> Superseded(const ChangeLog::Impl& impl, const v1::Change& row,
                                const ChangeLog::SupersedeJudge& supersedes) {
  std::string row_key;
  bool deleted = false;
  if (!SingleRowKey(row, &row_key, &deleted)) {
    return absl::InvalidArgumentError(absl::StrCat("a backfilled row of ", row.schema(), ".",
                                                   row.table(), " names no row of a keyed table"));
  }
  absl::StatusOr<Position> newest = NewestChangeOf(impl, row_key);
  if (!newest.ok()) return newest.status();
  if (newest->IsZero()) return false;
  std::string stored;
  rocksdb::Status got =
      impl.db->Get(rocksdb::ReadOptions(), impl.changes, EncodePositionKey(*newest), &stored);
  if (got.IsNotFound()) return supersedes(*newest, nullptr);
  if (!got.ok()) return FromRocks(got, "cannot read a row's newest change");
  v1::Change change;
  if (!change.ParseFromString(stored)) {
    return absl::DataLossError(
        absl::StrCat("the change at ", FormatCursor(*newest), " cannot be parsed"));
  }
  return supersedes(*newest, &change);
}

}  // namespace

absl::StatusOr<ChangeLog::ReadsAppended> ChangeLog::AppendReads(
    std::vector<v1::Change> rows, const SupersedeJudge& supersedes,
    const std::function<MetadataUpdates(const ReadsAppended&)>& metadata) {
  // Most of a lagging index is caught up in steps that let appends in between; the rest below.
  if (absl::Status s = CatchUpIndex(); !s.ok()) return s;
  absl::MutexLock append_lock(&impl_->append_mu);
  for (bool current = impl_->indexed_up_to >= Head(); !current;) {
    absl::StatusOr<bool> caught_up = impl_->CatchUpIndexStep(kIndexStepRecords);
    if (!caught_up.ok()) return caught_up.status();
    current = *caught_up;
  }
  // A snapshot or resynchronisation staged at the positions after the head, or a large
  // transaction staged in parts: the rows wait until it is committed or discarded.
  if (impl_->staged_last > Head()) {
    return absl::UnavailableError(absl::StrCat(
        "changes are staged above the log's head up to ", FormatCursor(impl_->staged_last),
        " (a snapshot, a resynchronisation or a large transaction being written): the "
        "backfill's rows wait until they are committed"));
  }
  ReadsAppended result;
  std::vector<v1::Change> fresh;
  fresh.reserve(rows.size());
  for (v1::Change& row : rows) {
    absl::StatusOr<bool> superseded = Superseded(*impl_, row, supersedes);
    if (!superseded.ok()) return superseded.status();
    if (*superseded) {
      ++result.superseded;
    } else {
      fresh.push_back(std::move(row));
    }
  }
  const Position old_head = Head();
  const uint64_t resume_lsn = ResumeLsn();
  rocksdb::WriteBatch batch;
  TouchedTables touched;
  const absl::Time now = absl::Now();
  if (!fresh.empty()) {
    absl::StatusOr<Position> first = FirstSyntheticPosition(old_head, resume_lsn);
    if (!first.ok()) return first.status();
    if (first->seq + uint64_t{fresh.size()} > std::numeric_limits<uint32_t>::max()) {
      return absl::FailedPreconditionError(absl::StrCat("the log's head ", FormatCursor(old_head),
                                                        " leaves no room for ", fresh.size(),
                                                        " backfilled rows"));
    }
    result.first = *first;
    const std::string lsn_text = FormatLsn(first->lsn);
    std::string value;  // reused: one serialization buffer for the whole batch
    v1::Change moved;   // reused: a change with values moved out of line
    for (size_t i = 0; i < fresh.size(); ++i) {
      v1::Change& change = fresh[i];
      const Position position{first->lsn, static_cast<uint32_t>(first->seq + i)};
      change.set_lsn(position.lsn);
      change.set_seq(position.seq);
      change.set_lsn_text(lsn_text);
      change.set_cursor(FormatCursor(position));
      change.set_xid(0);
      ToProtoTimestamp(now, change.mutable_commit_time());
      change.set_last_in_transaction(i + 1 == fresh.size());
      touched.Add(change.schema(), change.table());
      absl::StatusOr<const v1::Change*> stored =
          impl_->SerializeForStore(change, position, batch, &value, &moved);
      if (!stored.ok()) return stored.status();
      if (absl::Status s = impl_->IndexInto(batch, **stored, position); !s.ok()) return s;
      rocksdb::Status put = batch.Put(impl_->changes, EncodePositionKey(position), value);
      if (!put.ok()) return FromRocks(put, "cannot build the backfill batch");
      result.last = position;
    }
    result.appended = fresh.size();
    if (absl::Status s = impl_->PutIndexEntries(batch, {}, result.last); !s.ok()) return s;
    if (absl::Status s = impl_->PutHead(batch, result.last, resume_lsn); !s.ok()) return s;
  }
  for (const auto& [key, value] : metadata(result)) {
    rocksdb::Status put =
        batch.Put(impl_->meta, absl::StrCat(kMetadataPrefix, key), ToSlice(value));
    if (!put.ok()) return FromRocks(put, "cannot record metadata with backfilled rows");
  }
  if (absl::Status s = impl_->WriteSynced(batch, "cannot append backfilled rows"); !s.ok()) {
    return s;
  }
  if (result.appended > 0) {
    WALFEED_INVARIANT(result.last > old_head, "a backfill append moved the log's head back");
    impl_->indexed_up_to = result.last;
    impl_->Publish(result.last, resume_lsn, result.appended, 1, std::nullopt, &touched);
  }
  return result;
}

}  // namespace walfeed
