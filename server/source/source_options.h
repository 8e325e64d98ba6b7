// SourceOptions: how the source connects to PostgreSQL and batches what it receives.
// Defaults are written here; Validate() rejects bad values once, at start.
#ifndef WALFEED_SERVER_SOURCE_SOURCE_OPTIONS_H_
#define WALFEED_SERVER_SOURCE_SOURCE_OPTIONS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace walfeed {

// Whether the rows that exist when walfeed first starts are read into the feed.
enum class SnapshotMode { kInitial, kNever };

// What walfeed does when the log holds changes but the slot is gone or invalidated.
enum class OnSlotLost {
  // Refuse to go on, with a sentence naming the way out.
  kFail,
  // Create a new slot and append the differences between the log and PostgreSQL's rows.
  kResync,
};

struct SourceOptions {
  // libpq conninfo ("host=... dbname=..." or a postgresql:// URI). Never logged.
  std::string conninfo;
  // Logical replication slot (created with pgoutput when missing).
  std::string slot = "walfeed";
  // Publication (created FOR ALL TABLES when missing).
  std::string publication = "walfeed";
  // kInitial: on first start (empty log, new slot) deliver the existing rows as READ changes,
  // consistent with the slot, before any streamed change.
  SnapshotMode snapshot = SnapshotMode::kInitial;
  // kResync: consumers keep their cursors and converge to PostgreSQL's rows; kFail leaves the
  // feed stale until an operator acts, and the only way on is a new log everyone re-reads.
  OnSlotLost on_slot_lost = OnSlotLost::kResync;
  // Which published tables reach the log ("schema.table" globs; empty include means all) and
  // which columns never do ("schema.table.column"). See TableFilter.
  std::vector<std::string> include_tables;
  std::vector<std::string> exclude_tables;
  std::vector<std::string> exclude_columns;
  // How often a status update goes to PostgreSQL even when nothing asks for one.
  absl::Duration status_interval = absl::Seconds(10);
  // Reconnect backoff after a lost connection: doubles from min up to max.
  absl::Duration reconnect_min = absl::Milliseconds(500);
  absl::Duration reconnect_max = absl::Seconds(30);
  // Decoded changes take about this many times the bytes pgoutput sent for them (column names,
  // types and cursors repeated per change, each a small allocation; measured on 1M-row
  // transactions of three columns). Memory budgets below are in decoded bytes, estimated so.
  static constexpr size_t kDecodedBytesPerWireByte = 4;
  static size_t DecodedBytes(size_t wire_bytes) { return wire_bytes * kDecodedBytesPerWireByte; }

  // Group commit: transactions wait here while the previous group is synced; decoding pauses
  // when this many (decoded) bytes are waiting, which bounds memory.
  size_t max_queued_bytes = 16 << 20;
  // A transaction whose decoded changes would take more than this is not held whole: its changes
  // so far are staged in the log (invisible until its commit) and their memory is freed.
  size_t max_transaction_bytes = 16 << 20;

  absl::Status Validate() const;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_SOURCE_OPTIONS_H_
