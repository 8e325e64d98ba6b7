#include "server/source/source.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "server/core/event_counters.h"
#include "server/core/log_format.h"
#include "server/core/metadata_keys.h"
#include "server/core/position.h"
#include "server/core/utf8.h"
#include "server/source/change_stager.h"
#include "server/source/durable_appender.h"
#include "server/source/pg_connection.h"
#include "server/source/pgoutput_decoder.h"
#include "server/source/replication_setup.h"
#include "server/source/replication_stream.h"
#include "server/source/resync_record.h"
#include "server/source/slot_creation_watch.h"
#include "server/source/snapshot_copier.h"
#include "server/source/transaction_builder.h"
#include "spdlog/spdlog.h"

namespace walfeed {

// The state of one replication session.
struct Source::Session {
  // The log's resume point when the session started: PostgreSQL re-sends from before it.
  uint64_t resume_lsn = 0;
  // The LSN last reported to PostgreSQL as flushed.
  uint64_t confirmed_lsn = 0;
  // The server's WAL end from the last keepalive that found everything durable.
  uint64_t idle_lsn = 0;
  // pgoutput bytes of the transaction being received (a size estimate for backpressure).
  size_t transaction_bytes = 0;
  absl::Time last_status = absl::Now();
};

Source::Source(SourceOptions options, TransactionSink* sink, LoggedRows* rows)
    : options_(std::move(options)), sink_(sink), rows_(rows) {
  absl::MutexLock lock(&mu_);
  status_.slot = options_.slot;
  status_.publication = options_.publication;
}

Source::~Source() { Stop(); }

absl::Status Source::Start() {
  if (absl::Status valid = options_.Validate(); !valid.ok()) return valid;
  absl::StatusOr<TableFilter> filter = TableFilter::Create(
      options_.include_tables, options_.exclude_tables, options_.exclude_columns);
  if (!filter.ok()) return filter.status();
  filter_ = std::move(*filter);
  absl::StatusOr<std::unique_ptr<PgConnection>> conn = ConnectAndPrepare();
  if (!conn.ok()) return conn.status();
  started_ = true;
  thread_ = std::thread(&Source::Run, this, std::move(*conn));
  return absl::OkStatus();
}

void Source::Stop() {
  if (!started_.exchange(false)) return;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  SetState("stopped");
}

SourceStatus Source::status() const {
  absl::MutexLock lock(&mu_);
  SourceStatus status = status_;
  status.server_wal_end = server_wal_end_.load(std::memory_order_relaxed);
  return status;
}

void Source::RaiseServerWalEnd(uint64_t lsn) {
  uint64_t known = server_wal_end_.load(std::memory_order_relaxed);
  while (lsn > known &&
         !server_wal_end_.compare_exchange_weak(known, lsn, std::memory_order_relaxed)) {
  }
}

void Source::SetState(const std::string& state) {
  absl::MutexLock lock(&mu_);
  status_.state = state;
  if (state == "streaming" || state == "snapshotting" || state == "resyncing") {
    status_.failing_since = absl::InfiniteFuture();
    status_.last_error.clear();
  }
}

void Source::NoteFailure(const absl::Status& error) {
  absl::MutexLock lock(&mu_);
  status_.last_error = std::string(error.message());
  if (status_.failing_since == absl::InfiniteFuture()) status_.failing_since = absl::Now();
}

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
    if (sink_->Metadata(kSnapshotStateKey) != "running" ||
        sink_->Metadata(kSnapshotSlotKey) != FormatLsn(*confirmed)) {
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
  if (absl::Status s = NoteCapturedTables(tables); !s.ok()) return s;
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
  if (absl::Status s = sink_->SetMetadata(kSnapshotSlotKey, FormatLsn(exported->consistent_point));
      !s.ok()) {
    return s;
  }
  // Import the snapshot before the replication connection runs anything else.
  TypeCatalog types;
  absl::StatusOr<std::unique_ptr<PgConnection>> reader =
      OpenSnapshotReader(exported->snapshot_name, &types);
  if (!reader.ok()) return reader.status();
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> relations =
      CapturedRelations(**reader);
  if (!relations.ok()) return relations.status();
  const std::vector<std::pair<std::string, std::string>>& captured = *relations;
  // Snapshot rows sort before every streamed change: a streamed commit may sit exactly at the
  // consistent point.
  SnapshotCopier copier(reader->get(), &types, &filter_, options_.publication, &stop_,
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
  if (absl::Status s = (*reader)->Query("COMMIT").status(); !s.ok()) return s;
  if (absl::Status s = sink_->CommitStaged(stager.last(), exported->consistent_point,
                                           {{kSnapshotStateKey, "done"}});
      !s.ok()) {
    return s;
  }
  for (const auto& [schema, table] : captured) captured_tables_.insert(TableName{schema, table});
  if (absl::Status s = StoreCapturedTables(); !s.ok()) return s;
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

absl::Status Source::NoteCapturedTables(const std::vector<TableName>& tables) {
  added_tables_.clear();
  absl::StatusOr<CapturedTables> stored =
      CapturedTables::Parse(sink_->Metadata(kCapturedTablesKey), tables);
  if (!stored.ok()) return stored.status();
  captured_tables_ = std::move(*stored);
  // The initial snapshot reads them all (and records them); a log from before this record
  // existed, or one that never wanted a snapshot, takes the tables as they are now. An empty
  // record is a record: tables published later are new.
  if (snapshot_pending_) return absl::OkStatus();
  const bool first_record = captured_tables_.never_recorded();
  bool changed = first_record;
  for (const TableName& name : tables) {
    if (captured_tables_.contains(name)) continue;
    if (first_record || options_.snapshot == SnapshotMode::kNever) {
      captured_tables_.insert(name);
      changed = true;
      continue;
    }
    added_tables_.emplace_back(name.schema, name.table);
  }
  // Written only when it changed: a reconnect writes nothing (say, to a full disk).
  return changed ? StoreCapturedTables() : absl::OkStatus();
}

absl::Status Source::StoreCapturedTables() {
  return sink_->SetMetadata(kCapturedTablesKey, captured_tables_.Encode());
}

absl::Status Source::SnapshotAddedTables() {
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
               added_tables_.size(), FormatLsn(exported->consistent_point), FormatCursor(*first));
  SnapshotCopier copier(reader->get(), &types, &filter_, options_.publication, &stop_,
                        [](const SnapshotProgress&) {});
  ChangeStager stager(sink_, *first);
  ReadRowStager read_rows(&stager);
  if (absl::Status s = copier.CopyTables(added_tables_, &read_rows); !s.ok()) return s;
  if (absl::Status s = stager.Finish(); !s.ok()) return s;
  if (absl::Status s = (*reader)->Query("COMMIT").status(); !s.ok()) return s;
  if (stager.count() > 0) {
    if (absl::Status s = sink_->CommitStaged(stager.last(), sink_->ResumeLsn(), {}); !s.ok()) {
      return s;
    }
  }
  for (const auto& [schema, table] : added_tables_)
    captured_tables_.insert(TableName{schema, table});
  if (absl::Status s = StoreCapturedTables(); !s.ok()) return s;
  spdlog::info("event=added_tables_snapshot_done tables={} rows={} seconds={:.2f}",
               added_tables_.size(), stager.count(), absl::ToDoubleSeconds(absl::Now() - started));
  return absl::OkStatus();
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

void Source::Run(std::unique_ptr<PgConnection> conn) {
  absl::Duration backoff = options_.reconnect_min;
  while (!stop_.HasBeenNotified()) {
    if (conn == nullptr) {
      absl::StatusOr<std::unique_ptr<PgConnection>> fresh = ConnectAndPrepare();
      if (fresh.ok()) {
        conn = std::move(*fresh);
      } else {
        CountEvent("source_reconnect_failed");
        NoteFailure(fresh.status());
        spdlog::warn("event=source_reconnect_failed error=\"{}\" retry_in={}",
                     EscapeForLog(fresh.status().message()), absl::FormatDuration(backoff));
      }
    }
    if (conn != nullptr) {
      const absl::Time session_start = absl::Now();
      absl::Status ended;
      if (snapshot_pending_) {
        ended = RunSnapshot(*conn);
        if (ended.ok()) snapshot_pending_ = false;
      }
      if (!snapshot_pending_ && !resync_reason_.empty()) {
        ended = RunResync(*conn);
        if (ended.ok()) resync_reason_.clear();
      }
      if (!snapshot_pending_ && resync_reason_.empty() && !added_tables_.empty()) {
        ended = SnapshotAddedTables();
        if (ended.ok()) added_tables_.clear();
      }
      if (!snapshot_pending_ && resync_reason_.empty() && added_tables_.empty()) {
        ended = StreamSession(*conn);
      }
      conn.reset();
      if (stop_.HasBeenNotified()) break;
      if (table_added_) {
        // Not a failure: reconnect at once; ConnectAndPrepare() finds the table and the next
        // round reads its rows before streaming on.
        table_added_ = false;
        spdlog::info("event=published_table_added reason=\"{}\"", EscapeForLog(ended.message()));
        continue;
      }
      if (absl::Now() - session_start > absl::Minutes(1)) backoff = options_.reconnect_min;
      CountEvent("source_disconnected");
      if (!ended.ok()) NoteFailure(ended);
      spdlog::warn("event=source_disconnected error=\"{}\" retry_in={}",
                   EscapeForLog(ended.message()), absl::FormatDuration(backoff));
    }
    SetState("reconnecting");
    stop_.WaitForNotificationWithTimeout(backoff);
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

absl::Status Source::StreamSession(PgConnection& conn) {
  TransactionBuilder builder;
  builder.set_filter(&filter_);
  if (absl::Status s = LoadTypes(conn, &builder.types()); !s.ok()) return s;
  Session session;
  session.resume_lsn = sink_->ResumeLsn();
  // The slot's own point: idle keepalives may have confirmed past the log's resume point (nothing
  // of ours lay in between), and under a confirm gate the resume point may not be confirmable
  // yet. Status updates start from there and never report an older LSN; the log's resume point
  // is confirmed with the first one (the appender starts from it) once the gate allows.
  if (absl::StatusOr<uint64_t> slot_confirmed = SlotConfirmedFlushLsn(conn, options_.slot);
      slot_confirmed.ok()) {
    session.confirmed_lsn = *slot_confirmed;
  } else {
    return slot_confirmed.status();
  }
  if (absl::Status s =
          StartReplication(conn, options_.slot, options_.publication, session.resume_lsn);
      !s.ok()) {
    return s;
  }
  SetState("streaming");
  spdlog::info("event=streaming_started slot={} start_lsn={}", options_.slot,
               FormatLsn(session.resume_lsn));

  // Parts of a large transaction the previous session staged but never committed: PostgreSQL
  // sends that transaction again whole.
  if (absl::Status s = sink_->DiscardStaged(); !s.ok()) return s;
  ReplicationStream stream(&conn);
  DurableAppender appender(sink_, options_.max_queued_bytes);
  absl::Status result;
  while (!stop_.HasBeenNotified() && result.ok()) {
    ReplicationFrame frame;
    absl::StatusOr<bool> got = stream.Next(absl::Milliseconds(100), appender.wake_fd(), &frame);
    if (!got.ok()) {
      result = got.status();
      break;
    }
    bool reply_now = false;
    if (*got) RaiseServerWalEnd(frame.wal_end);
    if (*got && frame.kind == ReplicationFrame::Kind::kXLogData) {
      absl::StatusOr<pgoutput::Message> message = DecodePgOutputMessage(frame.payload);
      const size_t payload_bytes = frame.payload.size();
      // The message holds copies of what it needs: give libpq's copy of a large one back before
      // its values are converted (a 100 MB bytea arrives as 200 MB of hex).
      stream.ReleaseBuffer();
      result = message.ok() ? HandleXLogData(*std::move(message), payload_bytes, frame.send_time,
                                             builder, session, appender)
                            : message.status();
    } else if (*got) {
      // Keepalive. With no transaction open and everything received durable, everything
      // before the server's WAL end that concerns us is in the log, so confirming it is safe
      // and frees WAL; confirm at once, as PostgreSQL's own subscriber does, so an idle slot
      // keeps up with a busy server.
      if (!builder.in_transaction() && appender.idle() && frame.wal_end > session.confirmed_lsn) {
        session.idle_lsn = frame.wal_end;
      }
      reply_now = frame.reply_requested;
    }
    if (result.ok()) result = appender.error();
    if (result.ok()) result = ConfirmDurable(stream, appender, session, reply_now);
  }
  if (stop_.HasBeenNotified() && result.ok()) {
    // Make what arrived durable and tell PostgreSQL before closing.
    result = appender.Drain();
    if (result.ok()) result = ConfirmDurable(stream, appender, session, /*force=*/true);
    if (result.ok()) result = absl::CancelledError("source stopped");
  }
  return result;
}

absl::Status Source::HandleXLogData(pgoutput::Message message, size_t payload_bytes,
                                    int64_t send_time, TransactionBuilder& builder,
                                    Session& session, DurableAppender& appender) {
  if (auto* relation = std::get_if<pgoutput::Relation>(&message)) NotePublishedTable(*relation);
  if (absl::Status s = CheckCaptured(message, builder); !s.ok()) return s;
  session.transaction_bytes += payload_bytes;
  absl::StatusOr<std::optional<Transaction>> done = builder.Consume(std::move(message), send_time);
  if (!done.ok()) return done.status();
  if (!done->has_value()) {
    if (SourceOptions::DecodedBytes(session.transaction_bytes) > options_.max_transaction_bytes) {
      return SpillOpenTransaction(builder, session, appender);
    }
    return absl::OkStatus();
  }
  Transaction& txn = **done;
  const size_t bytes = SourceOptions::DecodedBytes(session.transaction_bytes);
  session.transaction_bytes = 0;
  // PostgreSQL re-sends whatever was not confirmed before a restart; the log's resume point
  // says what it already holds.
  if (txn.commit_lsn < session.resume_lsn) {
    spdlog::debug("event=skip_duplicate commit_lsn={} resume_lsn={}", FormatLsn(txn.commit_lsn),
                  FormatLsn(session.resume_lsn));
    return absl::OkStatus();
  }
  if (txn.changes.empty()) return absl::OkStatus();
  if (!appender.Submit(std::move(txn), bytes)) return appender.error();
  return absl::OkStatus();
}

absl::Status Source::CheckExcludedColumns(PgConnection& conn) const {
  for (const std::vector<std::string>& entry : filter_.ExcludedColumns()) {
    const std::string relation =
        absl::StrCat(conn.QuoteIdentifier(entry[0]), ".", conn.QuoteIdentifier(entry[1]));
    absl::StatusOr<QueryRows> found = conn.Query(absl::StrCat(
        "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "  WHERE i.indrelid = a.attrelid AND a.attnum = ANY (i.indkey) AND "
        "  ((c.relreplident = 'i' AND i.indisreplident) OR "
        "   (c.relreplident = 'd' AND i.indisprimary))) "
        "FROM pg_attribute a WHERE a.attrelid = to_regclass(",
        conn.QuoteLiteral(relation), ") AND a.attname = ", conn.QuoteLiteral(entry[2]),
        " AND a.attnum > 0 AND NOT a.attisdropped"));
    if (!found.ok()) return found.status();
    if (found->rows.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--exclude-columns names ", entry[0], ".", entry[1], ".", entry[2],
          ", but that table has no such column (or does not exist): fix the name so the column "
          "you mean to keep out is really kept out"));
    }
    if (found->rows[0][0] == "t") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--exclude-columns names ", entry[0], ".", entry[1], ".", entry[2],
          ", a column of the table's key (primary key or replica identity): changes without it "
          "cannot say which row they are about"));
    }
  }
  return absl::OkStatus();
}

absl::Status Source::SpillOpenTransaction(TransactionBuilder& builder, Session& session,
                                          DurableAppender& appender) {
  std::vector<v1::Change> early = builder.TakeOpenChanges();
  const size_t bytes = SourceOptions::DecodedBytes(session.transaction_bytes);
  session.transaction_bytes = 0;
  // A transaction the log already holds is being sent again: nothing of it is stored twice.
  if (early.empty() || builder.open_commit_lsn() < session.resume_lsn) return absl::OkStatus();
  spdlog::debug("event=large_transaction_staged commit_lsn={} changes={}",
                FormatLsn(builder.open_commit_lsn()), early.size());
  if (!appender.SubmitStaged(std::move(early), bytes)) return appender.error();
  return absl::OkStatus();
}

void Source::NotePublishedTable(const pgoutput::Relation& relation) {
  const std::string schema = relation.schema.empty() ? "pg_catalog" : relation.schema;
  if (!filter_.IncludesTable(schema, relation.name)) return;
  const std::string name = ToValidUtf8(FormatTableName(schema, relation.name));
  absl::MutexLock lock(&mu_);
  auto it = std::lower_bound(status_.tables.begin(), status_.tables.end(), name);
  if (it == status_.tables.end() || *it != name) status_.tables.insert(it, name);
}

absl::Status Source::CheckCaptured(const pgoutput::Message& message,
                                   const TransactionBuilder& builder) {
  std::vector<uint32_t> relation_ids;
  if (auto* insert = std::get_if<pgoutput::Insert>(&message)) relation_ids = {insert->relation_id};
  if (auto* update = std::get_if<pgoutput::Update>(&message)) relation_ids = {update->relation_id};
  if (auto* del = std::get_if<pgoutput::Delete>(&message)) relation_ids = {del->relation_id};
  if (auto* truncate = std::get_if<pgoutput::Truncate>(&message)) {
    relation_ids = truncate->relation_ids;
  }
  for (uint32_t relation_id : relation_ids) {
    const pgoutput::Relation* relation = builder.FindRelation(relation_id);
    if (relation == nullptr) continue;  // the builder reports it
    const std::string schema = relation->schema.empty() ? "pg_catalog" : relation->schema;
    if (!filter_.IncludesTable(schema, relation->name)) continue;
    const TableName name{schema, relation->name};
    if (captured_tables_.contains(name)) continue;
    // Seen once already, and the publication does not list it: stream it rather than loop.
    if (options_.snapshot == SnapshotMode::kNever || !unlisted_tables_.insert(name).second) {
      captured_tables_.insert(name);
      if (absl::Status s = StoreCapturedTables(); !s.ok()) return s;
      continue;
    }
    // A table added to the publication while streaming: its existing rows are read (at the
    // next connection, before streaming resumes from the confirmed point) before its changes.
    table_added_ = true;
    return absl::AbortedError(
        absl::StrCat("table ", FormatTableName(name), " was added to the publication"));
  }
  return absl::OkStatus();
}

absl::Status Source::ConfirmDurable(ReplicationStream& stream, const DurableAppender& appender,
                                    Session& session, bool force) {
  // The durable point first, the gate after it (confirm_gate.h).
  uint64_t target = std::max(appender.durable_lsn(), session.idle_lsn);
  if (confirm_gate_ != nullptr) target = std::min(target, confirm_gate_->ConfirmableLsn());
  target = std::max(target, session.confirmed_lsn);
  if (target == session.confirmed_lsn && !force &&
      absl::Now() - session.last_status < options_.status_interval) {
    return absl::OkStatus();
  }
  absl::Status sent = stream.SendStatus(target, false);
  if (!sent.ok()) return sent;
  session.confirmed_lsn = target;
  session.last_status = absl::Now();
  absl::MutexLock lock(&mu_);
  status_.confirmed_flush_lsn = target;
  return absl::OkStatus();
}

}  // namespace walfeed
