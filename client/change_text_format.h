// One line of text per change, for people watching a feed in a terminal (walfeedctl
// --format text): cursor, operation ("(resync)" after it for a change of a resynchronisation),
// table, key, then the new row's columns (the old key for DELETE). Strings are quoted and escaped
// so one change is always exactly one line.
#ifndef WALFEED_CLIENT_CHANGE_TEXT_FORMAT_H_
#define WALFEED_CLIENT_CHANGE_TEXT_FORMAT_H_

#include <string>

#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

std::string FormatChangeAsText(const v1::Change& change);

// A column's value as text: numbers bare, strings quoted, NULL as NULL.
std::string FormatValueAsText(const v1::Column& column);

}  // namespace walfeed

#endif  // WALFEED_CLIENT_CHANGE_TEXT_FORMAT_H_
