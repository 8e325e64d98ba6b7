// Fetching the values a change carries out of line (walfeed.v1.LargeValue): the client side of
// ChangeFeed.ReadValue, used by walfeed::Subscriber and walfeedctl.
//
// walfeed keeps every stream message far below gRPC's 4 MiB default: a value over 256 KiB (and
// the largest values of a change over 1 MiB) arrives as a reference. FetchLargeValues() reads
// each referenced value in chunks and puts it back, byte for byte, into the field it came from,
// so the change looks as if it had carried the value itself.
#ifndef WALFEED_CLIENT_LARGE_VALUES_H_
#define WALFEED_CLIENT_LARGE_VALUES_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "server/core/large_value.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed {

// Called with each ReadValue call's context before the call starts (to add credentials, a
// deadline, or to keep it for cancelling), and with nullptr once that call has ended; may be empty.
using ContextSetup = std::function<void(grpc::ClientContext*)>;

// Fetches every referenced value of `change` and puts it in place. Fails with NotFound when
// walfeed no longer holds one (compaction removed the change after it was sent: resume from the
// cursor before the change to read on without it), with DataLoss when the chunks do not add up
// to the value, and with walfeed's status otherwise. On failure `change` may be half filled.
absl::Status FetchLargeValues(v1::ChangeFeed::Stub& stub, const ContextSetup& setup,
                              v1::Change* change);

}  // namespace walfeed

#endif  // WALFEED_CLIENT_LARGE_VALUES_H_
