#include "server/core/fault_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace walfeed {
namespace {

// Set once by ArmFaultPointFromEnvironment(), before any thread reaches a point.
const char* armed_name = nullptr;
int armed_count = 1;
bool armed_hold = false;
std::atomic<int> reached{0};

}  // namespace

absl::Status ArmFaultPointFromEnvironment() {
  const char* value = std::getenv("WALFEED_FAULT_POINT");
  if (value == nullptr || *value == '\0') return absl::OkStatus();
#ifndef WALFEED_FAULT_POINTS
  return absl::InvalidArgumentError(
      "WALFEED_FAULT_POINT is set, but this walfeed was built without fault points (they come "
      "with the test suite's build): unset it");
#else
  absl::string_view text(value);
  const bool hold = absl::ConsumeSuffix(&text, ":hold");
  const size_t at = text.find('@');
  const absl::string_view name = text.substr(0, at);
  int count = 1;
  if (at != absl::string_view::npos &&
      (!absl::SimpleAtoi(text.substr(at + 1), &count) || count < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WALFEED_FAULT_POINT='", text, "': the count after '@' must be a whole number from 1"));
  }
  for (const char* point : kFaultPoints) {
    if (name == point) {
      armed_name = point;
      armed_count = count;
      armed_hold = hold;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("WALFEED_FAULT_POINT names '", name,
                   "', which is no fault point; they are: ", absl::StrJoin(kFaultPoints, ", ")));
#endif
}

void ReachFaultPoint(const char* name) {
  if (armed_name == nullptr || std::strcmp(name, armed_name) != 0) return;
  const int count = reached.fetch_add(1) + 1;
  if (count != armed_count) return;
  const std::string line = absl::StrCat("walfeed: fault point ", name, " reached (", count, "), ",
                                        armed_hold ? "holding" : "killing the process", "\n");
  // write(2), not stdio: nothing buffered may be lost, and nothing else runs after it.
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
  if (!armed_hold) ::raise(SIGKILL);
  for (;;) absl::SleepFor(absl::Hours(1));  // until the test kills the process
}

}  // namespace walfeed
