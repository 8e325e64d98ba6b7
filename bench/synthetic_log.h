// Synthetic change logs for the benchmarks that drive the log directly (compaction_bench,
// catchup_bench): row changes shaped like the ingest benchmark's (~200-byte rows of a
// `public.accounts` table keyed by an int8 `id`), written straight into a ChangeLog.
//
// Promises:
// - Deterministic: the same arguments give the same changes, byte for byte (the commit time is
//   an argument). The payload text varies per row and version so that compression does not make
//   rows free.
// - Fill() writes transactions of kChangesPerTransaction changes at strictly increasing commit
//   LSNs above the log's head, seq 0.. inside each, the last one marked last_in_transaction.
//   Change n (counting from 0 over all rounds) is row n % keys at version n / keys: an INSERT
//   the first time a key appears (version 0), an UPDATE after that. With keys >= count every
//   change is an INSERT of its own row, so compaction supersedes nothing.
// - OpenUnsyncedLog() opens a log whose appends are not fsynced: the benchmarks time compaction
//   and reads, not fsync. What it writes survives closing the log, not a machine crash.
// Not thread-safe: Fill() is one appender.
#ifndef WALFEED_BENCH_SYNTHETIC_LOG_H_
#define WALFEED_BENCH_SYNTHETIC_LOG_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/log/change_log.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {
namespace bench {

inline constexpr uint32_t kChangesPerTransaction = 100;

// One row change at (lsn, seq) of row `id` at `version` (an INSERT at version 0), whose payload
// column holds `row_bytes` letters.
v1::Change RowChange(uint64_t lsn, uint32_t seq, int64_t id, uint64_t version, size_t row_bytes,
                     absl::Time committed);

// Appends `count` changes over `keys` keys (see the promises above), starting at round
// `first_round`: the first change is row 0 at version `first_round`.
absl::Status Fill(ChangeLog& log, uint64_t count, uint64_t keys, uint64_t first_round,
                  size_t row_bytes, absl::Time committed);

// A ChangeLog in `path` (created when missing) whose appends are not fsynced.
absl::StatusOr<std::unique_ptr<ChangeLog>> OpenUnsyncedLog(const std::string& path);

// The size of every file under `dir`.
uint64_t DirectoryBytes(const std::string& dir);

}  // namespace bench
}  // namespace walfeed

#endif  // WALFEED_BENCH_SYNTHETIC_LOG_H_
