// Source's resynchronisation: what it does when the log holds changes but the slot is gone or
// invalidated (see source.h, resync_differ.h and the README's "When the slot is lost").
//
// Crash safety: kResyncStateKey is set to "running" before the new slot exists and cleared in the
// same atomic write that commits the differences and the new resume point. A start that finds it
// set redoes the resynchronisation from the start, after dropping the slot the interrupted one
// created (recognised by its consistent point); whatever that one staged is discarded, so the log
// stays as it was before it.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "server/core/event_counters.h"
#include "server/core/log_format.h"
#include "server/core/position.h"
#include "server/source/captured_tables.h"
#include "server/source/change_stager.h"
#include "server/source/pg_connection.h"
#include "server/source/replication_setup.h"
#include "server/source/resync_differ.h"
#include "server/source/resync_record.h"
#include "server/source/slot_creation_watch.h"
#include "server/source/snapshot_copier.h"
#include "server/source/source.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

constexpr char kResyncMessagePrefix[] = "walfeed.resync";
// A promoted standby lags by what replication had not sent yet, megabytes at most; a server much
// further behind is something else, and walfeed will not write that much WAL into it.
constexpr uint64_t kMaxWalAdvance = uint64_t{1} << 30;

// The MESSAGE change that opens ("begin") or closes ("end") a resynchronisation; its content is
// the Resynchronisation as JSON (so far, for "begin").
absl::StatusOr<v1::Change> ResyncMessage(const std::string& phase,
                                         const v1::Resynchronisation& summary) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (auto converted = google::protobuf::util::MessageToJsonString(summary, &json, options);
      !converted.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot describe the resynchronisation: ", converted.ToString()));
  }
  v1::Change change;
  change.set_op(v1::Change::MESSAGE);
  change.set_resync(true);
  v1::LogicalMessage* message = change.mutable_message();
  message->set_prefix(kResyncMessagePrefix);
  message->set_transactional(true);
  message->set_content(
      absl::StrCat("{\"phase\":\"", phase, "\",\"resynchronisation\":", json, "}"));
  return change;
}

}  // namespace

absl::Status Source::PrepareResync(PgConnection& conn, SlotState slot, bool interrupted) {
  std::string reason;
  if (interrupted) {
    reason = sink_->Metadata(kResyncReasonKey);
  } else if (slot == SlotState::kMissing) {
    reason = absl::StrCat("replication slot '", options_.slot,
                          "' does not exist (a failover to a standby, which does not copy "
                          "logical slots, or a DROP)");
  } else {
    reason = absl::StrCat("replication slot '", options_.slot,
                          "' was invalidated: PostgreSQL removed WAL it still needed "
                          "(max_slot_wal_keep_size)");
  }
  if (options_.on_slot_lost == OnSlotLost::kFail) {
    return absl::FailedPreconditionError(absl::StrCat(
        reason, ", and this data directory holds changes up to LSN ", FormatLsn(sink_->ResumeLsn()),
        ": a new slot would start at the server's current WAL position, and every change in "
        "between would be lost without a trace. Start with --on-slot-lost=resync to compare "
        "the captured tables with the log and append only the differences (every consumer "
        "keeps its cursor), or start over with a new --data-dir (every consumer re-reads)"));
  }
  if (slot != SlotState::kMissing) {
    if (interrupted && slot == SlotState::kReady) {
      // Only the slot the interrupted resynchronisation created may go, never another's.
      absl::StatusOr<uint64_t> confirmed = SlotConfirmedFlushLsn(conn, options_.slot);
      if (!confirmed.ok()) return confirmed.status();
      const std::string recorded = sink_->Metadata(kResyncSlotKey);
      if (!recorded.empty() && recorded != FormatLsn(*confirmed)) {
        return absl::FailedPreconditionError(
            absl::StrCat("a resynchronisation was interrupted, and replication slot '",
                         options_.slot, "' now exists at ", FormatLsn(*confirmed),
                         ", not where the slot it created was (", recorded,
                         "): another consumer may use that name. Drop the slot (SELECT "
                         "pg_drop_replication_slot('",
                         options_.slot, "')) or pass another --slot"));
      }
    }
    spdlog::warn("event=resync_slot_dropped slot={} reason=\"{}\"", EscapeForLog(options_.slot),
                 interrupted ? "left by an interrupted resynchronisation" : "invalidated");
    if (absl::Status s = DropSlot(conn, options_.slot); !s.ok()) return s;
  }
  resync_reason_ = reason.empty() ? "an interrupted resynchronisation" : reason;
  spdlog::warn("event=resync_pending slot={} reason=\"{}\"", EscapeForLog(options_.slot),
               EscapeForLog(resync_reason_));
  return absl::OkStatus();
}

absl::Status Source::RunResync(PgConnection& replication) {
  const absl::Time started = absl::Now();
  SetState("resyncing");
  for (const auto& [key, value] : {std::pair<const char*, std::string>{kResyncStateKey, "running"},
                                   {kResyncReasonKey, resync_reason_},
                                   {kResyncSlotKey, ""}}) {
    if (absl::Status s = sink_->SetMetadata(key, value); !s.ok()) return s;
  }
  if (absl::Status s = sink_->DiscardStaged(); !s.ok()) return s;
  if (absl::Status s = rows_->CatchUpRows(); !s.ok()) return s;
  if (absl::Status s = rows_->ForgetSeenRows(); !s.ok()) return s;

  // The new slot must start past everything in the log: a promoted standby continues the WAL
  // from where it had replayed, which may be behind what walfeed read from the old primary.
  const Position head = sink_->Head();
  const uint64_t past = std::max(head.lsn + 2, sink_->ResumeLsn());
  absl::StatusOr<uint64_t> advanced = AdvanceWalTo(replication, past, kMaxWalAdvance);
  if (!advanced.ok()) return advanced.status();
  if (*advanced > 0) {
    spdlog::warn(
        "event=resync_wal_advanced bytes={} to={} reason=\"the server's WAL was behind "
        "the log's head (a promoted standby)\"",
        *advanced, FormatLsn(past));
  }
  absl::StatusOr<ExportedSnapshot> exported;
  {
    SlotCreationWatch watch(options_.conninfo, options_.slot);
    exported = CreateSlotWithSnapshot(replication, options_.slot);
  }
  if (!exported.ok()) return exported.status();
  if (absl::Status s = sink_->SetMetadata(kResyncSlotKey, FormatLsn(exported->consistent_point));
      !s.ok()) {
    return s;
  }
  if (exported->consistent_point < past) {
    return absl::InternalError(absl::StrCat("the new slot's consistent point ",
                                            FormatLsn(exported->consistent_point),
                                            " is not past the log's head ", FormatCursor(head)));
  }
  absl::StatusOr<SnapshotRead> read = OpenSnapshotRead(exported->snapshot_name);
  if (!read.ok()) return read.status();
  const std::vector<std::pair<std::string, std::string>>& captured = read->captured;

  // Synthetic changes: placed by the one rule that keeps them clear of every later commit.
  absl::StatusOr<Position> first = FirstSyntheticPosition(head, exported->consistent_point);
  if (!first.ok()) return first.status();
  v1::Resynchronisation summary;
  summary.set_reason(resync_reason_);
  summary.set_slot_lsn(FormatLsn(exported->consistent_point));
  spdlog::warn("event=resync_started reason=\"{}\" tables={} slot_lsn={} placed_at={}",
               EscapeForLog(resync_reason_), captured.size(), summary.slot_lsn(),
               FormatCursor(*first));
  ChangeStager stager(sink_, *first);
  absl::StatusOr<v1::Change> begin = ResyncMessage("begin", summary);
  if (!begin.ok()) return begin.status();
  if (absl::Status s = stager.Add(*std::move(begin)); !s.ok()) return s;
  ResyncDiffer differ(rows_, &stager);
  SnapshotCopier copier(read->reader.get(), &read->types, &filter_, options_.publication, &stop_,
                        [](const SnapshotProgress&) {});
  if (absl::Status s = copier.CopyTables(captured, &differ); !s.ok()) return s;
  if (absl::Status s = read->reader->Query("COMMIT").status(); !s.ok()) return s;

  const v1::Resynchronisation& counts = differ.counts();
  summary.MergeFrom(counts);
  summary.set_first_cursor(FormatCursor(*first));
  summary.set_last_cursor(
      FormatCursor(Position{first->lsn, first->seq + static_cast<uint32_t>(stager.count())}));
  *summary.mutable_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  summary.set_seconds(absl::ToDoubleSeconds(absl::Now() - started));
  absl::StatusOr<v1::Change> end = ResyncMessage("end", summary);
  if (!end.ok()) return end.status();
  if (absl::Status s = stager.Add(*std::move(end)); !s.ok()) return s;
  if (absl::Status s = stager.Finish(); !s.ok()) return s;
  // Every captured table's rows are in the log now: none is new any more.
  capture_.MarkCaptured(captured);
  capture_.ClearAdded();
  if (absl::Status s = sink_->CommitStaged(stager.last(), exported->consistent_point,
                                           {{kResyncStateKey, ""},
                                            {kResyncSlotKey, ""},
                                            {kLastResyncKey, summary.SerializeAsString()},
                                            {kCapturedTablesKey, capture_.Encode()}});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = rows_->ForgetSeenRows(); !s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    status_.last_resync = summary;
  }
  CountEvent("resync");
  spdlog::warn(
      "event=resync_done reason=\"{}\" inserts={} updates={} deletes={} truncated_tables={} "
      "reads={} rows_read={} tables={} first_cursor={} last_cursor={} seconds={:.2f}",
      EscapeForLog(resync_reason_), summary.inserts(), summary.updates(), summary.deletes(),
      summary.truncated_tables(), summary.reads(), summary.rows_read(), summary.tables(),
      summary.first_cursor(), summary.last_cursor(), summary.seconds());
  return absl::OkStatus();
}

}  // namespace walfeed
