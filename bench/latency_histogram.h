// LatencyHistogram: commit-to-receipt latencies of the live benchmarks' consumers
// (feed_followers, stream_follower), lock-free, with percentiles.
#ifndef WALFEED_BENCH_LATENCY_HISTOGRAM_H_
#define WALFEED_BENCH_LATENCY_HISTOGRAM_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace walfeed::bench {

// Latencies in 10 µs buckets up to 1 s, then 1 ms buckets up to 60 s (the last bucket holds
// everything later). Lock-free: every stream's callback adds to it.
class LatencyHistogram {
 public:
  void Add(int64_t micros, uint64_t count) {
    buckets_[Bucket(std::max<int64_t>(micros, 0))].fetch_add(count, std::memory_order_relaxed);
  }
  // The latency (ms) below which `fraction` of the samples lie.
  double PercentileMillis(double fraction) const {
    uint64_t total = 0;
    for (const auto& bucket : buckets_) total += bucket.load();
    const uint64_t rank = static_cast<uint64_t>(fraction * static_cast<double>(total));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i].load();
      if (seen > rank) return UpperMicros(i) / 1000.0;
    }
    return UpperMicros(kBuckets - 1) / 1000.0;
  }

 private:
  static constexpr size_t kFine = 100'000;   // 10 µs each: 0 .. 1 s
  static constexpr size_t kCoarse = 59'000;  // 1 ms each: 1 s .. 60 s
  static constexpr size_t kBuckets = kFine + kCoarse;
  static size_t Bucket(int64_t micros) {
    if (micros < 1'000'000) return static_cast<size_t>(micros / 10);
    return std::min(kBuckets - 1, kFine + static_cast<size_t>((micros - 1'000'000) / 1000));
  }
  static double UpperMicros(size_t bucket) {
    if (bucket < kFine) return static_cast<double>((bucket + 1) * 10);
    return 1e6 + static_cast<double>((bucket - kFine + 1) * 1000);
  }
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
};

}  // namespace walfeed::bench

#endif  // WALFEED_BENCH_LATENCY_HISTOGRAM_H_
