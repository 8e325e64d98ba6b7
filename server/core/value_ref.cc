#include "server/core/value_ref.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/error_reason.h"

namespace walfeed {
namespace {

constexpr ValuePart kParts[] = {ValuePart::kKey, ValuePart::kBefore, ValuePart::kAfter,
                                ValuePart::kMessage};

absl::Status Malformed(absl::string_view text, absl::string_view why) {
  return WithReason(
      absl::InvalidArgumentError(absl::StrCat(
          "the value reference '", absl::CEscape(text.substr(0, 200)), "' is malformed (", why,
          "): pass LargeValue.ref exactly as the feed sent it, e.g. \"0/16B3748:3/after/2\"")),
      reason::kRefMalformed);
}

}  // namespace

absl::string_view ValuePartName(ValuePart part) {
  switch (part) {
    case ValuePart::kKey:
      return "key";
    case ValuePart::kBefore:
      return "before";
    case ValuePart::kAfter:
      return "after";
    case ValuePart::kMessage:
      return "message";
  }
  return "unknown";
}

std::string FormatValueRef(const ValueRef& ref) {
  return absl::StrCat(FormatCursor(ref.position), "/", ValuePartName(ref.part), "/", ref.index);
}

absl::StatusOr<ValueRef> ParseValueRef(absl::string_view text) {
  // The cursor holds one '/' itself: "X/Y:seq/part/index".
  const std::vector<absl::string_view> pieces = absl::StrSplit(text, '/');
  if (pieces.size() != 4) return Malformed(text, "expected <cursor>/<part>/<index>");
  const absl::string_view cursor(pieces[0].data(),
                                 pieces[1].data() + pieces[1].size() - pieces[0].data());
  absl::StatusOr<Position> position = ParseCursor(cursor);
  if (!position.ok()) return Malformed(text, "its cursor is not X/Y:seq");
  ValueRef ref;
  ref.position = *position;
  bool known_part = false;
  for (ValuePart part : kParts) {
    if (pieces[2] == ValuePartName(part)) {
      ref.part = part;
      known_part = true;
    }
  }
  if (!known_part) return Malformed(text, "the part is not key, before, after or message");
  uint32_t index = 0;
  const bool digits_only = !pieces[3].empty() && pieces[3].size() <= 5 &&
                           pieces[3].find_first_not_of("0123456789") == absl::string_view::npos;
  if (!digits_only || !absl::SimpleAtoi(pieces[3], &index) || index > kMaxValueRefIndex ||
      (pieces[3].size() > 1 && pieces[3][0] == '0')) {
    return Malformed(text, "the index is not a column number");
  }
  if (ref.part == ValuePart::kMessage && index != 0) {
    return Malformed(text, "a message has one value, index 0");
  }
  ref.index = index;
  return ref;
}

}  // namespace walfeed
