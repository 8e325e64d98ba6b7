#include "tests/support/buf_curl.h"

#include "absl/strings/str_cat.h"

namespace walfeed::test {

std::string BufBinary() { return std::string(WALFEED_SOURCE_DIR) + "/tools/node_modules/.bin/buf"; }

RunResult BufCurl(const std::string& address, const std::string& method, const std::string& body,
                  absl::Duration timeout) {
  return RunCommand({BufBinary(), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                     absl::StrCat("http://", address, "/", method), "-d", body},
                    timeout);
}

}  // namespace walfeed::test
