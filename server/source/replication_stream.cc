#include "server/source/replication_stream.h"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace walfeed {

ReplicationStream::~ReplicationStream() { ReleaseBuffer(); }

void ReplicationStream::ReleaseBuffer() {
  if (buffer_ != nullptr) PQfreemem(buffer_);
  buffer_ = nullptr;
}

absl::StatusOr<bool> ReplicationStream::Next(absl::Duration timeout, int wake_fd,
                                             ReplicationFrame* frame) {
  ReleaseBuffer();
  PGconn* conn = conn_->raw();
  absl::Time deadline = absl::InfiniteFuture();  // set when we first have to wait
  for (;;) {
    const int length = PQgetCopyData(conn, &buffer_, /*async=*/1);
    if (length > 0) {
      absl::StatusOr<ReplicationFrame> parsed =
          ParseReplicationFrame(absl::string_view(buffer_, length));
      if (!parsed.ok()) return parsed.status();
      *frame = *parsed;
      return true;
    }
    if (length == -1) {
      PGresult* result = PQgetResult(conn);
      std::string why = result ? PQresultErrorMessage(result) : "";
      PQclear(result);
      return absl::UnavailableError(absl::StrCat("PostgreSQL ended the replication stream ", why));
    }
    if (length == -2) {
      return absl::UnavailableError(
          absl::StrCat("replication connection failed: ", PgErrorMessage(conn)));
    }
    const absl::Time now = absl::Now();
    if (deadline == absl::InfiniteFuture()) deadline = now + timeout;
    const absl::Duration left = deadline - now;
    if (left <= absl::ZeroDuration()) return false;
    pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int ready =
        poll(fds, wake_fd >= 0 ? 2 : 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno != EINTR) {
      return absl::UnavailableError(
          absl::StrCat("poll on the replication socket: ", strerror(errno)));
    }
    if (ready > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
        PQconsumeInput(conn) == 0) {
      return absl::UnavailableError(
          absl::StrCat("replication connection failed: ", PgErrorMessage(conn)));
    }
    if (ready > 0 && wake_fd >= 0 && (fds[1].revents & POLLIN) != 0) {
      uint64_t count;
      while (read(wake_fd, &count, sizeof(count)) == sizeof(count)) {
      }
      return false;
    }
    if (ready == 0) return false;
  }
}

absl::Status ReplicationStream::SendStatus(uint64_t flushed, bool reply_requested) {
  const std::string message = EncodeStandbyStatus(flushed, PgNowMicros(), reply_requested);
  PGconn* conn = conn_->raw();
  if (PQputCopyData(conn, message.data(), static_cast<int>(message.size())) <= 0 ||
      PQflush(conn) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot send the standby status update: ", PgErrorMessage(conn)));
  }
  return absl::OkStatus();
}

}  // namespace walfeed
