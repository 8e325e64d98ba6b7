// HttpSink: a small HTTP/1.1 server on 127.0.0.1 for tests and benchmarks of push delivery: keeps
// connections alive, reads each request whole (Content-Length bodies), and answers what a handler
// says. One thread per connection; Stop() closes everything and joins (connections are closed
// there, not when the client goes).
#ifndef WALFEED_TESTS_SUPPORT_HTTP_SINK_H_
#define WALFEED_TESTS_SUPPORT_HTTP_SINK_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace walfeed::test {

struct HttpRequest {
  std::string method;
  std::string target;
  std::string version;                         // "HTTP/1.1"
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  absl::Time received_at;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Wait this long before answering (a slow receiver).
  absl::Duration delay = absl::ZeroDuration();
};

class HttpSink {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest& request)>;

  // Listens on a free loopback port; `handler` runs on the connection's thread.
  explicit HttpSink(Handler handler);
  ~HttpSink();
  HttpSink(const HttpSink&) = delete;
  HttpSink& operator=(const HttpSink&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path = "/") const;
  // Connections accepted so far (keep-alive shows as few).
  int connections() const { return connections_.load(); }
  void Stop();

 private:
  void Accept();
  void Serve(int fd);

  const Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> servers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_HTTP_SINK_H_
