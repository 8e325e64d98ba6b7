// A push subscription's settings checked and completed with their defaults, once, where they
// come in (Admin.CreatePushSubscription, the --push-config file); everything after trusts them.
#ifndef WALFEED_SERVER_PUSH_PUSH_SETTINGS_H_
#define WALFEED_SERVER_PUSH_PUSH_SETTINGS_H_

#include "absl/status/statusor.h"
#include "server/push/http_poster.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

inline constexpr uint32_t kDefaultPushBatchChanges = 500;
inline constexpr uint32_t kMaxPushBatchChanges = 10000;
inline constexpr uint32_t kDefaultPushBatchBytes = 1 << 20;
inline constexpr uint32_t kMinPushBatchBytes = 1 << 10;
inline constexpr uint32_t kMaxPushBatchBytes = 64 << 20;
inline constexpr uint32_t kDefaultPushTimeoutMs = 10000;
inline constexpr uint32_t kMaxPushTimeoutMs = 600000;

// `settings` with its defaults filled in (format JSON; batch_changes 500 for JSON, 1 for
// DEBEZIUM; batch_bytes 1 MiB; timeout 10 s) and secret_file read into secret. InvalidArgument
// (naming the field, the value and what is expected) for a bad name, URL, bound, header, CA file,
// secret file, or both start fields. Tables and the row condition are checked against the feed by
// the caller (PlanSubscription).
absl::StatusOr<v1::PushSubscription> CompletePushSettings(v1::PushSubscription settings);

// The SubscribeRequest whose filters and start are those of `settings`.
v1::SubscribeRequest FilterRequest(const v1::PushSubscription& settings);

HttpVersionChoice VersionChoice(const v1::PushSubscription& settings);

}  // namespace walfeed

#endif  // WALFEED_SERVER_PUSH_PUSH_SETTINGS_H_
