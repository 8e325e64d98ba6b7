// ReplicationStream: the CopyBoth I/O of a replication connection after START_REPLICATION.
//
// Next() waits (poll on the socket) up to a timeout for one server message and parses it;
// SendStatus() sends a standby status update and flushes it. The payload of a returned frame is
// valid until the next call to Next(). Not thread-safe: one streaming thread uses it.
#ifndef WALFEED_SERVER_SOURCE_REPLICATION_STREAM_H_
#define WALFEED_SERVER_SOURCE_REPLICATION_STREAM_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/source/pg_connection.h"
#include "server/source/replication_protocol.h"

namespace walfeed {

class ReplicationStream {
 public:
  // `conn` must be in COPY BOTH mode and outlive the stream.
  explicit ReplicationStream(PgConnection* conn) : conn_(conn) {}
  ~ReplicationStream();

  ReplicationStream(const ReplicationStream&) = delete;
  ReplicationStream& operator=(const ReplicationStream&) = delete;

  // True with `frame` filled when a message arrived within `timeout`, false when none did or
  // `wake_fd` (an eventfd, or -1) became readable first. Fails when the server ended the stream
  // or the connection broke.
  absl::StatusOr<bool> Next(absl::Duration timeout, int wake_fd, ReplicationFrame* frame);

  // Reports `flushed` as the LSN up to which everything is durable.
  absl::Status SendStatus(uint64_t flushed, bool reply_requested);

  // Frees the last frame's bytes now rather than at the next Next(): its payload is no longer
  // read after this.
  void ReleaseBuffer();

 private:
  PgConnection* conn_;
  char* buffer_ = nullptr;  // from PQgetCopyData, freed with PQfreemem
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_SOURCE_REPLICATION_STREAM_H_
