// compaction_bench: the change log's size before and after compaction, against the size of a
// log that holds only the live rows, and how long a pass takes.
//
//   compaction_bench --dir DIR --updates N --keys K [--row-bytes 200]
//
// Fills a ChangeLog in DIR with N row changes spread round-robin over K primary keys (the first
// K are inserts), rows of about --row-bytes, in transactions of 100 changes, then runs one
// compaction pass with no lag. The reference is a second log holding just the K newest rows,
// compacted the same way: what the log would be if it only ever stored the current state.
// Prints one JSON object on stdout.
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_flags.h"
#include "bench/synthetic_log.h"
#include "server/log/change_log.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {

using walfeed::bench::DirectoryBytes;
using walfeed::bench::Fill;
// Appends are not fsynced: the pass's cost, not fsync's, is what is measured.
using walfeed::bench::OpenUnsyncedLog;

int Fail(const absl::Status& status) {
  std::cerr << "compaction_bench: " << status << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // stdout carries the JSON result only: RocksDB's warnings (a write stall, say) go to stderr.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("compaction_bench"));
  std::string dir;
  uint64_t updates = 1'000'000;
  uint64_t keys = 10'000;
  uint64_t row_bytes = 200;
  if (!walfeed::bench::ParseBenchFlags(
          argc, argv, "compaction_bench", {{"--dir", &dir}},
          {{"--updates", &updates}, {"--keys", &keys}, {"--row-bytes", &row_bytes}})) {
    return 2;
  }
  if (dir.empty() || keys == 0 || updates < keys) {
    std::cerr << "usage: compaction_bench --dir DIR --updates N --keys K [--row-bytes B] "
                 "(N >= K > 0)\n";
    return 2;
  }
  const absl::Time committed = absl::Now() - absl::Hours(1);
  walfeed::CompactionPolicy policy;
  policy.lag = absl::ZeroDuration();

  const std::string full_dir = dir + "/full";
  absl::StatusOr<std::unique_ptr<walfeed::ChangeLog>> log = OpenUnsyncedLog(full_dir);
  if (!log.ok()) return Fail(log.status());
  const absl::Time fill_start = absl::Now();
  if (absl::Status s = Fill(**log, updates, keys, 0, row_bytes, committed); !s.ok()) return Fail(s);
  const absl::Duration fill_time = absl::Now() - fill_start;
  const uint64_t dir_before = DirectoryBytes(full_dir);
  absl::StatusOr<walfeed::v1::CompactionResult> result = (*log)->Compact(policy, absl::Now());
  if (!result.ok()) return Fail(result.status());
  log->reset();  // closed and reopened: what stays on disk, WAL replayed and flushed
  log = OpenUnsyncedLog(full_dir);
  if (!log.ok()) return Fail(log.status());
  const uint64_t dir_after = DirectoryBytes(full_dir);

  // The reference: only the K newest rows, written and compacted the same way.
  const std::string live_dir = dir + "/live";
  absl::StatusOr<std::unique_ptr<walfeed::ChangeLog>> live = OpenUnsyncedLog(live_dir);
  if (!live.ok()) return Fail(live.status());
  if (absl::Status s = Fill(**live, keys, keys, (updates - 1) / keys, row_bytes, committed);
      !s.ok()) {
    return Fail(s);
  }
  absl::StatusOr<walfeed::v1::CompactionResult> reference = (*live)->Compact(policy, absl::Now());
  if (!reference.ok()) return Fail(reference.status());
  live->reset();
  live = OpenUnsyncedLog(live_dir);
  if (!live.ok()) return Fail(live.status());
  const uint64_t live_dir_bytes = DirectoryBytes(live_dir);

  const double took = static_cast<double>(result->took().seconds()) +
                      static_cast<double>(result->took().nanos()) / 1e9;
  std::cout << "{\"updates\": " << updates << ", \"keys\": " << keys
            << ", \"row_bytes\": " << row_bytes
            << ", \"fill_seconds\": " << absl::ToDoubleSeconds(fill_time)
            << ", \"compaction_seconds\": " << took
            << ", \"changes_per_second\": " << (took > 0 ? updates / took : 0)
            << ", \"superseded_removed\": " << result->superseded_removed()
            << ", \"live_keys\": " << result->live_keys()
            << ", \"log_bytes_before\": " << result->log_bytes_before()
            << ", \"log_bytes_after\": " << result->log_bytes_after()
            << ", \"dir_bytes_before\": " << dir_before << ", \"dir_bytes_after\": " << dir_after
            << ", \"live_rows_dir_bytes\": " << live_dir_bytes << "}\n";
  return 0;
}
