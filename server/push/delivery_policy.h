// What a push subscription does after an attempt: the answer decides, never the batch.
//
// - 2xx: delivered; the cursor moves on.
// - 408, 409 (the IETF Idempotency-Key draft's "still processing this key"), 429, 5xx, a timeout
//   or a connection error: the same batch again (never a later one first), after an exponential
//   backoff with jitter (capped), or after the answer's Retry-After when it has one (at least
//   kFirstBackoff, at most kMaxRetryAfter).
// - Any other status (3xx, 4xx): the receiver refuses the batch; the subscription pauses until an
//   operator resumes it, since sending it again would get the same answer.
#ifndef WALFEED_SERVER_PUSH_DELIVERY_POLICY_H_
#define WALFEED_SERVER_PUSH_DELIVERY_POLICY_H_

#include <string>

#include "absl/time/time.h"
#include "server/push/http_poster.h"

namespace walfeed {

struct DeliveryDecision {
  enum class Next { kDelivered, kRetry, kPause };
  Next next = Next::kRetry;
  // kRetry: how long to wait first.
  absl::Duration wait = absl::ZeroDuration();
  // kRetry and kPause: what went wrong, for FeedInfo and the log.
  std::string error;
};

inline constexpr absl::Duration kFirstBackoff = absl::Milliseconds(250);
inline constexpr absl::Duration kMaxBackoff = absl::Seconds(60);
inline constexpr absl::Duration kMaxRetryAfter = absl::Hours(1);

// The wait before retry number `failures` (1 for the first retry): kFirstBackoff doubled per
// failure, capped at kMaxBackoff, scaled by a jitter in [0.5, 1] taken from `jitter` in [0, 1].
absl::Duration Backoff(int failures, double jitter);

// The decision for `answer` after `failures` failed attempts in a row (counting this one if it
// failed).
DeliveryDecision Decide(const HttpAnswer& answer, int failures, double jitter);

}  // namespace walfeed

#endif  // WALFEED_SERVER_PUSH_DELIVERY_POLICY_H_
