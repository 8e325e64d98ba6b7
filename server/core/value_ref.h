// ValueRef: where a value that travels out of line is stored, and its text form, the
// LargeValue.ref a client passes to ChangeFeed.ReadValue.
//
// A value is named by the change that holds it (its position), the part of that change (the key
// columns, the old row, the new row, or a logical message's content) and the column's index in
// that part (0 for a message). The text form is "<cursor>/<part>/<index>", for example
// "0/16B3748:3/after/2". Parsing takes the cursor as ParseCursor does and the rest exactly as
// FormatValueRef writes it, and rejects anything else with a sentence that names the bad input and
// the expected form.
#ifndef WALFEED_SERVER_CORE_VALUE_REF_H_
#define WALFEED_SERVER_CORE_VALUE_REF_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/position.h"

namespace walfeed {

enum class ValuePart : uint8_t {
  kKey = 'k',
  kBefore = 'b',
  kAfter = 'a',
  kMessage = 'm',
};

struct ValueRef {
  Position position;
  ValuePart part = ValuePart::kAfter;
  uint32_t index = 0;

  friend bool operator==(const ValueRef& a, const ValueRef& b) {
    return a.position == b.position && a.part == b.part && a.index == b.index;
  }
  friend bool operator!=(const ValueRef& a, const ValueRef& b) { return !(a == b); }
};

// Columns per part a reference can name: PostgreSQL allows 1,600 columns in a table.
inline constexpr uint32_t kMaxValueRefIndex = 0xFFFF;

// "key", "before", "after" or "message".
absl::string_view ValuePartName(ValuePart part);

std::string FormatValueRef(const ValueRef& ref);

// Fails with InvalidArgument (reason REF_MALFORMED) unless `text` is a reference.
absl::StatusOr<ValueRef> ParseValueRef(absl::string_view text);

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_VALUE_REF_H_
