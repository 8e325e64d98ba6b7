// Fuzzes the source's decoding path: the input is a sequence of pgoutput messages, each prefixed
// by its length (2 bytes, big-endian), decoded and fed to one TransactionBuilder, as the
// replication stream would. Malformed bytes must come back as errors; nothing may read out of
// bounds, crash or trip a sanitizer.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/source/pgoutput_decoder.h"
#include "server/source/transaction_builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  walfeed::TransactionBuilder builder;
  absl::string_view rest(reinterpret_cast<const char*>(data), size);
  while (rest.size() >= 2) {
    const size_t length = (static_cast<uint8_t>(rest[0]) << 8) | static_cast<uint8_t>(rest[1]);
    rest.remove_prefix(2);
    const absl::string_view message = rest.substr(0, length);
    rest.remove_prefix(message.size());
    absl::StatusOr<walfeed::pgoutput::Message> decoded = walfeed::DecodePgOutputMessage(message);
    if (!decoded.ok()) continue;
    // Errors are expected (a Commit without a Begin, an unknown relation); crashes are not.
    (void)builder.Consume(*std::move(decoded), /*server_time=*/0);
  }
  return 0;
}
