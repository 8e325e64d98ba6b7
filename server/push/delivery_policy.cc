#include "server/push/delivery_policy.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/core/utf8.h"

namespace walfeed {
namespace {

// The start of a response body for a person to read: one line, valid UTF-8.
std::string Excerpt(const std::string& body) {
  std::string text = std::string(absl::StripAsciiWhitespace(body));
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return ToValidUtf8(text);
}

}  // namespace

absl::Duration Backoff(int failures, double jitter) {
  absl::Duration wait = kFirstBackoff;
  for (int i = 1; i < failures && wait < kMaxBackoff; ++i) wait *= 2;
  wait = std::min(wait, kMaxBackoff);
  return wait * (0.5 + 0.5 * std::clamp(jitter, 0.0, 1.0));
}

DeliveryDecision Decide(const HttpAnswer& answer, int failures, double jitter) {
  DeliveryDecision decision;
  const int status = answer.status;
  if (status >= 200 && status < 300) {
    decision.next = DeliveryDecision::Next::kDelivered;
    return decision;
  }
  if (status == 0) {
    decision.error = answer.error;
  } else {
    decision.error = absl::StrCat("HTTP ", status);
    if (const std::string body = Excerpt(answer.body_start); !body.empty()) {
      absl::StrAppend(&decision.error, ": ", body);
    }
  }
  // 409: a receiver following the IETF Idempotency-Key draft says the first attempt of this key
  // is still being processed (walfeed gave up waiting for it): the same batch again, later.
  const bool retry =
      status == 0 || status == 408 || status == 409 || status == 429 || status >= 500;
  if (!retry) {
    decision.next = DeliveryDecision::Next::kPause;
    return decision;
  }
  decision.next = DeliveryDecision::Next::kRetry;
  // The receiver's Retry-After is what it asks for: honoured (capped), but never below the first
  // backoff, so that "Retry-After: 0" is no tight loop.
  decision.wait = answer.retry_after.has_value()
                      ? std::clamp(*answer.retry_after, kFirstBackoff, kMaxRetryAfter)
                      : Backoff(failures, jitter);
  return decision;
}

}  // namespace walfeed
