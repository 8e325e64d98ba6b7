// Machine-readable reasons for errors that reach a client, carried inside absl::Status as a
// payload so that the room that detects an error names it and feed/ turns it into a
// google.rpc.ErrorInfo (AIP-193) without guessing from the message text.
#ifndef WALFEED_SERVER_CORE_ERROR_REASON_H_
#define WALFEED_SERVER_CORE_ERROR_REASON_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace walfeed {

// The reasons walfeed uses, stable across versions (clients may switch on them).
namespace reason {
inline constexpr char kCursorMalformed[] = "CURSOR_MALFORMED";
inline constexpr char kStartConflict[] = "START_CONFLICT";
inline constexpr char kTableNotFound[] = "TABLE_NOT_FOUND";
inline constexpr char kFilterInvalid[] = "FILTER_INVALID";
inline constexpr char kShuttingDown[] = "SHUTTING_DOWN";
inline constexpr char kLogUnreadable[] = "LOG_UNREADABLE";
inline constexpr char kCursorPurged[] = "CURSOR_PURGED";
inline constexpr char kCompactionRunning[] = "COMPACTION_RUNNING";
inline constexpr char kUnauthenticated[] = "UNAUTHENTICATED";
inline constexpr char kPermissionDenied[] = "PERMISSION_DENIED";
inline constexpr char kRequestMalformed[] = "REQUEST_MALFORMED";
inline constexpr char kStartBeyondWal[] = "START_BEYOND_WAL";
inline constexpr char kRefMalformed[] = "REF_MALFORMED";
inline constexpr char kValueNotFound[] = "VALUE_NOT_FOUND";
inline constexpr char kLogMismatch[] = "LOG_MISMATCH";
inline constexpr char kConsumerBusy[] = "CONSUMER_BUSY";
inline constexpr char kConsumerNotFound[] = "CONSUMER_NOT_FOUND";
inline constexpr char kBackfillNotFound[] = "BACKFILL_NOT_FOUND";
// The call needs the walfeed that reads PostgreSQL (a backfill), and this one does not.
inline constexpr char kNotIngester[] = "NOT_INGESTER";
inline constexpr char kPushNotFound[] = "PUSH_NOT_FOUND";
inline constexpr char kPushExists[] = "PUSH_EXISTS";
}  // namespace reason

// `status` with `reason` attached (a no-op for OK).
absl::Status WithReason(absl::Status status, absl::string_view reason);

// The reason attached to `status`, or "" when none is.
std::string ReasonOf(const absl::Status& status);

// `status` with one more key and value for the ErrorInfo's metadata (a no-op for OK).
absl::Status WithDetail(absl::Status status, absl::string_view key, absl::string_view value);

// The keys and values WithDetail attached to `status`.
std::map<std::string, std::string> DetailsOf(const absl::Status& status);

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_ERROR_REASON_H_
