// Source: tails one PostgreSQL database through logical replication into a TransactionSink.
//
// Start() connects, checks the server (wal_level, privileges), creates the publication and the
// slot when missing, and fails fast with a sentence naming the fix when it cannot. On the first
// start (empty log) it takes the initial snapshot: the slot is created with an exported snapshot,
// the existing rows are staged as READ changes and committed before any streamed change; an
// interrupted snapshot is redone from scratch on the next start. When the log holds changes but
// the slot is gone or invalidated, it resynchronises (source_resync.cc) or, under
// --on-slot-lost=fail, refuses with the way out. Then a
// streaming thread decodes pgoutput into whole transactions, appends those that arrive together
// with one durable Append (group commit), and only after that reports their end LSN to
// PostgreSQL as flushed. It resumes from the sink's stored resume point and skips anything
// PostgreSQL re-sends from before it, so every committed change reaches the sink exactly once,
// in commit order. Idle keepalives are answered and, with no transaction open, confirm the
// server's WAL end so an idle database never makes PostgreSQL keep WAL. A lost connection is
// retried with backoff. Thread-safe: status() may be called from any thread.
//
// The work is split by idea: start-up checks and the source's identity (source_startup.cc), the
// snapshots and the captured tables (source_snapshot.cc, table_capture.h), resynchronisation
// (source_resync.cc), and the session loop that streams (source.cc).
#ifndef WALFEED_SERVER_SOURCE_SOURCE_H_
#define WALFEED_SERVER_SOURCE_SOURCE_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/core/confirm_gate.h"
#include "server/core/logged_rows.h"
#include "server/core/source_status.h"
#include "server/core/table_name.h"
#include "server/core/transaction_sink.h"
#include "server/source/pgoutput_messages.h"
#include "server/source/replication_setup.h"
#include "server/source/source_options.h"
#include "server/source/table_capture.h"
#include "server/source/table_filter.h"
#include "server/source/type_catalog.h"

namespace walfeed {

class DurableAppender;
class PgConnection;
class ReplicationStream;
class TransactionBuilder;

class Source {
 public:
  // `sink` and `rows` (the same log, read by a resynchronisation) must outlive the source.
  Source(SourceOptions options, TransactionSink* sink, LoggedRows* rows);
  ~Source();

  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  absl::Status Start();

  // Appends what is complete, confirms it to PostgreSQL, closes the connection, joins.
  void Stop();

  SourceStatus status() const ABSL_LOCKS_EXCLUDED(mu_);

  // Bounds what the source confirms to PostgreSQL by `gate` as well as by the log's durability
  // (--confirm-after=replicated). `gate` must outlive the source; call before Start().
  void SetConfirmGate(const ConfirmGate* gate) { confirm_gate_ = gate; }

 private:
  struct Session;

  // Start-up (source_startup.cc) ------------------------------------------------------------
  // Connects and runs every check and set-up step.
  absl::StatusOr<std::unique_ptr<PgConnection>> ConnectAndPrepare();
  // Fails when the sink holds the changes of another database or slot.
  absl::Status CheckSourceIdentity(const SystemIdentity& system);
  bool SinkIsEmpty() const;
  // Whether this start must take the initial snapshot (and records why not when it need not).
  absl::StatusOr<bool> SnapshotPending();
  // Fails when an --exclude-columns entry names a column that does not exist or is a key column.
  absl::Status CheckExcludedColumns(PgConnection& conn) const;

  // Snapshots (source_snapshot.cc) -----------------------------------------------------------
  // Creates the slot with an exported snapshot, copies the published tables under it into the
  // sink, and commits them with the slot's consistent point as the resume point.
  absl::Status RunSnapshot(PgConnection& replication);
  // Reads the existing rows of the added tables (TableCapture) into the log, right after its head.
  absl::Status SnapshotAddedTables();
  // A plain connection inside a transaction that imported `snapshot_name`, with the types.
  absl::StatusOr<std::unique_ptr<PgConnection>> OpenSnapshotReader(const std::string& snapshot_name,
                                                                   TypeCatalog* types);
  // The publication's tables the filter includes, as `reader` (in a snapshot) sees them.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> CapturedRelations(
      PgConnection& reader) const;
  // What the initial snapshot and a resynchronisation both read under an exported snapshot: a
  // reader in it, the types, and the captured tables as it sees them.
  struct SnapshotRead {
    std::unique_ptr<PgConnection> reader;
    TypeCatalog types;
    std::vector<std::pair<std::string, std::string>> captured;
  };
  absl::StatusOr<SnapshotRead> OpenSnapshotRead(const std::string& snapshot_name);

  // Resynchronisation (source_resync.cc) -----------------------------------------------------
  // The log holds changes but the slot is gone or invalidated (`slot`), or a resynchronisation
  // was interrupted: fails under --on-slot-lost=fail; otherwise drops what is left of the slot
  // and sets resync_reason_.
  absl::Status PrepareResync(PgConnection& conn, SlotState slot, bool interrupted);
  // Creates a new slot with an exported snapshot and appends the differences between the log
  // and the captured tables under it, committed together with the slot's consistent point as
  // the resume point.
  absl::Status RunResync(PgConnection& replication);

  // The session loop (source.cc) -------------------------------------------------------------
  void Run(std::unique_ptr<PgConnection> first_connection);
  absl::Status StreamSession(PgConnection& conn);
  absl::Status HandleXLogData(pgoutput::Message message, size_t payload_bytes, int64_t send_time,
                              TransactionBuilder& builder, Session& session,
                              DurableAppender& appender);
  // Hands the open transaction's changes so far to the appender to stage, freeing memory.
  absl::Status SpillOpenTransaction(TransactionBuilder& builder, Session& session,
                                    DurableAppender& appender);
  // An included table the stream described: shown in status().tables from now on.
  void NotePublishedTable(const TableName& name);
  // Aborted (TableCapture::CheckStreamed) when `message` changes an included table whose
  // existing rows are not in the log yet.
  absl::Status CheckCaptured(const pgoutput::Message& message, const TransactionBuilder& builder);
  // Reports to PostgreSQL the newest LSN that is durable (or idle-confirmable): at once when it
  // moved or `force`, otherwise on the status interval.
  absl::Status ConfirmDurable(ReplicationStream& stream, const DurableAppender& appender,
                              Session& session, bool force);
  // "streaming" and "snapshotting" are progress: they end a failure (see NoteFailure).
  void SetState(const std::string& state) ABSL_LOCKS_EXCLUDED(mu_);
  // The source could not go on: keeps `error` and, unless already failing, the time.
  void NoteFailure(const absl::Status& error) ABSL_LOCKS_EXCLUDED(mu_);
  void RaiseServerWalEnd(uint64_t lsn);

  const SourceOptions options_;
  TransactionSink* const sink_;
  LoggedRows* const rows_;
  const ConfirmGate* confirm_gate_ = nullptr;
  TableFilter filter_;  // from options_, set in Start()
  std::thread thread_;
  absl::Notification stop_;
  std::atomic<bool> started_{false};
  // Set by ConnectAndPrepare(), which runs before the streaming thread or on it.
  bool snapshot_pending_ = false;
  // Why the next session starts with a resynchronisation ("" when it does not).
  std::string resync_reason_;
  // Touched only by the thread that runs the source (ConnectAndPrepare and the stream).
  TableCapture capture_;

  mutable absl::Mutex mu_;
  SourceStatus status_ ABSL_GUARDED_BY(mu_);
  // Updated with every frame, so kept out of `mu_`.
  std::atomic<uint64_t> server_wal_end_{0};
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_SOURCE_H_
