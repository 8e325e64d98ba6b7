#include "server/source/source.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "server/core/log_format.h"
#include "server/core/position.h"
#include "server/source/pg_connection.h"
#include "server/source/pgoutput_decoder.h"
#include "server/source/replication_setup.h"
#include "server/source/replication_stream.h"
#include "server/source/transaction_builder.h"
#include "spdlog/spdlog.h"

namespace walfeed {

// Transactions received but not yet durable, and the LSN PostgreSQL has been told is flushed.
struct Source::Batch {
  std::vector<Transaction> transactions;
  size_t bytes = 0;
  uint64_t confirmed_lsn = 0;
  absl::Time last_status = absl::Now();
};

Source::Source(SourceOptions options, TransactionSink* sink)
    : options_(std::move(options)), sink_(sink) {
  absl::MutexLock lock(&mu_);
  status_.slot = options_.slot;
  status_.publication = options_.publication;
}

Source::~Source() { Stop(); }

absl::Status Source::Start() {
  if (absl::Status valid = options_.Validate(); !valid.ok()) return valid;
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
  return status_;
}

void Source::SetState(const std::string& state) {
  absl::MutexLock lock(&mu_);
  status_.state = state;
}

absl::StatusOr<std::unique_ptr<PgConnection>> Source::ConnectAndPrepare() {
  absl::StatusOr<std::unique_ptr<PgConnection>> conn =
      PgConnection::Connect(options_.conninfo, PgConnection::Mode::kReplication);
  if (!conn.ok()) return conn.status();
  PgConnection& c = **conn;
  absl::StatusOr<SystemIdentity> identity = IdentifySystem(c);
  if (!identity.ok()) return identity.status();
  if (absl::Status s = CheckWalLevel(c); !s.ok()) return s;
  if (absl::Status s = EnsurePublication(c, options_.publication); !s.ok()) return s;
  if (absl::Status s = EnsureSlot(c, options_.slot); !s.ok()) return s;
  absl::StatusOr<std::vector<std::string>> tables = PublishedTables(c, options_.publication);
  if (!tables.ok()) return tables.status();
  {
    absl::MutexLock lock(&mu_);
    status_.database = identity->database;
    status_.system_identifier = identity->system_identifier;
    status_.tables = std::move(*tables);
  }
  spdlog::info("event=source_ready {} slot={} publication={} wal_flush_lsn={}", c.Describe(),
               options_.slot, options_.publication, FormatLsn(identity->wal_flush_lsn));
  return conn;
}

void Source::Run(std::unique_ptr<PgConnection> conn) {
  absl::Duration backoff = options_.reconnect_min;
  while (!stop_.HasBeenNotified()) {
    if (conn == nullptr) {
      absl::StatusOr<std::unique_ptr<PgConnection>> fresh = ConnectAndPrepare();
      if (fresh.ok()) {
        conn = std::move(*fresh);
      } else {
        spdlog::warn("event=source_reconnect_failed error=\"{}\" retry_in={}",
                     fresh.status().message(), absl::FormatDuration(backoff));
      }
    }
    if (conn != nullptr) {
      const absl::Time session_start = absl::Now();
      absl::Status ended = StreamSession(*conn);
      conn.reset();
      if (stop_.HasBeenNotified()) break;
      if (absl::Now() - session_start > absl::Minutes(1)) backoff = options_.reconnect_min;
      spdlog::warn("event=source_disconnected error=\"{}\" retry_in={}", ended.message(),
                   absl::FormatDuration(backoff));
    }
    SetState("reconnecting");
    stop_.WaitForNotificationWithTimeout(backoff);
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

absl::Status Source::StreamSession(PgConnection& conn) {
  TransactionBuilder builder;
  if (absl::Status s = LoadTypes(conn, &builder.types()); !s.ok()) return s;
  const uint64_t start_lsn = sink_->ResumeLsn();
  if (absl::Status s = StartReplication(conn, options_.slot, options_.publication, start_lsn);
      !s.ok()) {
    return s;
  }
  SetState("streaming");
  spdlog::info("event=streaming_started slot={} start_lsn={}", options_.slot, FormatLsn(start_lsn));

  ReplicationStream stream(&conn);
  Batch batch;
  batch.confirmed_lsn = start_lsn;
  absl::Status result;
  while (!stop_.HasBeenNotified()) {
    ReplicationFrame frame;
    // Group commit: keep reading while data is ready; append once the socket runs dry.
    const absl::Duration wait =
        batch.transactions.empty() ? absl::Milliseconds(100) : absl::ZeroDuration();
    absl::StatusOr<bool> got = stream.Next(wait, &frame);
    if (!got.ok()) {
      result = got.status();
      break;
    }
    if (!*got) {
      if (!batch.transactions.empty()) {
        result = FlushBatch(stream, batch);
        if (!result.ok()) break;
      } else if (absl::Now() - batch.last_status >= options_.status_interval) {
        result = Confirm(stream, batch);
        if (!result.ok()) break;
      }
      continue;
    }
    if (frame.kind == ReplicationFrame::Kind::kXLogData) {
      result = HandleXLogData(frame.payload, frame.send_time, builder, batch);
      if (!result.ok()) break;
      if (batch.transactions.size() >= options_.max_batch_transactions ||
          batch.bytes >= options_.max_batch_bytes) {
        result = FlushBatch(stream, batch);
        if (!result.ok()) break;
      }
      continue;
    }
    // Keepalive. With nothing open or pending, everything before the server's WAL end that
    // concerns us has arrived and is durable, so confirming it is safe and frees WAL; do it at
    // once, as PostgreSQL's own subscriber does, so an idle slot keeps up with a busy server.
    bool advanced = false;
    if (!builder.in_transaction() && batch.transactions.empty() &&
        frame.wal_end > batch.confirmed_lsn) {
      batch.confirmed_lsn = frame.wal_end;
      advanced = true;
    }
    if (frame.reply_requested || advanced) {
      result = batch.transactions.empty() ? Confirm(stream, batch) : FlushBatch(stream, batch);
      if (!result.ok()) break;
    }
  }
  if (result.ok() && !batch.transactions.empty()) result = FlushBatch(stream, batch);
  if (result.ok()) result = Confirm(stream, batch);
  return result.ok() ? absl::CancelledError("source stopped") : result;
}

absl::Status Source::HandleXLogData(absl::string_view payload, int64_t send_time,
                                    TransactionBuilder& builder, Batch& batch) {
  absl::StatusOr<pgoutput::Message> message = DecodePgOutputMessage(payload);
  if (!message.ok()) return message.status();
  if (auto* relation = std::get_if<pgoutput::Relation>(&*message)) {
    const std::string name = absl::StrCat(
        relation->schema.empty() ? "pg_catalog" : relation->schema, ".", relation->name);
    absl::MutexLock lock(&mu_);
    auto it = std::lower_bound(status_.tables.begin(), status_.tables.end(), name);
    if (it == status_.tables.end() || *it != name) status_.tables.insert(it, name);
  }
  absl::StatusOr<std::optional<Transaction>> done = builder.Consume(std::move(*message), send_time);
  if (!done.ok()) return done.status();
  if (!done->has_value()) return absl::OkStatus();
  Transaction& txn = **done;
  // PostgreSQL re-sends whatever was not confirmed before a restart; the stored resume point
  // tells what the log already holds.
  const uint64_t resume_lsn = sink_->ResumeLsn();
  if (txn.commit_lsn < resume_lsn) {
    spdlog::debug("event=skip_duplicate commit_lsn={} resume_lsn={}", FormatLsn(txn.commit_lsn),
                  FormatLsn(resume_lsn));
    return absl::OkStatus();
  }
  if (txn.changes.empty()) return absl::OkStatus();
  for (const v1::Change& change : txn.changes) batch.bytes += change.ByteSizeLong();
  batch.transactions.push_back(std::move(txn));
  return absl::OkStatus();
}

absl::Status Source::FlushBatch(ReplicationStream& stream, Batch& batch) {
  const uint64_t end_lsn = batch.transactions.back().end_lsn;
  absl::Status appended = sink_->Append(batch.transactions, end_lsn);
  if (!appended.ok()) {
    spdlog::error(
        "event=append_failed transactions={} error=\"{}\" action=\"not confirming to "
        "PostgreSQL; will reconnect and retry\"",
        batch.transactions.size(), appended.message());
    return appended;
  }
  batch.transactions.clear();
  batch.bytes = 0;
  batch.confirmed_lsn = std::max(batch.confirmed_lsn, end_lsn);
  return Confirm(stream, batch);
}

absl::Status Source::Confirm(ReplicationStream& stream, Batch& batch) {
  absl::Status sent = stream.SendStatus(batch.confirmed_lsn, false);
  if (!sent.ok()) return sent;
  batch.last_status = absl::Now();
  absl::MutexLock lock(&mu_);
  status_.confirmed_flush_lsn = batch.confirmed_lsn;
  return absl::OkStatus();
}

}  // namespace walfeed
