// What a row filter (SubscribeRequest.where, server/feed/row_filter.h) costs per change: a stream
// with a filter decodes each stored change it reads (into one reused message) and judges it; a
// stream without one sends the stored bytes untouched. Reports nanoseconds and heap allocations
// per change for a typical order row (6 columns) and condition.
//
//   build/bin/row_filter_bench [--benchmark_min_time=1]
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "google/protobuf/arena.h"
#include "server/feed/row_filter.h"
#include "walfeed/v1/walfeed.pb.h"

namespace {

std::atomic<uint64_t> allocations{0};

}  // namespace

// Counts every allocation through operator new (GCC cannot see that the replaced delete below
// frees what this replaced new took from malloc).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

std::string StoredOrder() {
  walfeed::v1::Change change;
  change.set_op(walfeed::v1::Change::UPDATE);
  change.set_schema("public");
  change.set_table("orders");
  change.set_lsn(0x16B3748);
  change.set_cursor("0/16B3748:3");
  change.set_key_kind(walfeed::v1::Change::PRIMARY_KEY);
  auto* id = change.add_key();
  id->set_name("id");
  id->set_int_(42);
  *change.add_after() = *id;
  auto add = [&](const char* name) {
    auto* column = change.add_after();
    column->set_name(name);
    return column;
  };
  add("status")->set_text("shipped");
  add("amount")->set_numeric("250.50");
  add("region")->set_text("eu-west");
  add("customer")->set_text("ada lovelace");
  add("placed_at")->mutable_timestamp()->set_seconds(1767225600);
  change.mutable_commit_time()->set_seconds(1767225600);
  return change.SerializeAsString();
}

void BM_Judge(benchmark::State& state, const char* where) {
  const std::string stored = StoredOrder();
  absl::StatusOr<walfeed::RowFilter> filter = walfeed::RowFilter::Parse(where);
  if (!filter.ok()) {
    state.SkipWithError(std::string(filter.status().message()).c_str());
    return;
  }
  walfeed::v1::Change scratch;
  scratch.ParseFromString(stored);  // warm: the reused message holds its fields
  const uint64_t before = allocations.load();
  for (auto _ : state) {
    scratch.ParseFromArray(stored.data(), static_cast<int>(stored.size()));
    benchmark::DoNotOptimize(filter->Judge(scratch));
  }
  state.counters["allocs_per_change"] = benchmark::Counter(
      static_cast<double>(allocations.load() - before), benchmark::Counter::kAvgIterations);
  state.counters["changes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_DecodeOnly(benchmark::State& state) {
  const std::string stored = StoredOrder();
  walfeed::v1::Change scratch;
  scratch.ParseFromString(stored);
  const uint64_t before = allocations.load();
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        scratch.ParseFromArray(stored.data(), static_cast<int>(stored.size())));
  }
  state.counters["allocs_per_change"] = benchmark::Counter(
      static_cast<double>(allocations.load() - before), benchmark::Counter::kAvgIterations);
}

// The reactor's way: decoded into an arena on a block of its own, reset for every change.
void BM_JudgeInArena(benchmark::State& state, const char* where) {
  const std::string stored = StoredOrder();
  absl::StatusOr<walfeed::RowFilter> filter = walfeed::RowFilter::Parse(where);
  if (!filter.ok()) {
    state.SkipWithError(std::string(filter.status().message()).c_str());
    return;
  }
  static char block[64 << 10];
  google::protobuf::ArenaOptions options;
  options.initial_block = block;
  options.initial_block_size = sizeof(block);
  const uint64_t before = allocations.load();
  for (auto _ : state) {
    google::protobuf::Arena arena(options);
    auto* change = google::protobuf::Arena::CreateMessage<walfeed::v1::Change>(&arena);
    change->ParseFromArray(stored.data(), static_cast<int>(stored.size()));
    benchmark::DoNotOptimize(filter->Judge(*change));
  }
  state.counters["allocs_per_change"] = benchmark::Counter(
      static_cast<double>(allocations.load() - before), benchmark::Counter::kAvgIterations);
  state.counters["changes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_DecodeOnly);
BENCHMARK_CAPTURE(BM_JudgeInArena, and_numeric, "status = 'shipped' AND amount > 100");
BENCHMARK_CAPTURE(BM_JudgeInArena, timestamp, "placed_at >= '2026-01-01 00:00:00+00'");
BENCHMARK_CAPTURE(BM_Judge, equality, "status = 'shipped'");
BENCHMARK_CAPTURE(BM_Judge, and_numeric, "status = 'shipped' AND amount > 100");
BENCHMARK_CAPTURE(BM_Judge, in_list, "region IN ('eu-west', 'eu-central', 'us-east')");
BENCHMARK_CAPTURE(BM_Judge, timestamp, "placed_at >= '2026-01-01 00:00:00+00'");
BENCHMARK_CAPTURE(BM_Judge, or_not_null,
                  "(status = 'new' OR amount >= 1000) OR NOT customer IS NULL");

}  // namespace

BENCHMARK_MAIN();
