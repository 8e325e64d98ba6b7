// Event counters: how often each kind of trouble happened since walfeed started (a lost source
// connection, a failed log write, a call refused with a given reason), for the metrics endpoint.
// An event is counted where it is logged. Process-wide and thread-safe; counting takes a short
// lock, so count events, not changes.
#ifndef WALFEED_SERVER_CORE_EVENT_COUNTERS_H_
#define WALFEED_SERVER_CORE_EVENT_COUNTERS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace walfeed {

// Adds one to the counter of `kind` (a short snake_case name, e.g. "source_disconnected").
void CountEvent(absl::string_view kind);

// Every kind counted so far with its count, sorted by kind.
std::vector<std::pair<std::string, uint64_t>> EventCounts();

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_EVENT_COUNTERS_H_
