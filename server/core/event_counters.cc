#include "server/core/event_counters.h"

#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace walfeed {
namespace {

struct Counters {
  absl::Mutex mu;
  std::map<std::string, uint64_t, std::less<>> counts ABSL_GUARDED_BY(mu);
};

Counters& Global() {
  static Counters* counters = new Counters();  // never destroyed: counted until exit
  return *counters;
}

}  // namespace

void CountEvent(absl::string_view kind) {
  Counters& counters = Global();
  absl::MutexLock lock(&counters.mu);
  auto it = counters.counts.find(kind);
  if (it == counters.counts.end()) it = counters.counts.emplace(std::string(kind), 0).first;
  ++it->second;
}

std::vector<std::pair<std::string, uint64_t>> EventCounts() {
  Counters& counters = Global();
  absl::MutexLock lock(&counters.mu);
  return {counters.counts.begin(), counters.counts.end()};
}

}  // namespace walfeed
