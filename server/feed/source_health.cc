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

}  // namespace walfeed
