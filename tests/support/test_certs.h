// Test certificates, made by openssl in a directory of the test's own: what TLS tests need to
// trust a server, present a client certificate, or be refused for the wrong CA.
#ifndef WALFEED_TESTS_SUPPORT_TEST_CERTS_H_
#define WALFEED_TESTS_SUPPORT_TEST_CERTS_H_

#include <string>

#include "absl/status/status.h"

namespace walfeed::test {

// Writes into `dir` (created), each as NAME.pem and NAME.key: the CAs `ca` and `other-ca`;
// `server` (signed by ca, for IP 127.0.0.1 and localhost); the client certificates `client` and
// `operator` (ca) and `stranger` (other-ca). Valid for two days.
absl::Status MakeTestCertificates(const std::string& dir);

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_TEST_CERTS_H_
