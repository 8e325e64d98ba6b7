// ChangeLog: the durable, ordered change log, stored in RocksDB.
//
// Promises:
// - Append() writes whole transactions, the source's resume point and the new head in one
//   atomic, synced WriteBatch: after a crash either all of it is there or none of it.
// - Records are keyed by Position and read back in position order; positions only grow.
// - Readers see nothing above the head: staged changes (the initial snapshot) stay invisible
//   until CommitStaged(), and whatever is staged when the log reopens is discarded.
// - Head listeners are called after every successful append with the new head, on the
//   appending thread, outside the log's state lock but while appends are serialized (the append
//   lock is held): they must be quick (signal a thread, do not read the log inline) and must
//   never append.
// - Compact() only removes changes, never moves one: positions and order stay. It removes what
//   CompactionPolicy allows and records the purge point, the newest removed change that a
//   resuming reader could not do without (a tombstone, or a change that is never merged).
// Thread-safe: one appender at a time (appends are serialized), one compaction pass at a time,
// any number of readers, all concurrently.
// - A change is stored no larger than about 1 MiB: larger values travel out of line, each under a
//   reference the change holds (out_of_line_values.h), read in chunks with ReadLargeValue() and
//   removed with the change.
// It knows nothing of PostgreSQL's wire formats or of gRPC; a change is stored as the serialized
// `walfeed.v1.Change` so a reader can send it on as stored.
#ifndef WALFEED_SERVER_LOG_CHANGE_LOG_H_
#define WALFEED_SERVER_LOG_CHANGE_LOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/core/logged_rows.h"
#include "server/core/position.h"
#include "server/core/transaction_sink.h"
#include "server/core/value_ref.h"
#include "server/log/change_log_options.h"
#include "server/log/compaction_policy.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

// One stored change: its position and its serialized `walfeed.v1.Change`.
struct LogRecord {
  Position position;
  std::string change;
};

// Counters since the log was opened.
struct ChangeLogStats {
  uint64_t changes_appended = 0;
  uint64_t transactions_appended = 0;
  // Append() calls, each one synced WriteBatch: transactions_appended / appends is the
  // group-commit factor.
  uint64_t appends = 0;
  // The newest appended transaction's commit time, and when it was appended (InfinitePast before
  // the first append): the difference is how far behind PostgreSQL the log was then.
  absl::Time newest_commit_time = absl::InfinitePast();
  absl::Time newest_append_time = absl::InfinitePast();
};

// What a head listener hears: the head moved from `previous` to `head`, and the changes in
// between belong to `tables` (TableKey(schema, table), each once; changes without a table, such
// as messages, name none), or to tables not told when `all_tables` (changes copied as stored,
// staged parts, or more tables than are listed).
struct HeadAdvance {
  Position previous;
  Position head;
  absl::Span<const std::string> tables;  // valid during the call only
  bool all_tables = true;
};

class ChangeLog : public TransactionSink, public LoggedRows {
 public:
  using HeadListener = std::function<void(const HeadAdvance& advance)>;

  // Opens the log in options.path, creating it when missing (change_log_open.cc). A log of an
  // older format is upgraded; one of a newer or unreadable format is refused with a sentence
  // (FailedPrecondition, DataLoss) before anything in it changes (log_format.h).
  static absl::StatusOr<std::unique_ptr<ChangeLog>> Open(const ChangeLogOptions& options);
  ~ChangeLog() override;

  ChangeLog(const ChangeLog&) = delete;
  ChangeLog& operator=(const ChangeLog&) = delete;

  // TransactionSink. Fails (and stores nothing) when a transaction's commit LSN is not above the
  // head, or its changes' positions do not match it.
  absl::Status Append(absl::Span<const Transaction> transactions, uint64_t resume_lsn) override;
  uint64_t ResumeLsn() const override;
  // Newest committed position; zero when the log is empty.
  Position Head() const override;
  absl::Status StageChanges(absl::Span<const v1::Change> changes) override;
  absl::Status CommitStaged(const Position& last, uint64_t resume_lsn,
                            const MetadataUpdates& metadata) override;
  absl::Status DiscardStaged() override;
  std::string Metadata(absl::string_view key) const override;
  absl::Status SetMetadata(absl::string_view key, absl::string_view value) override;
  // Several keys in one atomic, synced write.
  absl::Status SetMetadata(const MetadataUpdates& updates);

  // LoggedRows (logged_rows.cc).
  absl::Status CatchUpRows() override;
  absl::StatusOr<bool> RowsFollowedByKey(const v1::Change& table) const override;
  absl::StatusOr<std::optional<v1::Change>> LiveRow(const v1::Change& row) const override;
  absl::StatusOr<bool> LargeValueEquals(const v1::LargeValue& large,
                                        const v1::Column& column) const override;
  absl::Status NoteSeenRow(const v1::Change& row) override;
  absl::Status VisitUnseenLiveRows(const v1::Change& table, const RowVisitor& visit) const override;
  absl::Status ForgetSeenRows() override;

  // A backfill's append (read_rows_append.cc): `rows` are READ changes of keyed tables read from
  // the source, without positions. Under the append lock, with the per-key index current, each row
  // is judged by its newest change in the log (the row's own, or its table's newest TRUNCATE if
  // that is later): when `supersedes` says that change may be newer than the row, the row is left
  // out (a consumer has that change already, and the row would take it back in time). The rest are
  // appended as one transaction right after the head (FirstSyntheticPosition), indexed, in one
  // synced write with the metadata `metadata` gives for the outcome (written also when every row
  // was left out). `supersedes`
  // gets the change's position and the change as stored, or nullptr when compaction removed it
  // (a purged tombstone).
  struct ReadsAppended {
    Position first;  // zero when nothing was appended
    Position last;
    uint64_t appended = 0;
    uint64_t superseded = 0;
  };
  using SupersedeJudge = std::function<bool(const Position& position, const v1::Change* newest)>;
  absl::StatusOr<ReadsAppended> AppendReads(
      std::vector<v1::Change> rows, const SupersedeJudge& supersedes,
      const std::function<MetadataUpdates(const ReadsAppended&)>& metadata);

  // A replica's append: records and value chunks another log stored (its replication stream),
  // written exactly as they were stored there (same positions, same bytes), with `metadata`, in
  // one atomic, synced write. The records must continue after the head (and after what is
  // staged). With `commit`, the head moves to the last record and everything staged before it
  // becomes visible; without it they stay staged: invisible, and discarded when the log reopens
  // (a transaction split between stream messages becomes visible whole). The per-key index
  // catches up later (CatchUpIndex()).
  struct StoredChunk {
    ValueRef ref;
    uint64_t offset = 0;
    std::string data;
  };
  absl::Status AppendStored(absl::Span<const StoredChunk> chunks,
                            absl::Span<const LogRecord> records, bool commit,
                            const MetadataUpdates& metadata);
  // A replica's log takes the id of the log it copies. Only while it holds nothing (committed or
  // staged) and before anything reads LogId().
  absl::Status AdoptLogId(absl::string_view log_id);

  // Appends to `out` the committed records whose position is >= `start`, in order, stopping
  // after `max_records` records or before the record that would take the change data read past
  // `max_bytes` (at least one record is read when there is one, however large).
  absl::Status Read(const Position& start, size_t max_records, size_t max_bytes,
                    std::vector<LogRecord>* out) const;
  // The same records handed to `visit` one at a time as views of RocksDB's buffers (valid only
  // during the call), without copying them; `visit` returns false to stop early.
  using RecordVisitor = std::function<bool(const Position& position, absl::string_view change)>;
  absl::Status Visit(const Position& start, size_t max_records, size_t max_bytes,
                     const RecordVisitor& visit) const;

  // The value stored out of line that `ref` names, as the change that holds it refers to it
  // (walfeed.v1.LargeValue: ref, size, kind). NotFound, with reason VALUE_NOT_FOUND, when no
  // committed change holds such a value: it never did, or compaction removed the change.
  absl::StatusOr<v1::LargeValue> FindLargeValue(const ValueRef& ref) const;
  // Up to `max_bytes` of that value from `offset`, never past the end of one stored chunk (256
  // KiB): empty at the end, or when the value is gone (compaction removed its change meanwhile).
  absl::StatusOr<std::string> ReadLargeValue(const ValueRef& ref, uint64_t offset,
                                             size_t max_bytes) const;

  // Every stored chunk of the out-of-line values of the committed changes at positions in
  // [first, last], in order: by position, then part, column index and offset (the order of
  // the refs' text forms within one change is not that order); from the chunk `start_at` (a ref
  // and an offset) on when given. `visit` returns false to stop.
  using ChunkVisitor =
      std::function<bool(const ValueRef& ref, uint64_t offset, absl::string_view data)>;
  absl::Status VisitValueChunks(
      const Position& first, const Position& last, const ChunkVisitor& visit,
      const std::optional<std::pair<ValueRef, uint64_t>>& start_at = std::nullopt) const;

  // Oldest stored position; zero when the log is empty.
  Position Oldest() const;

  // This log's identity (log_id.h): created with the data directory (or on the first open of
  // one written before logs had ids), the same after every reopen.
  const std::string& LogId() const;

  // Runs one compaction pass as of `now` (see CompactionPolicy) and returns what it did. Only
  // removes changes below the head; appends and reads go on meanwhile. Fails with
  // FailedPrecondition while another pass runs. Interrupted (by a crash, say), it leaves a
  // consistent log and the next pass finishes the work.
  // `cancel`, when given and set, stops the pass between batches (with Cancelled).
  absl::StatusOr<v1::CompactionResult> Compact(const CompactionPolicy& policy, absl::Time now,
                                               const std::atomic<bool>* cancel = nullptr);

  // Brings the per-key index up to the head, in short steps that let appends through between
  // them. Appends keep a current index current themselves; a staged snapshot or a transaction
  // staged in parts leaves it behind until this runs (the Compactor calls it every second).
  // `cancel`, when given and set, stops it between steps (with Cancelled).
  absl::Status CatchUpIndex(const std::atomic<bool>* cancel = nullptr);
  bool IndexIsCurrent() const;
  // Changes indexed per step of CatchUpIndex().
  static constexpr size_t kIndexStepRecords = 50000;

  // The newest position whose removal a resuming reader would miss (zero when none was ever
  // removed). A reader that holds state and has not yet read past it must start again from 0.
  Position PurgePoint() const;

  // Raises the purge point to `position` (never lowers it): a replica that copied another
  // instance's compacted log takes that log's purge point with it.
  absl::Status RaisePurgePoint(const Position& position);

  // The last compaction pass, also from before a restart.
  std::optional<v1::CompactionResult> LastCompaction() const;

  // Bytes the log takes on disk (changes and index), as RocksDB reports them.
  uint64_t DiskBytes() const;

  ChangeLogStats Stats() const;

  void AddHeadListener(HeadListener listener);

  // The internals, shared by the files that implement the log (server/log/change_log_state.h).
  struct Impl;

 private:
  explicit ChangeLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_CHANGE_LOG_H_
