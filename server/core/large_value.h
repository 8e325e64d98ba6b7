// The two ends of a value that travels out of line (walfeed.v1.LargeValue): which Column field
// a value is taken from when it leaves a change, and how a fetched value is put back in that
// field. Shared by the log, which moves values out, and the clients, which fetch them back, so
// that a value round-trips byte for byte into the field it came from.
#ifndef WALFEED_SERVER_CORE_LARGE_VALUE_H_
#define WALFEED_SERVER_CORE_LARGE_VALUE_H_

#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

// The kind of `column`'s value when it may travel out of line (text, numeric, bytes, json, raw
// text); nullopt for values that are always small (numbers, NULL, timestamps, ...).
std::optional<v1::LargeValue::Kind> MovableKindOf(const v1::Column& column);

// The movable value of `column` (see MovableKindOf), or nullptr.
const std::string* MovableValue(const v1::Column& column);
std::string* MutableMovableValue(v1::Column* column);

// Whether any value of `change` travels out of line (a Column.large or a message's
// large_content reference).
bool HasLargeValues(const v1::Change& change);

// Puts `data` back into the field of `column` that `kind` names, replacing what it held (the
// reference). raw_text_encoding is not touched: it stays with the column.
void RestoreValue(v1::LargeValue::Kind kind, std::string data, v1::Column* column);

// Puts every value `change` carries out of line back in place, each read whole by `read`.
// Fails with `read`'s error; `change` may then be half filled.
absl::Status InlineLargeValues(
    v1::Change* change,
    absl::FunctionRef<absl::StatusOr<std::string>(const v1::LargeValue& large)> read);

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_LARGE_VALUE_H_
