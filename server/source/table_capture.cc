#include "server/source/table_capture.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/core/metadata_keys.h"

namespace walfeed {

absl::Status TableCapture::Load(const std::vector<TableName>& tables, bool snapshot_pending) {
  added_.clear();
  absl::StatusOr<CapturedTables> stored =
      CapturedTables::Parse(sink_->Metadata(kCapturedTablesKey), tables);
  if (!stored.ok()) return stored.status();
  captured_ = std::move(*stored);
  if (snapshot_pending) return absl::OkStatus();
  // A log from before this record existed, or one that never wanted a snapshot, takes the tables
  // as they are now. An empty record is a record: tables published later are new.
  const bool first_record = captured_.never_recorded();
  bool changed = first_record;
  for (const TableName& name : tables) {
    if (captured_.contains(name)) continue;
    if (first_record || mode_ == SnapshotMode::kNever) {
      captured_.insert(name);
      changed = true;
      continue;
    }
    added_.emplace_back(name.schema, name.table);
  }
  return changed ? Store() : absl::OkStatus();
}

void TableCapture::MarkCaptured(TableList tables) {
  for (const auto& [schema, table] : tables) {
    captured_.insert(TableName{schema, table});
    added_.erase(std::remove(added_.begin(), added_.end(), std::make_pair(schema, table)),
                 added_.end());
  }
}

absl::Status TableCapture::Store() {
  return sink_->SetMetadata(kCapturedTablesKey, captured_.Encode());
}

absl::Status TableCapture::CheckStreamed(const TableName& name) {
  if (captured_.contains(name)) return absl::OkStatus();
  // Seen once already, and the publication does not list it: stream it rather than loop.
  if (mode_ == SnapshotMode::kNever || !unlisted_.insert(name).second) {
    captured_.insert(name);
    return Store();
  }
  // A table added to the publication while streaming: its existing rows are read (at the next
  // connection, before streaming resumes from the confirmed point) before its changes.
  table_added_ = true;
  return absl::AbortedError(
      absl::StrCat("table ", FormatTableName(name), " was added to the publication"));
}

}  // namespace walfeed
