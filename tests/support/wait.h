// Waiting in tests: on an observable condition, never a fixed sleep before an assertion, and with
// a bound that scales with the build (sanitizer builds run two to four times slower), so a bound
// that is generous in one build is not a flake in another.
#ifndef WALFEED_TESTS_SUPPORT_WAIT_H_
#define WALFEED_TESTS_SUPPORT_WAIT_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace walfeed::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif

// How much slower this build runs than an optimised one.
inline constexpr int kBuildSlowdown = kUnderAddressSanitizer ? 3 : 1;

// `bound` as meant for an optimised build, stretched for this build.
inline absl::Duration Bound(absl::Duration bound) { return bound * kBuildSlowdown; }

// Polls `condition` until it holds (true) or Bound(`bound`) has passed (false). The condition is
// evaluated once more at the deadline, so a slow last poll never turns a success into a failure.
template <typename Condition>
bool WaitUntil(Condition condition, absl::Duration bound,
               absl::Duration poll = absl::Milliseconds(50)) {
  const absl::Time deadline = absl::Now() + Bound(bound);
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(poll);
  }
  return condition();
}

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_WAIT_H_
