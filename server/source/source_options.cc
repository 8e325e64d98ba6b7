#include "server/source/source_options.h"

#include "absl/strings/str_cat.h"
#include "server/source/table_filter.h"

namespace walfeed {
namespace {

// PostgreSQL allows lower-case letters, digits and underscores in slot names, up to 63 bytes.
bool IsValidSlotName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

absl::Status SourceOptions::Validate() const {
  if (conninfo.empty()) {
    return absl::InvalidArgumentError(
        "no PostgreSQL connection given: pass --pg \"host=... dbname=... user=...\" or set "
        "WALFEED_PG");
  }
  if (!IsValidSlotName(slot)) {
    return absl::InvalidArgumentError(
        absl::StrCat("slot name '", slot,
                     "' is invalid: use 1 to 63 lower-case letters, digits or underscores"));
  }
  if (publication.empty() || publication.size() > 63) {
    return absl::InvalidArgumentError(
        absl::StrCat("publication name '", publication, "' must be 1 to 63 bytes long"));
  }
  if (status_interval <= absl::ZeroDuration() || reconnect_min <= absl::ZeroDuration() ||
      reconnect_max < reconnect_min) {
    return absl::InvalidArgumentError(
        "source intervals must be positive, reconnect_max >= reconnect_min");
  }
  if (absl::Status filter =
          TableFilter::Create(include_tables, exclude_tables, exclude_columns).status();
      !filter.ok()) {
    return filter;
  }
  if (max_transaction_bytes == 0) {
    return absl::InvalidArgumentError("max_transaction_bytes must be positive");
  }
  if (max_queued_bytes == 0) return absl::InvalidArgumentError("max_queued_bytes must be positive");
  return absl::OkStatus();
}

}  // namespace walfeed
