// UTF-8 checks for what goes into a proto3 `string` field, which every client rejects unless it
// is valid UTF-8. PostgreSQL converts everything to UTF-8 for walfeed except in a SQL_ASCII
// database, where text and names are bytes nobody checked: those travel in `bytes` fields too.
#ifndef WALFEED_SERVER_CORE_UTF8_H_
#define WALFEED_SERVER_CORE_UTF8_H_

#include <string>

#include "absl/strings/string_view.h"

namespace walfeed {

// Well-formed UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool IsValidUtf8(absl::string_view text);

// `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD.
std::string ToValidUtf8(absl::string_view text);

// A name for a string field and, when it is not valid UTF-8, its exact bytes for the raw field
// beside it: sets *text (and *raw only then).
void SetName(absl::string_view name, std::string* text, std::string* raw);

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_UTF8_H_
