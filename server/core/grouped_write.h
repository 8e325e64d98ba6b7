// GroupedWrite: makes a small table that one mutex guards durable, one write at a time, with the
// changes of every caller that waits meanwhile in one write (group commit). The named consumers'
// cursors and the push subscriptions use it: a cursor moves many times a second, a write costs a
// sync.
//
// Promise: Persist() returns OK only once a write that began after the caller's last Changed() is
// durable. Its counters are guarded by the caller's mutex (the one passed to Persist()).
#ifndef WALFEED_SERVER_CORE_GROUPED_WRITE_H_
#define WALFEED_SERVER_CORE_GROUPED_WRITE_H_

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace walfeed {

class GroupedWrite {
 public:
  // The table changed; call with its mutex held.
  void Changed() { ++changed_; }

  // Call with `mu` held, after Changed(). The first caller encodes the whole table (under `mu`)
  // and writes it with `mu` released; the others wait for that write, or write next.
  absl::Status Persist(absl::Mutex& mu, absl::FunctionRef<std::string()> encode,
                       absl::FunctionRef<absl::Status(const std::string&)> write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const uint64_t mine = changed_;
    while (written_ < mine) {
      if (writing_) {
        mu.Await(absl::Condition(
            +[](bool* writing) { return !*writing; }, &writing_));
        continue;
      }
      // Everything changed so far goes in this one write.
      writing_ = true;
      const uint64_t covers = changed_;
      const std::string table = encode();
      mu.Unlock();
      const absl::Status written = write(table);
      mu.Lock();
      writing_ = false;
      if (!written.ok()) return written;
      written_ = std::max(written_, covers);
    }
    return absl::OkStatus();
  }

 private:
  uint64_t changed_ = 0;
  uint64_t written_ = 0;
  bool writing_ = false;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_GROUPED_WRITE_H_
