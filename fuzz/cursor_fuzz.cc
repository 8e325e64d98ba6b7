// Fuzzes the parsers of client input: cursors ("X/Y:seq") and LSNs ("X/Y" or decimal). Whatever
// parses must format back to something that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "server/core/position.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<walfeed::Position> cursor = walfeed::ParseCursor(text); cursor.ok()) {
    absl::StatusOr<walfeed::Position> again = walfeed::ParseCursor(walfeed::FormatCursor(*cursor));
    if (!again.ok() || *again != *cursor) std::abort();
  }
  if (absl::StatusOr<uint64_t> lsn = walfeed::ParseLsn(text); lsn.ok()) {
    absl::StatusOr<uint64_t> again = walfeed::ParseLsn(walfeed::FormatLsn(*lsn));
    if (!again.ok() || *again != *lsn) std::abort();
  }
  return 0;
}
