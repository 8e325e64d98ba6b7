// The signature of a push request, the way Stripe and GitHub sign webhooks: an HMAC-SHA256, keyed
// with the subscription's secret, of "<timestamp>.<body>", sent as
//
//   Walfeed-Signature: t=<Unix seconds>,v1=<64 lowercase hex digits>
//
// A receiver recomputes it over the raw body, compares in constant time, and refuses a timestamp
// too far from its clock (replay protection; README: Verifying a push).
#ifndef WALFEED_SERVER_PUSH_WEBHOOK_SIGNATURE_H_
#define WALFEED_SERVER_PUSH_WEBHOOK_SIGNATURE_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace walfeed {

inline constexpr char kSignatureHeader[] = "Walfeed-Signature";

// HMAC-SHA256 of `message` keyed with `key`, as lowercase hex.
std::string HmacSha256Hex(absl::string_view key, absl::string_view message);

// The Walfeed-Signature header's value for `body` sent at `at`.
std::string SignPush(absl::string_view secret, absl::Time at, absl::string_view body);

}  // namespace walfeed

#endif  // WALFEED_SERVER_PUSH_WEBHOOK_SIGNATURE_H_
