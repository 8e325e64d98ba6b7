#include "tests/support/test_certs.h"

#include "absl/strings/str_cat.h"
#include "tests/support/process.h"

namespace walfeed::test {

absl::Status MakeTestCertificates(const std::string& dir) {
  const std::string script = absl::StrCat("set -e; mkdir -p '", dir, "'; cd '", dir, "'", R"(
      key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
      ca() { key "$1.key"; openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$1"; }
      signed() {  # name, CA, extensions
        key "$1.key"; openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1"
        printf '%s\n' "$3" > "$1.ext"
        openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
          -out "$1.pem" -extfile "$1.ext" 2>/dev/null
      }
      ca ca; ca other-ca
      signed server ca "subjectAltName=IP:127.0.0.1,DNS:localhost"
      signed client ca "extendedKeyUsage=clientAuth"
      signed stranger other-ca "extendedKeyUsage=clientAuth"
      signed operator ca "extendedKeyUsage=clientAuth"
    )");
  const RunResult made = RunCommand({"bash", "-c", script}, absl::Seconds(60));
  if (made.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("openssl could not make the test certificates in ", dir, ": ", made.output));
  }
  return absl::OkStatus();
}

}  // namespace walfeed::test
