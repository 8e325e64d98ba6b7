#include "tests/support/http_sink.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/support/process.h"

namespace walfeed::test {
namespace {

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

HttpSink::HttpSink(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = BindLoopback(&port_);
  listen(listen_fd_, 64);
  acceptor_ = std::thread([this] { Accept(); });
}

HttpSink::~HttpSink() { Stop(); }

std::string HttpSink::url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

void HttpSink::Stop() {
  if (stopping_.exchange(true)) return;
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> servers;
  std::vector<int> fds;
  {
    absl::MutexLock lock(&mu_);
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    servers.swap(servers_);
    fds.swap(fds_);
  }
  for (std::thread& server : servers) server.join();
  for (int fd : fds) close(fd);  // closed only here: a number is never reused while listed
}

void HttpSink::Accept() {
  while (!stopping_.load()) {
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      if (stopping_.load()) return;
      continue;
    }
    connections_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    if (stopping_.load()) {
      close(fd);
      return;
    }
    fds_.push_back(fd);
    servers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void HttpSink::Serve(int fd) {
  std::string buffer;
  char chunk[64 << 10];
  while (!stopping_.load()) {
    // The head, up to the blank line.
    size_t head_end;
    while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
      buffer.append(chunk, static_cast<size_t>(n));
    }
    HttpRequest request;
    request.received_at = absl::Now();
    std::vector<std::string> lines = absl::StrSplit(buffer.substr(0, head_end), "\r\n");
    std::vector<std::string> start = absl::StrSplit(lines[0], ' ');
    if (start.size() == 3) {
      request.method = start[0];
      request.target = start[1];
      request.version = start[2];
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      request.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    size_t length = 0;
    if (auto found = request.headers.find("content-length"); found != request.headers.end()) {
      (void)absl::SimpleAtoi(found->second, &length);
    }
    buffer.erase(0, head_end + 4);
    while (buffer.size() < length) {
      const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
      buffer.append(chunk, static_cast<size_t>(n));
    }
    request.body = buffer.substr(0, length);
    buffer.erase(0, length);
    const HttpResponse response = handler_(request);
    // A slow answer; Stop() ends the wait.
    for (const absl::Time until = absl::Now() + response.delay;
         absl::Now() < until && !stopping_.load();) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    std::string out = absl::StrCat("HTTP/1.1 ", response.status, " ", Reason(response.status),
                                   "\r\nContent-Length: ", response.body.size(), "\r\n");
    for (const auto& [name, value] : response.headers)
      absl::StrAppend(&out, name, ": ", value, "\r\n");
    absl::StrAppend(&out, "\r\n", response.body);
    if (!SendAll(fd, out)) return;
  }
}

}  // namespace walfeed::test
