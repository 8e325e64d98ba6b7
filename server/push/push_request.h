// The HTTP request for one batch of a push subscription: its body in the subscription's format,
// its headers, its idempotency key and its signature.
//
// Every attempt of a batch carries the same idempotency key, built from the log's id, the
// subscription's name and generation (moved on by a reset), and the batch's first and last cursor
// (a restarted walfeed sends the batch it had in flight again, whole: push_deliverer.h), in the
// Idempotency-Key header and, in the JSON format, in the body:
//
//   Idempotency-Key: <log id>.<subscription>.<generation>.<first cursor>.<last cursor>
//   Walfeed-Subscription, Walfeed-Log-Id, Walfeed-First-Cursor, Walfeed-Last-Cursor,
//   Walfeed-Changes (how many), Walfeed-Attempt (1 for the first), Walfeed-Signature (with a
//   secret: webhook_signature.h), Content-Type: application/json, and the subscription's headers.
#ifndef WALFEED_SERVER_PUSH_PUSH_REQUEST_H_
#define WALFEED_SERVER_PUSH_PUSH_REQUEST_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

// A batch's request body in `subscription`'s format, built once and sent by every attempt.
// `batch` holds the changes with every value in place (none out of line) and its cursors; its
// subscription and idempotency key are filled here (log id, generation and cursors are the
// caller's). `database` is Debezium's source.db,
// `now` its ts_ms. The body depends on nothing else, so a batch sent again after a restart is the
// same bytes (PushDeliverer passes the first change's commit time as `now`).
std::string PushBody(const v1::PushSubscription& subscription, v1::PushBatch* batch,
                     absl::string_view database, absl::Time now);

std::string IdempotencyKey(const v1::PushBatch& batch);

// The headers of attempt number `attempt` (1 for the first) of `batch` (as PushBody left it),
// whose body is `body`, sent at `now`: signed then when the subscription has a secret.
std::vector<std::pair<std::string, std::string>> PushHeaders(
    const v1::PushSubscription& subscription, const v1::PushBatch& batch, absl::string_view body,
    int attempt, absl::Time now);

inline constexpr size_t kMaxHeaderValueBytes = 8192;
inline constexpr int kMaxExtraHeaders = 64;

// InvalidArgument unless `name` may be one of a subscription's extra headers: an HTTP token, none
// of the headers walfeed sets itself, and a value of 1 to kMaxHeaderValueBytes bytes without
// control characters.
absl::Status ValidateExtraHeader(absl::string_view name, absl::string_view value);

}  // namespace walfeed

#endif  // WALFEED_SERVER_PUSH_PUSH_REQUEST_H_
