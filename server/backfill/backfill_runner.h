// BackfillRunner: runs the backfills (Admin.Backfill) one at a time, on a thread of its own, while
// the source streams on; the DBLog watermark technique without writing to the database.
//
// Each chunk of a backfill is read in key order under a snapshot of its own (backfill_chunk.h).
// The runner waits until the source has confirmed the WAL up to the chunk's `seen_through`, so
// every transaction the chunk's rows reflect is in the log, then appends the rows right after the
// log's head (ChangeLog::AppendReads), leaving out each row whose newest change in the log the
// snapshot did not see (a transaction still running or begun after it, whose change the log
// delivers before the row and which the row would take back in time) or that another synthetic
// change wrote after the chunk was read. So:
// - a row is never delivered older than a change of it delivered before it: changes of one row
//   commit in row-lock order, so a snapshot that saw the newest change saw every older one;
// - every row of the range that exists throughout the backfill is delivered as a READ or is
//   superseded by a change of it in the feed; applying the feed from the backfill's first change
//   gives PostgreSQL's rows.
// Durable and resumable: the list of backfills (metadata key "backfills") is written in the same
// synced write as each chunk's rows, with the last key done, so a restart goes on after the last
// appended chunk and never appends a chunk twice. Thread-safe.
#ifndef WALFEED_SERVER_BACKFILL_BACKFILL_RUNNER_H_
#define WALFEED_SERVER_BACKFILL_BACKFILL_RUNNER_H_

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/backfill/backfill_validation.h"
#include "server/core/backfill_control.h"
#include "server/core/source_status.h"
#include "server/log/change_log.h"
#include "server/source/source_options.h"
#include "server/source/table_filter.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

class BackfillRunner final : public BackfillControl {
 public:
  // Reads the stored backfills of `log`, which must outlive the runner, as `source_status` (the
  // source's confirmed position) must. DataLoss when the record cannot be read; InvalidArgument
  // when the table filters in `options` do not parse.
  static absl::StatusOr<std::unique_ptr<BackfillRunner>> Load(
      const SourceOptions& options, ChangeLog* log, std::function<SourceStatus()> source_status);
  ~BackfillRunner() override;

  // Runs the queued backfills (the one interrupted by a restart first) until Stop().
  void Start();
  // Ends after the chunk being appended; a running backfill goes on at the next Start().
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<v1::BackfillInfo> Enqueue(const v1::BackfillRequest& request) override
      ABSL_LOCKS_EXCLUDED(persist_mu_, mu_);
  absl::StatusOr<v1::BackfillInfo> Cancel(uint64_t id) override
      ABSL_LOCKS_EXCLUDED(persist_mu_, mu_);
  std::vector<v1::BackfillInfo> List() const override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  BackfillRunner(const SourceOptions& options, TableFilter filter, ChangeLog* log,
                 std::function<SourceStatus()> source_status);

  void Run();
  // The next backfill to run (running before queued), nullopt when none; waits for one.
  std::optional<uint64_t> NextBackfill() ABSL_LOCKS_EXCLUDED(mu_);
  // Runs backfill `id` to its end, cancellation or failure; an Unavailable error means
  // PostgreSQL could not be reached and the backfill stays running, to be retried.
  absl::Status RunBackfill(uint64_t id);
  // Reads the chunk after `info`'s last key, waits for the stream to pass it, appends it.
  absl::Status RunChunk(PgConnection& conn, const ResolvedBackfill& backfill,
                        const TypeCatalog& types, uint64_t id, bool* finished);
  // Waits until the source has confirmed `lsn`; false when stopped or cancelled first.
  bool AwaitSourcePast(uint64_t lsn, uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Applies `update` to backfill `id` and writes the list durably (alone).
  absl::Status Update(uint64_t id, const std::function<void(v1::BackfillInfo&)>& update)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(persist_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  // The list with `update` applied to `id`, trimmed to the newest finished, serialized.
  std::string Updated(v1::BackfillList& list, uint64_t id,
                      const std::function<void(v1::BackfillInfo&)>& update) const;
  bool StopOrCancel(uint64_t id) const ABSL_LOCKS_EXCLUDED(mu_);

  const SourceOptions options_;
  const TableFilter filter_;
  ChangeLog* const log_;
  const std::function<SourceStatus()> source_status_;
  std::thread thread_;

  // Held while the list is changed and written, so writes never cross (before mu_).
  absl::Mutex persist_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  v1::BackfillList list_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> cancel_requested_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_BACKFILL_BACKFILL_RUNNER_H_
