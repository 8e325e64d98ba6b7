// TableCapture: which captured tables have their existing rows in the log, which must have them
// read before their changes stream, and the durable record of it (kCapturedTablesKey in the
// sink's metadata, in CapturedTables' form).
//
// A table the publication gains after the first start is "added": its existing rows are read
// (Source::SnapshotAddedTables) before streaming goes on, so a consumer never sees an UPDATE of a
// row it never saw. A change of a table not on the record that arrives while streaming ends the
// session (Aborted) so that the next one reads the table first; a table that does so a second
// time (the publication does not list it, so it is never read) is streamed as it is, and so is
// every new table under --snapshot=never. The record is written only when it changes (a
// reconnect writes nothing, say to a full disk).
// Not thread-safe: it belongs to the thread that runs the source (start-up, then streaming).
#ifndef WALFEED_SERVER_SOURCE_TABLE_CAPTURE_H_
#define WALFEED_SERVER_SOURCE_TABLE_CAPTURE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "server/core/table_name.h"
#include "server/core/transaction_sink.h"
#include "server/source/captured_tables.h"
#include "server/source/source_options.h"

namespace walfeed {

class TableCapture {
 public:
  using TableList = std::vector<std::pair<std::string, std::string>>;  // (schema, table)

  // `sink` holds the record and must outlive this.
  TableCapture(TransactionSink* sink, SnapshotMode mode) : sink_(sink), mode_(mode) {}

  // At each (re)connect: loads the record for the included published `tables`. Unless the
  // initial snapshot is pending (it reads them all), a table missing from the record becomes
  // added, or is taken as it is when nothing was recorded yet or under --snapshot=never.
  absl::Status Load(const std::vector<TableName>& tables, bool snapshot_pending);

  // The tables whose existing rows must be read before streaming.
  const TableList& added() const { return added_; }

  // Nothing is added any more: a resynchronisation read every table.
  void ClearAdded() { added_.clear(); }
  // `tables` have their rows in the log (or need not): on the record from now on, no longer
  // added. Store() writes the record; Encode() gives it for a write of the caller's.
  void MarkCaptured(TableList tables);  // a copy: `tables` may be added() itself
  absl::Status Store();
  std::string Encode() const { return captured_.Encode(); }

  // While streaming, a change of the included table `name` arrived: Aborted when its rows must
  // be read first (table_added() then says so).
  absl::Status CheckStreamed(const TableName& name);
  // True once after CheckStreamed() ended a session for a new table.
  bool TakeTableAdded() { return std::exchange(table_added_, false); }

 private:
  TransactionSink* const sink_;
  const SnapshotMode mode_;
  CapturedTables captured_;
  TableList added_;
  bool table_added_ = false;
  // Tables that ended a session as added once; a second time they are streamed as they are.
  absl::flat_hash_set<TableName> unlisted_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_TABLE_CAPTURE_H_
