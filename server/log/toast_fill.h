// ToastFiller: fills in the unchanged TOASTed values of UPDATEs as they are appended (internal
// to server/log/).
//
// PostgreSQL leaves a large value out of an UPDATE that did not change it. The filler takes the
// value from the newest image of that row the log holds: the UPDATE's own old row (REPLICA
// IDENTITY FULL), an earlier change in the same append, or the row's newest stored change found
// through the per-key index (which must be current: use it with the append lock held). A value
// stays marked unchanged_toast unless an earlier image provably holds it: the image must be of
// the same relation (relation_id) and column type, and newer than the table's last TRUNCATE, its
// last change the index does not follow (REPLICA IDENTITY FULL or NOTHING) and its last
// relation_redescribed change (a new replication session, DDL, a rewrite: what walfeed held may
// no longer match the table). When in doubt, the marker, never a guess. After a key-changing
// UPDATE the image is looked up under the old key.
#ifndef WALFEED_SERVER_LOG_TOAST_FILL_H_
#define WALFEED_SERVER_LOG_TOAST_FILL_H_

#include <deque>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "server/log/change_log_state.h"

namespace walfeed {

class ToastFiller {
 public:
  explicit ToastFiller(const ChangeLog::Impl* impl) : impl_(impl) {}

  // Whether `change` is an UPDATE with a value left out.
  static bool NeedsFill(const v1::Change& change);

  // The change to store in place of `change`: `change` itself, or a filled copy owned by the
  // filler. Call for every change of an append, in order.
  absl::StatusOr<const v1::Change*> Process(const v1::Change& change);

 private:
  absl::Status FillFrom(const v1::Change& image, v1::Change* change) const;
  // No image of `table_key` from before here is used for the rest of this append.
  void EndImages(const std::string& table_key);
  // The newest stored image of `row_key` in `table_key`, or nullopt.
  absl::StatusOr<std::optional<v1::Change>> StoredImage(const std::string& row_key,
                                                        const std::string& table_key) const;

  const ChangeLog::Impl* const impl_;
  std::deque<v1::Change> filled_;
  // Earlier changes of this append by row key (nullptr: the row was deleted).
  absl::flat_hash_map<std::string, const v1::Change*> recent_;
  // Tables truncated, or changed in a way the index does not follow, earlier in this append.
  absl::flat_hash_set<std::string> ended_tables_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_LOG_TOAST_FILL_H_
