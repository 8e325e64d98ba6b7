// Source's session loop (source.h): connects (or reconnects with backoff), runs what is due
// before streaming (snapshot, resynchronisation, added tables), then streams: decodes each
// frame, builds transactions, hands them to the durable appender and confirms what is durable.
#include "server/source/source.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "server/core/event_counters.h"
#include "server/core/log_format.h"
#include "server/core/position.h"
#include "server/core/utf8.h"
#include "server/source/durable_appender.h"
#include "server/source/pg_connection.h"
#include "server/source/pgoutput_decoder.h"
#include "server/source/replication_setup.h"
#include "server/source/replication_stream.h"
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
    : options_(std::move(options)), sink_(sink), rows_(rows), capture_(sink, options_.snapshot) {
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
      if (!snapshot_pending_ && resync_reason_.empty() && !capture_.added().empty()) {
        ended = SnapshotAddedTables();
      }
      if (!snapshot_pending_ && resync_reason_.empty() && capture_.added().empty()) {
        ended = StreamSession(*conn);
      }
      conn.reset();
      if (stop_.HasBeenNotified()) break;
      if (capture_.TakeTableAdded()) {
        // Not a failure: reconnect at once; ConnectAndPrepare() finds the table and the next
        // round reads its rows before streaming on.
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
  if (absl::Status s = CheckCaptured(message, builder); !s.ok()) return s;
  // The builder takes in a Relation message and decides once whether its table is included.
  const uint32_t described = std::holds_alternative<pgoutput::Relation>(message)
                                 ? std::get<pgoutput::Relation>(message).relation_id
                                 : 0;
  session.transaction_bytes += payload_bytes;
  absl::StatusOr<std::optional<Transaction>> done = builder.Consume(std::move(message), send_time);
  if (!done.ok()) return done.status();
  if (described != 0) {
    if (const pgoutput::Relation* relation = builder.FindIncludedRelation(described)) {
      NotePublishedTable(TableOf(*relation));
    }
  }
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

absl::Status Source::SpillOpenTransaction(TransactionBuilder& builder, Session& session,
                                          DurableAppender& appender) {
  std::vector<v1::Change> early = builder.TakeOpenChanges();
  const size_t bytes = SourceOptions::DecodedBytes(session.transaction_bytes);
  session.transaction_bytes = 0;
  // A transaction the log already holds is being sent again: nothing of it is stored twice.
  if (early.empty() || builder.open_commit_lsn() < session.resume_lsn) return absl::OkStatus();
  if (!appender.SubmitStaged(std::move(early), bytes)) return appender.error();
  return absl::OkStatus();
}

void Source::NotePublishedTable(const TableName& name) {
  const std::string shown = ToValidUtf8(FormatTableName(name));
  absl::MutexLock lock(&mu_);
  auto it = std::lower_bound(status_.tables.begin(), status_.tables.end(), shown);
  if (it == status_.tables.end() || *it != shown) status_.tables.insert(it, shown);
}

absl::Status Source::CheckCaptured(const pgoutput::Message& message,
                                   const TransactionBuilder& builder) {
  absl::Span<const uint32_t> relation_ids;
  if (auto* insert = std::get_if<pgoutput::Insert>(&message))
    relation_ids = {&insert->relation_id, 1};
  if (auto* update = std::get_if<pgoutput::Update>(&message))
    relation_ids = {&update->relation_id, 1};
  if (auto* del = std::get_if<pgoutput::Delete>(&message)) relation_ids = {&del->relation_id, 1};
  if (auto* truncate = std::get_if<pgoutput::Truncate>(&message)) {
    relation_ids = truncate->relation_ids;
  }
  for (uint32_t relation_id : relation_ids) {
    // Unknown relations are the builder's to report; excluded ones are not captured at all.
    const pgoutput::Relation* relation = builder.FindIncludedRelation(relation_id);
    if (relation == nullptr) continue;
    if (absl::Status s = capture_.CheckStreamed(TableOf(*relation)); !s.ok()) return s;
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
