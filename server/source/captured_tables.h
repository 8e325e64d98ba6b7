// CapturedTables: the tables whose existing rows are in the log (or need not be), and the form
// in which that list is stored beside the log (under kCapturedTablesKey, metadata_keys.h).
//
// A published table missing from the list is new: its existing rows get read before its changes.
// The stored form is versioned and length-prefixed ("tables-v2:" then "<n>:<schema><n>:<table>"
// per table), so any identifier survives it, and an empty list is distinct from "never
// recorded" (""). A list written by older versions (one "schema.table" per line) is still read:
// a published table counts as captured when its dotted form is on it. Thread-compatible.
#ifndef WALFEED_SERVER_SOURCE_CAPTURED_TABLES_H_
#define WALFEED_SERVER_SOURCE_CAPTURED_TABLES_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/table_name.h"

namespace walfeed {

class CapturedTables {
 public:
  // Reads a stored list; `published` resolves an older list's dotted names. Fails on a list that
  // is neither form (a corrupt record), naming it.
  static absl::StatusOr<CapturedTables> Parse(absl::string_view stored,
                                              const std::vector<TableName>& published);

  // True when nothing was ever recorded (the stored value was "").
  bool never_recorded() const { return never_recorded_; }
  bool contains(const TableName& name) const { return tables_.contains(name); }
  // True when `name` was not there before.
  bool insert(const TableName& name);
  size_t size() const { return tables_.size(); }

  std::string Encode() const;

 private:
  bool never_recorded_ = true;
  absl::flat_hash_set<TableName> tables_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_CAPTURED_TABLES_H_
