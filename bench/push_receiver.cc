// The HTTP/1.1 receiver of bench/push.py: answers 200 to every push request over kept-alive
// connections (tests/support/http_sink.h), and measures what arrived: requests, changes, bytes,
// repeated idempotency keys, changes (Walfeed-Changes), and each change's delivery latency (arrival
// minus its commit time, read from a JSON body's "commitTime" fields without parsing the rest).
//
//   push_receiver        prints "port N", serves until stdin closes, then prints a JSON summary
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/http_sink.h"

namespace {

struct Tally {
  absl::Mutex mu;
  uint64_t requests = 0;
  uint64_t changes = 0;
  uint64_t bytes = 0;
  uint64_t repeats = 0;
  std::set<std::string> keys;
  std::vector<double> latency_ms;
  absl::Time first = absl::InfiniteFuture();
  absl::Time last = absl::InfinitePast();
};

// Every "commitTime":"<RFC 3339>" in `body`.
void CommitTimes(const std::string& body, std::vector<absl::Time>* out) {
  static constexpr char kField[] = "\"commitTime\":\"";
  for (size_t at = body.find(kField); at != std::string::npos; at = body.find(kField, at + 1)) {
    const size_t start = at + sizeof(kField) - 1;
    const size_t end = body.find('"', start);
    absl::Time time;
    std::string error;
    if (end != std::string::npos &&
        absl::ParseTime(absl::RFC3339_full, body.substr(start, end - start), &time, &error)) {
      out->push_back(time);
    }
  }
}

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  std::nth_element(values.begin(), values.begin() + index, values.end());
  return values[index];
}

}  // namespace

int main() {
  Tally tally;
  walfeed::test::HttpSink sink([&tally](const walfeed::test::HttpRequest& request) {
    const absl::Time now = absl::Now();
    std::vector<absl::Time> commits;
    CommitTimes(request.body, &commits);
    const auto key = request.headers.find("idempotency-key");
    const auto count = request.headers.find("walfeed-changes");
    uint64_t changes = 0;
    if (count != request.headers.end()) (void)absl::SimpleAtoi(count->second, &changes);
    absl::MutexLock lock(&tally.mu);
    ++tally.requests;
    tally.bytes += request.body.size();
    if (key != request.headers.end() && !tally.keys.insert(key->second).second) {
      ++tally.repeats;
    } else {
      tally.changes += changes;
      for (absl::Time commit : commits)
        tally.latency_ms.push_back(absl::ToDoubleMilliseconds(now - commit));
    }
    tally.first = std::min(tally.first, now);
    tally.last = std::max(tally.last, now);
    return walfeed::test::HttpResponse();
  });
  std::cout << "port " << sink.port() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  sink.Stop();
  absl::MutexLock lock(&tally.mu);
  std::vector<double>& l = tally.latency_ms;
  const bool any = tally.requests > 0;
  std::cout << absl::StrCat(
                   "{\"requests\": ", tally.requests, ", \"changes\": ", tally.changes,
                   ", \"bytes\": ", tally.bytes, ", \"repeats\": ", tally.repeats,
                   ", \"connections\": ", sink.connections(), ", \"first_unix\": ",
                   absl::StrFormat(
                       "%.6f", any ? absl::ToDoubleSeconds(tally.first - absl::UnixEpoch()) : 0),
                   ", \"last_unix\": ",
                   absl::StrFormat("%.6f",
                                   any ? absl::ToDoubleSeconds(tally.last - absl::UnixEpoch()) : 0),
                   ", \"latency_ms\": {\"p50\": ", Percentile(l, 0.5),
                   ", \"p99\": ", Percentile(l, 0.99), ", \"p999\": ", Percentile(l, 0.999),
                   ", \"max\": ", Percentile(l, 1.0), "}}")
            << std::endl;
  return 0;
}
