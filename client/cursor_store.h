// Where a walfeed consumer keeps its place between runs: the cursor after the last change it
// handled and the id of the log that cursor belongs to (SubscribeResponse.log_id). Sent back on
// resume, the log id makes walfeed refuse the cursor (LOG_MISMATCH) when the feed's log is not
// the one it came from (a rebuilt data directory, another database) instead of streaming from a
// position that names other changes there.
#ifndef WALFEED_CLIENT_CURSOR_STORE_H_
#define WALFEED_CLIENT_CURSOR_STORE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace walfeed {

struct SavedCursor {
  std::string cursor;  // "" when nothing was saved yet
  std::string log_id;  // "" when saved before walfeed had log ids (or by hand)
};

class CursorStore {
 public:
  virtual ~CursorStore() = default;
  virtual absl::StatusOr<SavedCursor> Load() = 0;
  virtual absl::Status Save(const SavedCursor& saved) = 0;
};

// A cursor in a file of its own, replaced atomically (write a temporary file, sync, rename).
// The file holds the cursor on its first line and "log_id=<id>" on the second; a file of one
// line (a cursor alone, as older versions wrote) loads with no log id.
class FileCursorStore final : public CursorStore {
 public:
  explicit FileCursorStore(std::string path) : path_(std::move(path)) {}
  absl::StatusOr<SavedCursor> Load() override;
  absl::Status Save(const SavedCursor& saved) override;

 private:
  const std::string path_;
};

}  // namespace walfeed

#endif  // WALFEED_CLIENT_CURSOR_STORE_H_
