// compaction_load_bench: does ingest hold while a compaction pass runs over a large log?
//
//   compaction_load_bench --dir DIR --changes N --keys K [--rate 10000] [--seconds 20]
//                         [--row-bytes 200]
//
// Fills a ChangeLog in DIR with N row changes over K primary keys (synthetic_log.h), then appends
// transactions of 100 changes at --rate changes per second, first for --seconds without a pass
// (the baseline), then while one compaction pass (no lag) runs over the whole log, until it ends.
// Each append's latency is recorded: a pass that starved RocksDB's own compactions would let L0
// files pile up to the write stop and show as appends taking seconds. Prints one JSON object.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_flags.h"
#include "bench/synthetic_log.h"
#include "server/log/change_log.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {

struct Latencies {
  std::vector<double> millis;
  uint64_t changes = 0;

  double Quantile(double q) {
    if (millis.empty()) return 0;
    std::sort(millis.begin(), millis.end());
    return millis[std::min(millis.size() - 1, static_cast<size_t>(q * millis.size()))];
  }
  std::string Json(const char* name) {
    const double max = millis.empty() ? 0 : *std::max_element(millis.begin(), millis.end());
    const size_t stalls =
        std::count_if(millis.begin(), millis.end(), [](double ms) { return ms > 1000; });
    return absl::StrCat("\"", name, "\": {\"appends\": ", millis.size(), ", \"changes\": ", changes,
                        ", \"p50_ms\": ", Quantile(0.5), ", \"p99_ms\": ", Quantile(0.99),
                        ", \"max_ms\": ", max, ", \"appends_over_1s\": ", stalls, "}");
  }
};

// Appends transactions of kChangesPerTransaction updates at `rate` changes/s above the log's
// head until `stop` is set (or `duration` passes), recording each append's latency.
absl::Status AppendAtRate(walfeed::ChangeLog& log, uint64_t rate, uint64_t keys, size_t row_bytes,
                          absl::Duration duration, const std::atomic<bool>* stop, Latencies* out) {
  const absl::Duration interval =
      absl::Seconds(1) * walfeed::bench::kChangesPerTransaction / static_cast<double>(rate);
  const absl::Time start = absl::Now();
  absl::Time next = start;
  uint64_t round = 0;
  while ((stop == nullptr || !stop->load()) && absl::Now() - start < duration) {
    absl::SleepFor(next - absl::Now());
    next += interval;
    const uint64_t lsn = log.Head().lsn + 0x1000;
    walfeed::Transaction txn;
    txn.commit_lsn = lsn;
    txn.end_lsn = lsn + 0x30;
    for (uint32_t seq = 0; seq < walfeed::bench::kChangesPerTransaction; ++seq) {
      txn.changes.push_back(walfeed::bench::RowChange(lsn, seq, (round * 100 + seq) % keys,
                                                      1000000 + round, row_bytes, absl::Now()));
    }
    txn.changes.back().set_last_in_transaction(true);
    const absl::Time before = absl::Now();
    if (absl::Status s = log.Append({txn}, txn.end_lsn); !s.ok()) return s;
    out->millis.push_back(absl::ToDoubleMilliseconds(absl::Now() - before));
    out->changes += txn.changes.size();
    ++round;
  }
  return absl::OkStatus();
}

int Fail(const absl::Status& status) {
  std::cerr << "compaction_load_bench: " << status << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_logger_mt("compaction_load_bench"));
  std::string dir;
  uint64_t changes = 20'000'000;
  uint64_t keys = 1'000'000;
  uint64_t rate = 10'000;
  uint64_t seconds = 20;
  uint64_t row_bytes = 200;
  if (!walfeed::bench::ParseBenchFlags(argc, argv, "compaction_load_bench", {{"--dir", &dir}},
                                       {{"--changes", &changes},
                                        {"--keys", &keys},
                                        {"--rate", &rate},
                                        {"--seconds", &seconds},
                                        {"--row-bytes", &row_bytes}})) {
    return 2;
  }
  if (dir.empty() || keys == 0 || changes < keys || rate == 0) {
    std::cerr << "usage: compaction_load_bench --dir DIR --changes N --keys K [--rate R] "
                 "[--seconds S] [--row-bytes B] (N >= K > 0)\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<walfeed::ChangeLog>> log = walfeed::bench::OpenUnsyncedLog(dir);
  if (!log.ok()) return Fail(log.status());
  const absl::Time fill_start = absl::Now();
  if (absl::Status s =
          walfeed::bench::Fill(**log, changes, keys, 0, row_bytes, absl::Now() - absl::Hours(1));
      !s.ok()) {
    return Fail(s);
  }
  const absl::Duration fill_time = absl::Now() - fill_start;

  Latencies baseline;
  if (absl::Status s =
          AppendAtRate(**log, rate, keys, row_bytes, absl::Seconds(seconds), nullptr, &baseline);
      !s.ok()) {
    return Fail(s);
  }

  std::atomic<bool> pass_done{false};
  absl::StatusOr<walfeed::v1::CompactionResult> result;
  walfeed::CompactionPolicy policy;
  policy.lag = absl::ZeroDuration();
  const absl::Time pass_start = absl::Now();
  std::thread pass([&] {
    result = (*log)->Compact(policy, pass_start);
    pass_done = true;
  });
  Latencies during;
  const absl::Status appended =
      AppendAtRate(**log, rate, keys, row_bytes, absl::InfiniteDuration(), &pass_done, &during);
  pass.join();
  const absl::Duration pass_time = absl::Now() - pass_start;
  if (!appended.ok()) return Fail(appended);
  if (!result.ok()) return Fail(result.status());

  std::cout << "{\"changes\": " << changes << ", \"keys\": " << keys << ", \"rate\": " << rate
            << ", \"row_bytes\": " << row_bytes
            << ", \"fill_seconds\": " << absl::ToDoubleSeconds(fill_time)
            << ", \"pass_seconds\": " << absl::ToDoubleSeconds(pass_time)
            << ", \"superseded_removed\": " << result->superseded_removed() << ", "
            << baseline.Json("appends_without_pass") << ", " << during.Json("appends_during_pass")
            << "}\n";
  return 0;
}
