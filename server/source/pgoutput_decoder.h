// Decodes one pgoutput message (the payload of an XLogData frame) into a pgoutput::Message.
//
// Protocol version 1 without streaming. Malformed input (short, overlong, unknown tag, bad
// tuple kind) yields InvalidArgument naming the message and field; it never reads out of
// bounds and never crashes, whatever the bytes.
#ifndef WALFEED_SERVER_SOURCE_PGOUTPUT_DECODER_H_
#define WALFEED_SERVER_SOURCE_PGOUTPUT_DECODER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/source/pgoutput_messages.h"

namespace walfeed {

absl::StatusOr<pgoutput::Message> DecodePgOutputMessage(absl::string_view bytes);

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_PGOUTPUT_DECODER_H_
