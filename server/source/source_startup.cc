// Source's start-up: the checks and set-up steps every (re)connection runs before it streams
// (source.h): the server, the publication and slot, the identity of the source the log holds,
// whether the initial snapshot or a resynchronisation is due, the captured tables and the
// --exclude-columns entries.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/log_format.h"
#include "server/core/metadata_keys.h"
#include "server/core/position.h"
#include "server/core/utf8.h"
#include "server/source/pg_connection.h"
#include "server/source/replication_setup.h"
#include "server/source/resync_record.h"
#include "server/source/slot_creation_watch.h"
#include "server/source/source.h"
#include "spdlog/spdlog.h"

namespace walfeed {

absl::StatusOr<std::unique_ptr<PgConnection>> Source::ConnectAndPrepare() {
  absl::StatusOr<std::unique_ptr<PgConnection>> conn =
      PgConnection::Connect(options_.conninfo, PgConnection::Mode::kReplication);
  if (!conn.ok()) return conn.status();
  PgConnection& c = **conn;
  absl::StatusOr<SystemIdentity> identity = IdentifySystem(c);
  if (!identity.ok()) return identity.status();
  // Before anything is created on the server: a refused start must leave no slot behind.
  if (absl::Status s = CheckSourceIdentity(*identity); !s.ok()) return s;
  if (absl::Status s = CheckWalLevel(c); !s.ok()) return s;
  // Only walfeed's own default publication is created; a named one must exist.
  if (absl::Status s = EnsurePublication(c, options_.publication,
                                         options_.publication == SourceOptions().publication);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<SlotState> slot = CheckSlot(c, options_.slot);
  if (!slot.ok()) return slot.status();
  absl::StatusOr<bool> snapshot_pending = SnapshotPending();
  if (!snapshot_pending.ok()) return snapshot_pending.status();
  snapshot_pending_ = *snapshot_pending;
  const bool resync_interrupted = ResyncInterrupted(*sink_);
  resync_reason_.clear();
  if (snapshot_pending_ && *slot != SlotState::kMissing) {
    // Only the slot of our own interrupted snapshot may be dropped: never another consumer's.
    absl::StatusOr<uint64_t> confirmed = SlotConfirmedFlushLsn(c, options_.slot);
    if (!confirmed.ok()) return confirmed.status();
    const bool snapshot_running = sink_->Metadata(kSnapshotStateKey) == "running";
    const std::string recorded_slot = sink_->Metadata(kSnapshotSlotKey);
    if (snapshot_running && recorded_slot.empty()) {
      // Stopped between creating the slot and recording its consistent point: the slot is
      // probably ours, but nothing proves it, and another consumer's slot is never dropped.
      return absl::FailedPreconditionError(absl::StrCat(
          "replication slot '", options_.slot,
          "' exists, and walfeed was stopped while it created that slot for its initial "
          "snapshot, before it could record it: unless something else uses a slot of that name, "
          "drop it (SELECT pg_drop_replication_slot('",
          options_.slot, "')) and start walfeed again; it takes the snapshot from scratch"));
    }
    if (!snapshot_running || recorded_slot != FormatLsn(*confirmed)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "replication slot '", options_.slot,
          "' already exists but this data directory has no snapshot of the existing rows: "
          "walfeed can read them consistently only through a slot it creates. Drop the slot "
          "(SELECT pg_drop_replication_slot('",
          options_.slot, "')), or start with --snapshot=never to stream from the slot as it is"));
    }
    // The slot of our own interrupted snapshot: that snapshot is gone, so start over.
    spdlog::warn("event=snapshot_restart slot={} reason=\"the previous snapshot did not finish\"",
                 options_.slot);
    if (absl::Status s = DropSlot(c, options_.slot); !s.ok()) return s;
  } else if (!snapshot_pending_ &&
             (resync_interrupted || (!SinkIsEmpty() && *slot != SlotState::kReady))) {
    if (absl::Status s = PrepareResync(c, *slot, resync_interrupted); !s.ok()) return s;
  } else if (*slot == SlotState::kMissing && !snapshot_pending_) {
    SlotCreationWatch watch(options_.conninfo, options_.slot);
    if (absl::Status s = EnsureSlot(c, options_.slot); !s.ok()) return s;
  }
  if (absl::Status s = CheckExcludedColumns(c); !s.ok()) return s;
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> relations =
      PublishedRelations(c, options_.publication);
  if (!relations.ok()) return relations.status();
  std::vector<TableName> tables;
  for (const auto& [schema, table] : *relations) {
    if (filter_.IncludesTable(schema, table)) tables.push_back(TableName{schema, table});
  }
  if (absl::Status s = capture_.Load(tables, snapshot_pending_); !s.ok()) return s;
  std::vector<std::string> table_names;
  // Names as FeedInfo shows them and filters name them: valid UTF-8 (a SQL_ASCII database's
  // names may not be; see Change.raw_table).
  for (const TableName& name : tables) table_names.push_back(ToValidUtf8(FormatTableName(name)));
  std::sort(table_names.begin(), table_names.end());
  if (tables.empty() && !relations->empty()) {
    spdlog::warn(
        "event=no_table_captured published={} reason=\"--tables/--exclude-tables leave "
        "none of the published tables\"",
        relations->size());
  }
  {
    absl::MutexLock lock(&mu_);
    status_.database = identity->database;
    status_.system_identifier = identity->system_identifier;
    status_.tables = std::move(table_names);
    status_.last_resync = LastResync(*sink_);
  }
  RaiseServerWalEnd(identity->wal_flush_lsn);
  spdlog::info("event=source_ready {} slot={} publication={} wal_flush_lsn={}", c.Describe(),
               options_.slot, EscapeForLog(options_.publication),
               FormatLsn(identity->wal_flush_lsn));
  return conn;
}

absl::Status Source::CheckSourceIdentity(const SystemIdentity& system) {
  const std::string identity = absl::StrCat("system ", system.system_identifier, ", database ",
                                            system.database, ", slot ", options_.slot);
  const std::string stored = sink_->Metadata(kSourceIdentityKey);
  // An empty log may be re-pointed freely (say, after a first start that failed); whatever it
  // recorded about the old source's snapshot no longer applies.
  if (stored.empty() || (stored != identity && SinkIsEmpty())) {
    for (const char* key : {kSnapshotStateKey, kSnapshotSlotKey}) {
      if (absl::Status s = sink_->SetMetadata(key, ""); !s.ok()) return s;
    }
    return sink_->SetMetadata(kSourceIdentityKey, identity);
  }
  if (stored != identity) {
    return absl::FailedPreconditionError(
        absl::StrCat("the data directory holds the feed of (", stored,
                     ") but walfeed is now pointed at (", identity,
                     "); its changes cannot continue that feed: use a new --data-dir for another "
                     "database or slot"));
  }
  return absl::OkStatus();
}

bool Source::SinkIsEmpty() const { return sink_->Head().IsZero() && sink_->ResumeLsn() == 0; }

absl::StatusOr<bool> Source::SnapshotPending() {
  std::string state = sink_->Metadata(kSnapshotStateKey);
  if (state == "running" && !SinkIsEmpty()) {
    // The snapshot was committed but the process stopped before it was marked done.
    state = "done";
    if (absl::Status s = sink_->SetMetadata(kSnapshotStateKey, state); !s.ok()) return s;
  }
  const bool pending = options_.snapshot == SnapshotMode::kInitial && SinkIsEmpty() &&
                       (state.empty() || state == "running");
  if (!pending && state.empty()) {
    state = "skipped";
    if (absl::Status s = sink_->SetMetadata(kSnapshotStateKey, state); !s.ok()) return s;
  }
  absl::MutexLock lock(&mu_);
  status_.snapshot_state = pending ? "pending" : state;
  return pending;
}

absl::Status Source::CheckExcludedColumns(PgConnection& conn) const {
  for (const std::vector<std::string>& entry : filter_.ExcludedColumns()) {
    absl::StatusOr<ColumnRole> role = DescribeColumn(conn, entry[0], entry[1], entry[2]);
    if (!role.ok()) return role.status();
    if (*role == ColumnRole::kMissing) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--exclude-columns names ", entry[0], ".", entry[1], ".", entry[2],
          ", but that table has no such column (or does not exist): fix the name so the column "
          "you mean to keep out is really kept out"));
    }
    if (*role == ColumnRole::kKey) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--exclude-columns names ", entry[0], ".", entry[1], ".", entry[2],
          ", a column of the table's key (primary key or replica identity): changes without it "
          "cannot say which row they are about"));
    }
  }
  return absl::OkStatus();
}

}  // namespace walfeed
