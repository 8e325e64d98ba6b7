// HttpPoster: POSTs one request at a time over a kept-alive connection, with libcurl.
//
// HTTP/1.1 by default; HTTP/2 when an https:// receiver offers it in TLS's ALPN (kAuto), or always
// (kHttp2, "prior knowledge" over plain http://); never an HTTP/1.1 Upgrade. No redirects are
// followed (a 3xx is an answer like any other), no "Expect: 100-continue". A request in flight is
// abandoned when `cancel` is set. Not thread-safe: one per delivering thread.
#ifndef WALFEED_SERVER_PUSH_HTTP_POSTER_H_
#define WALFEED_SERVER_PUSH_HTTP_POSTER_H_

#include <atomic>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace walfeed {

enum class HttpVersionChoice { kAuto, kHttp1, kHttp2 };

struct HttpPost {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  absl::string_view body;
  absl::Duration timeout = absl::Seconds(10);
  // A PEM bundle of CA certificates to trust instead of the system's; empty: the system's.
  std::string ca_file;
  HttpVersionChoice version = HttpVersionChoice::kAuto;
};

struct HttpAnswer {
  // The response's status; 0 when none arrived (`error` says why).
  int status = 0;
  std::string error;
  // The start of the response body (at most kBodyStartBytes).
  std::string body_start;
  // The Retry-After header, as a wait from now, when the answer had one.
  std::optional<absl::Duration> retry_after;
  // "HTTP/1.1", "HTTP/2" ("" without an answer).
  std::string http_version;
  // The request was abandoned because `cancel` was set.
  bool cancelled = false;
};

class HttpPoster {
 public:
  static constexpr size_t kBodyStartBytes = 512;

  explicit HttpPoster(const std::atomic<bool>* cancel);
  ~HttpPoster();
  HttpPoster(const HttpPoster&) = delete;
  HttpPoster& operator=(const HttpPoster&) = delete;

  HttpAnswer Post(const HttpPost& post);

 private:
  const std::atomic<bool>* const cancel_;
  void* curl_;  // CURL*
};

// A Retry-After value (delay-seconds or an HTTP-date) as a wait from `now`; nullopt when it is
// neither. A date in the past is a wait of zero.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);

}  // namespace walfeed

#endif  // WALFEED_SERVER_PUSH_HTTP_POSTER_H_
