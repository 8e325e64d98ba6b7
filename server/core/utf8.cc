#include "server/core/utf8.h"

#include <cstdint>

namespace walfeed {
namespace {

// The length of the well-formed UTF-8 sequence at the start of `text`; 0 when there is none.
size_t SequenceLength(absl::string_view text) {
  const unsigned char c = static_cast<unsigned char>(text[0]);
  if (c < 0x80) return 1;
  size_t length;
  uint32_t code;
  if ((c & 0xE0) == 0xC0) {
    length = 2;
    code = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    length = 3;
    code = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    length = 4;
    code = c & 0x07;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    const unsigned char next = static_cast<unsigned char>(text[k]);
    if ((next & 0xC0) != 0x80) return 0;
    code = (code << 6) | (next & 0x3F);
  }
  // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
  static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < kSmallest[length] || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) return 0;
  return length;
}

constexpr char kReplacement[] = "\xef\xbf\xbd";  // U+FFFD

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t length = SequenceLength(text.substr(i));
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string ToValidUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t length = SequenceLength(text.substr(i));
    if (length == 0) {
      out.append(kReplacement);
      ++i;
    } else {
      out.append(text.data() + i, length);
      i += length;
    }
  }
  return out;
}

void SetName(absl::string_view name, std::string* text, std::string* raw) {
  if (IsValidUtf8(name)) {
    text->assign(name.data(), name.size());
    return;
  }
  *text = ToValidUtf8(name);
  raw->assign(name.data(), name.size());
}

}  // namespace walfeed
