#include "server/push/webhook_signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace walfeed {

std::string HmacSha256Hex(absl::string_view key, absl::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

std::string SignPush(absl::string_view secret, absl::Time at, absl::string_view body) {
  const std::string timestamp = absl::StrCat(absl::ToUnixSeconds(at));
  return absl::StrCat("t=", timestamp,
                      ",v1=", HmacSha256Hex(secret, absl::StrCat(timestamp, ".", body)));
}

}  // namespace walfeed
