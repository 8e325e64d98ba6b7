#include "server/push/push_settings.h"

#include <curl/curl.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/core/position.h"
#include "server/feed/consumer_registry.h"
#include "server/push/push_request.h"

namespace walfeed {
namespace {

// The URL as libcurl will read it: an http:// or https:// URL with a host, nothing libcurl
// refuses to parse.
absl::Status CheckUrl(const std::string& url) {
  const bool scheme =
      absl::StartsWithIgnoreCase(url, "http://") || absl::StartsWithIgnoreCase(url, "https://");
  const bool clean = std::none_of(url.begin(), url.end(), [](char c) {
    return absl::ascii_isspace(static_cast<unsigned char>(c)) ||
           absl::ascii_iscntrl(static_cast<unsigned char>(c));
  });
  bool parsed = false;
  if (scheme && clean) {
    CURLU* handle = curl_url();
    char* host = nullptr;
    parsed = curl_url_set(handle, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
             curl_url_get(handle, CURLUPART_HOST, &host, 0) == CURLUE_OK && host != nullptr &&
             host[0] != '\0';
    curl_free(host);
    curl_url_cleanup(handle);
  }
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat("url '", url.substr(0, 200),
                     "' must be an http:// or https:// URL with a host and no spaces"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the secret file '", path, "': ", std::strerror(errno)));
  }
  std::stringstream content;
  content << file.rdbuf();
  // One trailing line break, as `echo ... > file` leaves, is not part of the secret.
  std::string secret = content.str();
  if (absl::EndsWith(secret, "\n")) secret.pop_back();
  if (absl::EndsWith(secret, "\r")) secret.pop_back();
  if (secret.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the secret file '", path, "' is empty: requests would go unsigned"));
  }
  return secret;
}

template <typename T>
absl::Status CheckRange(const char* field, T value, T min, T max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", value, "; it must be from ", min, " to ", max));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::PushSubscription> CompletePushSettings(v1::PushSubscription settings) {
  if (absl::Status name = ConsumerRegistry::ValidateName(settings.name()); !name.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("push subscription name: ", name.message()));
  }
  if (absl::Status url = CheckUrl(settings.url()); !url.ok()) return url;
  if (settings.format() == v1::PushSubscription::FORMAT_UNSPECIFIED) {
    settings.set_format(v1::PushSubscription::JSON);
  }
  if (settings.batch_changes() == 0) {
    settings.set_batch_changes(
        settings.format() == v1::PushSubscription::DEBEZIUM ? 1 : kDefaultPushBatchChanges);
  }
  if (settings.batch_bytes() == 0) settings.set_batch_bytes(kDefaultPushBatchBytes);
  if (settings.timeout_ms() == 0) settings.set_timeout_ms(kDefaultPushTimeoutMs);
  if (absl::Status s =
          CheckRange<uint32_t>("batch_changes", settings.batch_changes(), 1, kMaxPushBatchChanges);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRange<uint32_t>("batch_bytes", settings.batch_bytes(),
                                            kMinPushBatchBytes, kMaxPushBatchBytes);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckRange<uint32_t>("timeout_ms", settings.timeout_ms(), 100, kMaxPushTimeoutMs);
      !s.ok()) {
    return s;
  }
  if (settings.headers_size() > kMaxExtraHeaders) {
    return absl::InvalidArgumentError(
        absl::StrCat("headers: ", settings.headers_size(), " of them; at most ", kMaxExtraHeaders));
  }
  for (const auto& [name, value] : settings.headers()) {
    if (absl::Status header = ValidateExtraHeader(name, value); !header.ok()) return header;
  }
  if (!settings.ca_file().empty() && !std::ifstream(settings.ca_file())) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the CA file '", settings.ca_file(), "': ", std::strerror(errno)));
  }
  if (!settings.secret_file().empty()) {
    absl::StatusOr<std::string> secret = ReadSecretFile(settings.secret_file());
    if (!secret.ok()) return secret.status();
    settings.set_secret(*std::move(secret));
    settings.clear_secret_file();
  }
  if (!settings.start_cursor().empty()) {
    if (settings.from_head()) {
      return absl::InvalidArgumentError("give start_cursor or from_head, not both");
    }
    if (absl::StatusOr<Position> cursor = ParseCursor(settings.start_cursor()); !cursor.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("start_cursor: ", cursor.status().message()));
    }
  }
  return settings;
}

v1::SubscribeRequest FilterRequest(const v1::PushSubscription& settings) {
  v1::SubscribeRequest request;
  *request.mutable_tables() = settings.tables();
  *request.mutable_ops() = settings.ops();
  request.set_where(settings.where());
  request.set_cursor(settings.start_cursor());
  request.set_from_head(settings.from_head());
  return request;
}

HttpVersionChoice VersionChoice(const v1::PushSubscription& settings) {
  switch (settings.http_version()) {
    case v1::PushSubscription::HTTP_1_1:
      return HttpVersionChoice::kHttp1;
    case v1::PushSubscription::HTTP_2:
      return HttpVersionChoice::kHttp2;
    default:
      return HttpVersionChoice::kAuto;
  }
}

}  // namespace walfeed
