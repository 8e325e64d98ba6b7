// Calls walfeed's gRPC API as a user would from a shell: with `buf curl` (npm @bufbuild/buf, the
// grpcurl-like client scripts/install-deps.sh puts under tools/), JSON in and JSON out, through
// server reflection.
#ifndef WALFEED_TESTS_SUPPORT_BUF_CURL_H_
#define WALFEED_TESTS_SUPPORT_BUF_CURL_H_

#include <string>

#include "absl/time/time.h"
#include "tests/support/process.h"

namespace walfeed::test {

// The buf CLI's path.
std::string BufBinary();

// Calls `method` ("walfeed.v1.ChangeFeed/Subscribe") on the plaintext server at `address`
// ("127.0.0.1:port") with the JSON request `body`; the output holds the JSON answers or the error.
RunResult BufCurl(const std::string& address, const std::string& method, const std::string& body,
                  absl::Duration timeout = absl::Seconds(60));

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_BUF_CURL_H_
