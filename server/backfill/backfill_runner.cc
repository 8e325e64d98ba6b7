#include "server/backfill/backfill_runner.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/fault_point.h"
#include "server/core/metadata_keys.h"
#include "server/core/position.h"
#include "server/core/proto_time.h"
#include "server/core/table_name.h"
#include "server/source/backfill_chunk.h"
#include "server/source/pg_connection.h"
#include "server/source/replication_setup.h"
#include "spdlog/spdlog.h"

namespace walfeed {
namespace {

// A chunk ends once it read this many bytes of values.
constexpr uint64_t kChunkBytes = 16 << 20;
// Finished backfills kept in the list.
constexpr int kFinishedKept = 20;
// How often a wait for the stream looks again.
constexpr absl::Duration kStreamPoll = absl::Milliseconds(20);

bool Finished(const v1::BackfillInfo& info) {
  return info.state() == "done" || info.state() == "cancelled" || info.state() == "failed";
}

v1::BackfillInfo* Find(v1::BackfillList& list, uint64_t id) {
  for (v1::BackfillInfo& info : *list.mutable_backfills()) {
    if (info.id() == id) return &info;
  }
  return nullptr;
}

std::string Describe(const v1::BackfillInfo& info) {
  return absl::StrCat("id=", info.id(), " table=\"", EscapeForLog(info.request().table()), "\"");
}

}  // namespace

absl::StatusOr<std::unique_ptr<BackfillRunner>> BackfillRunner::Load(
    const SourceOptions& options, ChangeLog* log, std::function<SourceStatus()> source_status) {
  absl::StatusOr<TableFilter> filter =
      TableFilter::Create(options.include_tables, options.exclude_tables, options.exclude_columns);
  if (!filter.ok()) return filter.status();
  std::unique_ptr<BackfillRunner> runner(
      new BackfillRunner(options, *std::move(filter), log, std::move(source_status)));
  const std::string stored = log->Metadata(kBackfillsKey);
  absl::MutexLock lock(&runner->mu_);
  if (!stored.empty() && !runner->list_.ParseFromString(stored)) {
    return absl::DataLossError(absl::StrCat("the log's record of backfills (metadata \"",
                                            kBackfillsKey, "\") cannot be read"));
  }
  return runner;
}

BackfillRunner::BackfillRunner(const SourceOptions& options, TableFilter filter, ChangeLog* log,
                               std::function<SourceStatus()> source_status)
    : options_(options),
      filter_(std::move(filter)),
      log_(log),
      source_status_(std::move(source_status)) {}

BackfillRunner::~BackfillRunner() { Stop(); }

void BackfillRunner::Start() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  thread_ = std::thread(&BackfillRunner::Run, this);
}

void BackfillRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<v1::BackfillInfo> BackfillRunner::List() const {
  absl::MutexLock lock(&mu_);
  return {list_.backfills().begin(), list_.backfills().end()};
}

std::string BackfillRunner::Updated(v1::BackfillList& list, uint64_t id,
                                    const std::function<void(v1::BackfillInfo&)>& update) const {
  if (v1::BackfillInfo* info = Find(list, id)) update(*info);
  int finished = 0;
  for (const v1::BackfillInfo& info : list.backfills()) finished += Finished(info) ? 1 : 0;
  auto* backfills = list.mutable_backfills();
  for (auto it = backfills->begin(); finished > kFinishedKept && it != backfills->end();) {
    if (Finished(*it)) {
      it = backfills->erase(it);
      --finished;
    } else {
      ++it;
    }
  }
  return list.SerializeAsString();
}

absl::Status BackfillRunner::Update(uint64_t id,
                                    const std::function<void(v1::BackfillInfo&)>& update) {
  v1::BackfillList list;
  {
    absl::MutexLock lock(&mu_);
    list = list_;
  }
  const std::string stored = Updated(list, id, update);
  if (absl::Status s = log_->SetMetadata(kBackfillsKey, stored); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  list_ = std::move(list);
  return absl::OkStatus();
}

absl::StatusOr<v1::BackfillInfo> BackfillRunner::Enqueue(const v1::BackfillRequest& request) {
  absl::StatusOr<std::unique_ptr<PgConnection>> conn =
      PgConnection::Connect(options_.conninfo, PgConnection::Mode::kPlain);
  if (!conn.ok()) return conn.status();
  absl::StatusOr<ResolvedBackfill> resolved =
      ResolveBackfill(**conn, filter_, options_.publication, request);
  if (!resolved.ok()) return resolved.status();
  absl::MutexLock persist(&persist_mu_);
  v1::BackfillList list;
  {
    absl::MutexLock lock(&mu_);
    list = list_;
  }
  v1::BackfillInfo info;
  info.set_id(list.last_id() + 1);
  *info.mutable_request() = request;
  info.mutable_request()->set_table(FormatTableName(resolved->schema, resolved->table));
  info.mutable_request()->set_chunk_rows(resolved->chunk_rows);
  info.set_state("queued");
  for (const std::string& column : resolved->key_columns) info.add_key_columns(column);
  ToProtoTimestamp(absl::Now(), info.mutable_queued_at());
  list.set_last_id(info.id());
  *list.add_backfills() = info;
  if (absl::Status s = log_->SetMetadata(kBackfillsKey, Updated(list, 0, {})); !s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    list_ = std::move(list);
  }
  spdlog::info("event=backfill_queued {} key=\"{}\" where=\"{}\"", Describe(info),
               EscapeForLog(absl::StrJoin(resolved->key_columns, ",")),
               EscapeForLog(request.where()));
  return info;
}

absl::StatusOr<v1::BackfillInfo> BackfillRunner::Cancel(uint64_t id) {
  absl::MutexLock persist(&persist_mu_);
  v1::BackfillInfo current;
  {
    absl::MutexLock lock(&mu_);
    v1::BackfillInfo* info = Find(list_, id);
    if (info == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("there is no backfill ", id, " (FeedInfo.backfills lists the kept ones)"));
    }
    if (Finished(*info)) return *info;
    current = *info;
    if (info->state() == "running") {
      // The runner stops after its chunk and records the cancellation itself.
      cancel_requested_.insert(id);
      return current;
    }
  }
  if (absl::Status s = Update(id,
                              [](v1::BackfillInfo& info) {
                                info.set_state("cancelled");
                                ToProtoTimestamp(absl::Now(), info.mutable_finished_at());
                              });
      !s.ok()) {
    return s;
  }
  spdlog::info("event=backfill_cancelled {} while=queued", Describe(current));
  absl::MutexLock lock(&mu_);
  return *Find(list_, id);
}

bool BackfillRunner::StopOrCancel(uint64_t id) const {
  absl::MutexLock lock(&mu_);
  return stopping_ || cancel_requested_.contains(id);
}

std::optional<uint64_t> BackfillRunner::NextBackfill() {
  absl::MutexLock lock(&mu_);
  std::optional<uint64_t> next;
  const auto pick = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopping_) return true;
    for (const char* state : {"running", "queued"}) {
      for (const v1::BackfillInfo& info : list_.backfills()) {
        if (info.state() == state) {
          next = info.id();
          return true;
        }
      }
    }
    return false;
  };
  mu_.AwaitWithTimeout(absl::Condition(&pick), absl::Seconds(1));
  if (stopping_) return std::nullopt;
  return next;
}

void BackfillRunner::Run() {
  absl::Duration backoff = absl::Milliseconds(500);
  while (true) {
    std::optional<uint64_t> id = NextBackfill();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    if (!id.has_value()) continue;
    absl::Status ran = RunBackfill(*id);
    if (ran.ok()) {
      backoff = absl::Milliseconds(500);
      continue;
    }
    // PostgreSQL unreachable, or the log could not be written: the backfill stays running and
    // is tried again, as the source retries.
    spdlog::warn("event=backfill_retrying id={} error=\"{}\" in={}", *id,
                 EscapeForLog(ran.message()), absl::FormatDuration(backoff));
    {
      absl::MutexLock persist(&persist_mu_);
      Update(*id, [&ran](v1::BackfillInfo& info) {
        info.set_error(absl::StrCat("retrying: ", ran.message()));
      }).IgnoreError();
    }
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

absl::Status BackfillRunner::RunBackfill(uint64_t id) {
  v1::BackfillInfo info;
  {
    absl::MutexLock lock(&mu_);
    info = *Find(list_, id);
  }
  absl::StatusOr<std::unique_ptr<PgConnection>> conn =
      PgConnection::Connect(options_.conninfo, PgConnection::Mode::kPlain);
  if (!conn.ok()) return conn.status();
  TypeCatalog types;
  if (absl::Status s = LoadTypes(**conn, &types); !s.ok()) return s;
  absl::StatusOr<ResolvedBackfill> resolved =
      ResolveBackfill(**conn, filter_, options_.publication, info.request());
  const auto finish = [&](const std::string& state, const std::string& error) {
    absl::MutexLock persist(&persist_mu_);
    absl::Status s = Update(id, [&](v1::BackfillInfo& done) {
      done.set_state(state);
      done.set_error(error);
      ToProtoTimestamp(absl::Now(), done.mutable_finished_at());
    });
    absl::MutexLock lock(&mu_);
    cancel_requested_.erase(id);
    return s;
  };
  if (!resolved.ok()) {
    if (absl::IsUnavailable(resolved.status())) return resolved.status();
    // The table went away or changed its key since the backfill was queued.
    spdlog::warn("event=backfill_failed {} error=\"{}\"", Describe(info),
                 EscapeForLog(resolved.status().message()));
    return finish("failed", std::string(resolved.status().message()));
  }
  if (info.state() == "queued") {
    absl::MutexLock persist(&persist_mu_);
    {
      absl::MutexLock lock(&mu_);
      // Cancelled while it was being picked: Cancel() has written that already.
      if (Find(list_, id)->state() != "queued") return absl::OkStatus();
    }
    if (absl::Status s = Update(id,
                                [](v1::BackfillInfo& started) {
                                  started.set_state("running");
                                  ToProtoTimestamp(absl::Now(), started.mutable_started_at());
                                });
        !s.ok()) {
      return s;
    }
    spdlog::info("event=backfill_started {}", Describe(info));
  } else {
    spdlog::info("event=backfill_resumed {} after_key=\"{}\"", Describe(info),
                 EscapeForLog(absl::StrJoin(info.last_key(), ",")));
  }
  const absl::Time started = absl::Now();
  for (bool finished = false; !finished;) {
    if (StopOrCancel(id)) {
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return absl::OkStatus();  // goes on at the next start
      }
      spdlog::info("event=backfill_cancelled {} while=running", Describe(info));
      return finish("cancelled", "");
    }
    absl::Status chunk = RunChunk(**conn, *resolved, types, id, &finished);
    if (absl::IsCancelled(chunk)) continue;  // stopped or cancelled while waiting
    if (!chunk.ok()) {
      if (absl::IsUnavailable(chunk) || absl::IsDataLoss(chunk)) return chunk;
      spdlog::warn("event=backfill_failed {} error=\"{}\"", Describe(info),
                   EscapeForLog(chunk.message()));
      return finish("failed", std::string(chunk.message()));
    }
  }
  v1::BackfillInfo done;
  {
    absl::MutexLock lock(&mu_);
    done = *Find(list_, id);
    cancel_requested_.erase(id);  // a cancel that came during the last chunk
  }
  spdlog::info(
      "event=backfill_done {} chunks={} rows_read={} rows_appended={} rows_superseded={} "
      "seconds={:.2f}",
      Describe(done), done.chunks(), done.rows_read(), done.rows_appended(), done.rows_superseded(),
      absl::ToDoubleSeconds(absl::Now() - started));
  return absl::OkStatus();
}

bool BackfillRunner::AwaitSourcePast(uint64_t lsn, uint64_t id) {
  while (source_status_().confirmed_flush_lsn < lsn) {
    if (StopOrCancel(id)) return false;
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), kStreamPoll);
  }
  return true;
}

absl::Status BackfillRunner::RunChunk(PgConnection& conn, const ResolvedBackfill& backfill,
                                      const TypeCatalog& types, uint64_t id, bool* finished) {
  std::vector<std::string> after;
  {
    absl::MutexLock lock(&mu_);
    const v1::BackfillInfo* info = Find(list_, id);
    after.assign(info->last_key().begin(), info->last_key().end());
  }
  // Synthetic changes appended after this point may be newer than the chunk's rows.
  const Position read_from = log_->Head();
  const v1::Change described = DescribeTable(backfill.schema, backfill.table, backfill.shape);
  absl::StatusOr<BackfillChunk> chunk =
      ReadBackfillChunk(conn, backfill.shape, types, described, backfill.range, after,
                        backfill.chunk_rows, kChunkBytes);
  if (!chunk.ok()) return chunk.status();
  // Every transaction the snapshot saw must be in the log before the rows are judged against it.
  if (!AwaitSourcePast(chunk->seen_through, id)) return absl::CancelledError("backfill stopped");
  for (v1::Change& row : chunk->rows) row.set_backfill(id);
  const PgSnapshot& snapshot = chunk->snapshot;
  const ChangeLog::SupersedeJudge supersedes = [&snapshot, read_from](const Position& position,
                                                                      const v1::Change* newest) {
    // A purged tombstone: a delete the snapshot cannot have seen, or the row would be gone.
    if (newest == nullptr) return true;
    // Synthetic changes carry no transaction: newer than the rows if written after the read.
    if (newest->xid() == 0) return position > read_from;
    return !snapshot.Sees(newest->xid());
  };
  const uint64_t rows_read = chunk->rows.size();
  absl::MutexLock persist(&persist_mu_);
  v1::BackfillList list;
  {
    absl::MutexLock lock(&mu_);
    list = list_;
  }
  // The appended rows and the progress they make are written together.
  *finished = chunk->last;
  const auto progress =
      [&](const ChangeLog::ReadsAppended& appended) -> ChangeLog::MetadataUpdates {
    const std::string stored = Updated(list, id, [&](v1::BackfillInfo& info) {
      info.set_chunks(info.chunks() + 1);
      info.set_rows_read(info.rows_read() + rows_read);
      info.set_rows_appended(info.rows_appended() + appended.appended);
      info.set_rows_superseded(info.rows_superseded() + appended.superseded);
      if (appended.appended > 0) {
        if (info.first_cursor().empty()) info.set_first_cursor(FormatCursor(appended.first));
        info.set_last_cursor(FormatCursor(appended.last));
      }
      if (!chunk->last_key.empty()) {
        info.clear_last_key();
        for (const std::string& value : chunk->last_key) info.add_last_key(value);
      }
      info.clear_error();
      if (chunk->last) {
        info.set_state("done");
        ToProtoTimestamp(absl::Now(), info.mutable_finished_at());
      }
    });
    return {{kBackfillsKey, stored}};
  };
  absl::StatusOr<ChangeLog::ReadsAppended> appended =
      log_->AppendReads(std::move(chunk->rows), supersedes, progress);
  if (!appended.ok()) return appended.status();
  WALFEED_FAULT_POINT("backfill.chunk_appended");
  absl::MutexLock lock(&mu_);
  list_ = std::move(list);
  spdlog::debug("event=backfill_chunk id={} rows={} appended={} superseded={} snapshot={}", id,
                rows_read, appended->appended, appended->superseded, snapshot.ToString());
  return absl::OkStatus();
}

}  // namespace walfeed
