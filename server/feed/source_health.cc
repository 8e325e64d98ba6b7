#include "server/feed/source_health.h"

#include "absl/strings/str_cat.h"

namespace walfeed {

std::string SourceProblem(const SourceStatus& status, absl::Duration grace, absl::Time now) {
  if (status.failing_since == absl::InfiniteFuture()) return "";
  const absl::Duration failing = now - status.failing_since;
  if (failing < grace) return "";
  return absl::StrCat("the source has made no progress for ",
                      absl::FormatDuration(absl::Trunc(failing, absl::Seconds(1))), ": ",
                      status.last_error.empty() ? "(no error recorded)" : status.last_error);
}

std::string ReplicationProblem(const v1::ReplicationStatus& status, absl::Duration grace) {
  if (status.confirm_after() != "replicated") return "";
  const std::string error =
      status.last_error().empty() ? "(no error recorded)" : status.last_error();
  if (status.state() == "failed") {
    return absl::StrCat("the replication into JetStream stream ", status.stream(),
                        " stopped: ", error);
  }
  const absl::Duration failing = absl::Seconds(status.failing_seconds());
  if (status.failing_seconds() <= 0 || failing < grace) return "";
  return absl::StrCat("the replication into JetStream stream ", status.stream(),
                      " has made no progress for ",
                      absl::FormatDuration(absl::Trunc(failing, absl::Seconds(1))), ": ", error);
}

}  // namespace walfeed
