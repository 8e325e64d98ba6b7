// Lets spdlog/fmt format absl::string_view (Debian's Abseil has its own string_view type, so
// status.message() is not formattable by default). Include it where a log line prints one.
#ifndef WALFEED_SERVER_CORE_LOG_FORMAT_H_
#define WALFEED_SERVER_CORE_LOG_FORMAT_H_

#include <fmt/format.h>

#include "absl/strings/string_view.h"

template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view text, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text.data(), text.size()),
                                                    ctx);
  }
};

#endif  // WALFEED_SERVER_CORE_LOG_FORMAT_H_
