#include "server/push/http_poster.h"

#include <curl/curl.h>

#include <cstdlib>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace walfeed {
namespace {

struct Received {
  std::string body_start;
  std::string retry_after;
};

size_t TakeBody(char* data, size_t size, size_t count, void* user) {
  auto* received = static_cast<Received*>(user);
  const size_t bytes = size * count;
  const size_t room = HttpPoster::kBodyStartBytes -
                      std::min(received->body_start.size(), HttpPoster::kBodyStartBytes);
  received->body_start.append(data, std::min(bytes, room));
  return bytes;  // the rest is read and dropped, so the connection stays usable
}

size_t TakeHeader(char* data, size_t size, size_t count, void* user) {
  auto* received = static_cast<Received*>(user);
  const absl::string_view line(data, size * count);
  const size_t colon = line.find(':');
  if (colon != absl::string_view::npos &&
      absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(line.substr(0, colon)), "retry-after")) {
    received->retry_after = std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * count;
}

int CheckCancel(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel != nullptr && cancel->load() ? 1 : 0;
}

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(value, &seconds)) {
    if (seconds < 0) return std::nullopt;
    return absl::Seconds(seconds);
  }
  const std::string date(value);
  const time_t at = curl_getdate(date.c_str(), nullptr);
  if (at < 0) return std::nullopt;
  return std::max(absl::ZeroDuration(), absl::FromTimeT(at) - now);
}

HttpPoster::HttpPoster(const std::atomic<bool>* cancel) : cancel_(cancel) {
  InitCurlOnce();
  curl_ = curl_easy_init();
}

HttpPoster::~HttpPoster() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

HttpAnswer HttpPoster::Post(const HttpPost& post) {
  HttpAnswer answer;
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) {
    answer.error = "libcurl could not be initialised";
    return answer;
  }
  // Options from an earlier request go; the connection stays in the handle's cache.
  curl_easy_reset(curl);
  Received received;
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : post.headers) {
    headers = curl_slist_append(headers, absl::StrCat(name, ": ", value).c_str());
  }
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, post.url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post.body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post.body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, TakeBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &received);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, TakeHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &received);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, CheckCancel);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, cancel_);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(post.timeout)));
  curl_easy_setopt(
      curl, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(std::min<int64_t>(absl::ToInt64Milliseconds(post.timeout), 5000)));
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "walfeed/0.1.0");
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  switch (post.version) {
    case HttpVersionChoice::kAuto:
      curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
      break;
    case HttpVersionChoice::kHttp1:
      curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
      break;
    case HttpVersionChoice::kHttp2:
      curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
      break;
  }
  if (!post.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, post.ca_file.c_str());

  const CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (code != CURLE_OK) {
    answer.cancelled = code == CURLE_ABORTED_BY_CALLBACK;
    answer.error = error[0] != '\0' ? std::string(error) : curl_easy_strerror(code);
    return answer;
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  long version = 0;
  curl_easy_getinfo(curl, CURLINFO_HTTP_VERSION, &version);
  answer.status = static_cast<int>(status);
  answer.http_version = version == CURL_HTTP_VERSION_2_0   ? "HTTP/2"
                        : version == CURL_HTTP_VERSION_1_0 ? "HTTP/1.0"
                                                           : "HTTP/1.1";
  answer.body_start = std::move(received.body_start);
  if (!received.retry_after.empty()) {
    answer.retry_after = ParseRetryAfter(received.retry_after, absl::Now());
  }
  return answer;
}

}  // namespace walfeed
