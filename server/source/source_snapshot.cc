// Source's snapshots: the initial one, which reads every captured table's existing rows under the
// snapshot the slot exports when it is created, and the one that reads the tables added to the
// publication later (TableCapture) under a temporary slot's snapshot (source.h).
#include <unistd.h>

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/fault_point.h"
#include "server/core/metadata_keys.h"
#include "server/core/position.h"
#include "server/source/change_stager.h"
#include "server/source/pg_connection.h"
#include "server/source/replication_setup.h"
#include "server/source/slot_creation_watch.h"
#include "server/source/snapshot_copier.h"
#include "server/source/source.h"
#include "spdlog/spdlog.h"

namespace walfeed {

absl::Status Source::RunSnapshot(PgConnection& replication) {
  const absl::Time started = absl::Now();
  // Marked before the slot exists; the slot's consistent point, recorded once it exists, is what
  // lets a later start recognize that slot as ours to drop and redo.
  if (absl::Status s = sink_->SetMetadata(kSnapshotSlotKey, ""); !s.ok()) return s;
  if (absl::Status s = sink_->SetMetadata(kSnapshotStateKey, "running"); !s.ok()) return s;
  if (absl::Status s = sink_->DiscardStaged(); !s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    status_.snapshot_state = "running";
  }
  SetState("snapshotting");
  absl::StatusOr<ExportedSnapshot> exported;
  {
    SlotCreationWatch watch(options_.conninfo, options_.slot);
    exported = CreateSlotWithSnapshot(replication, options_.slot);
  }
  if (!exported.ok()) return exported.status();
  WALFEED_FAULT_POINT("snapshot.slot_created_before_recorded");
  if (absl::Status s = sink_->SetMetadata(kSnapshotSlotKey, FormatLsn(exported->consistent_point));
      !s.ok()) {
    return s;
  }
  // Import the snapshot before the replication connection runs anything else.
  absl::StatusOr<SnapshotRead> read = OpenSnapshotRead(exported->snapshot_name);
  if (!read.ok()) return read.status();
  const std::vector<std::pair<std::string, std::string>>& captured = read->captured;
  // Snapshot rows sort before every streamed change: a streamed commit may sit exactly at the
  // consistent point.
  SnapshotCopier copier(read->reader.get(), &read->types, &filter_, options_.publication, &stop_,
                        [this](const SnapshotProgress& progress) {
                          absl::MutexLock lock(&mu_);
                          status_.snapshot_tables_total = progress.tables_total;
                          status_.snapshot_tables_copied = progress.tables_copied;
                          status_.snapshot_rows_copied = progress.rows_copied;
                        });
  spdlog::info("event=snapshot_started consistent_point={} tables={}",
               FormatLsn(exported->consistent_point), captured.size());
  ChangeStager stager(sink_, Position{exported->consistent_point - 1, 0});
  ReadRowStager read_rows(&stager);
  if (absl::Status s = copier.CopyTables(captured, &read_rows); !s.ok()) return s;
  if (absl::Status s = stager.Finish(); !s.ok()) return s;
  if (absl::Status s = read->reader->Query("COMMIT").status(); !s.ok()) return s;
  if (absl::Status s = sink_->CommitStaged(stager.last(), exported->consistent_point,
                                           {{kSnapshotStateKey, "done"}});
      !s.ok()) {
    return s;
  }
  WALFEED_FAULT_POINT("snapshot.committed_before_tables_recorded");
  capture_.MarkCaptured(captured);
  if (absl::Status s = capture_.Store(); !s.ok()) return s;
  uint64_t rows;
  {
    absl::MutexLock lock(&mu_);
    status_.snapshot_state = "done";
    rows = status_.snapshot_rows_copied;
  }
  spdlog::info("event=snapshot_done rows={} seconds={:.2f} resume_lsn={}", rows,
               absl::ToDoubleSeconds(absl::Now() - started), FormatLsn(exported->consistent_point));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PgConnection>> Source::OpenSnapshotReader(
    const std::string& snapshot_name, TypeCatalog* types) {
  absl::StatusOr<std::unique_ptr<PgConnection>> reader =
      PgConnection::Connect(options_.conninfo, PgConnection::Mode::kPlain);
  if (!reader.ok()) return reader.status();
  for (const std::string& statement :
       {std::string("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
        absl::StrCat("SET TRANSACTION SNAPSHOT ", (*reader)->QuoteLiteral(snapshot_name))}) {
    if (absl::Status s = (*reader)->Query(statement).status(); !s.ok()) return s;
  }
  if (absl::Status s = LoadTypes(**reader, types); !s.ok()) return s;
  return reader;
}

absl::StatusOr<Source::SnapshotRead> Source::OpenSnapshotRead(const std::string& snapshot_name) {
  SnapshotRead read;
  absl::StatusOr<std::unique_ptr<PgConnection>> reader =
      OpenSnapshotReader(snapshot_name, &read.types);
  if (!reader.ok()) return reader.status();
  read.reader = *std::move(reader);
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> captured =
      CapturedRelations(*read.reader);
  if (!captured.ok()) return captured.status();
  read.captured = *std::move(captured);
  return read;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Source::CapturedRelations(
    PgConnection& reader) const {
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> relations =
      PublishedRelations(reader, options_.publication);
  if (!relations.ok()) return relations.status();
  std::vector<std::pair<std::string, std::string>> captured;
  for (auto& [schema, table] : *relations) {
    if (filter_.IncludesTable(schema, table)) captured.emplace_back(schema, table);
  }
  return captured;
}

absl::Status Source::SnapshotAddedTables() {
  const TableCapture::TableList& added = capture_.added();
  // A temporary slot on a replication connection of its own exports a snapshot (the slot goes
  // with the connection). The rows read under it are placed right after the log's head, before
  // anything streamed from the main slot's resume point; the changes committed between that
  // point and the snapshot stream in after them, so a consumer ends at the same state.
  const absl::Time started = absl::Now();
  absl::StatusOr<std::unique_ptr<PgConnection>> exporter =
      PgConnection::Connect(options_.conninfo, PgConnection::Mode::kReplication);
  if (!exporter.ok()) return exporter.status();
  // A name of its own per attempt: the backend of an earlier attempt (of this process or of one
  // killed) can hold its temporary slot for a while after its client is gone.
  static std::atomic<uint64_t> attempts{0};
  const std::string suffix = absl::StrCat("_new_tables_", getpid(), "_", ++attempts);
  std::string temporary_slot = absl::StrCat(options_.slot.substr(0, 63 - suffix.size()), suffix);
  absl::StatusOr<ExportedSnapshot> exported;
  {
    SlotCreationWatch watch(options_.conninfo, temporary_slot);
    exported = CreateSlotWithSnapshot(**exporter, temporary_slot, /*temporary=*/true);
  }
  if (!exported.ok()) return exported.status();
  TypeCatalog types;
  absl::StatusOr<std::unique_ptr<PgConnection>> reader =
      OpenSnapshotReader(exported->snapshot_name, &types);
  if (!reader.ok()) return reader.status();
  if (absl::Status s = sink_->DiscardStaged(); !s.ok()) return s;
  // Synthetic rows: placed by the one rule that keeps them clear of every later commit.
  absl::StatusOr<Position> first = FirstSyntheticPosition(sink_->Head(), sink_->ResumeLsn());
  if (!first.ok()) return first.status();
  SetState("snapshotting");
  spdlog::info("event=added_tables_snapshot_started tables={} snapshot_lsn={} placed_at={}",
               added.size(), FormatLsn(exported->consistent_point), FormatCursor(*first));
  SnapshotCopier copier(reader->get(), &types, &filter_, options_.publication, &stop_,
                        [](const SnapshotProgress&) {});
  ChangeStager stager(sink_, *first);
  ReadRowStager read_rows(&stager);
  if (absl::Status s = copier.CopyTables(added, &read_rows); !s.ok()) return s;
  if (absl::Status s = stager.Finish(); !s.ok()) return s;
  if (absl::Status s = (*reader)->Query("COMMIT").status(); !s.ok()) return s;
  if (stager.count() > 0) {
    if (absl::Status s = sink_->CommitStaged(stager.last(), sink_->ResumeLsn(), {}); !s.ok()) {
      return s;
    }
  }
  const size_t tables = added.size();
  capture_.MarkCaptured(added);
  if (absl::Status s = capture_.Store(); !s.ok()) return s;
  spdlog::info("event=added_tables_snapshot_done tables={} rows={} seconds={:.2f}", tables,
               stager.count(), absl::ToDoubleSeconds(absl::Now() - started));
  return absl::OkStatus();
}

}  // namespace walfeed
