// JetStreamLog: a NATS JetStream stream used as an append-only log of messages, the only place
// walfeed talks to NATS (C client libnats).
//
// Open() connects to the servers and creates the stream when it is missing (file storage, the
// given replica count, one subject "<stream>.log"). ReadLast() reads the stream's last message
// from the stream itself, not from memory, so it is right after any crash.
//
// Publishing is pipelined (a round trip to a 3-replica stream costs about a millisecond, a 1 MiB
// message several): Send() hands a message to the client and returns, AwaitAck() waits for the
// servers' answer to one message, and the writer keeps a window of messages unanswered. Every
// message has a message id (a retry of a stored message is acknowledged as a duplicate, never
// stored twice) and an expectation that fences every other writer: the first message after
// ReadLast() expects the last sequence it read (also 0 for an empty stream), every later one the
// id of the message before it, which the servers check in order as they store. A message that
// finds another at the end fails with FailedPrecondition, and so does every one sent after it;
// the writer then calls Abandon() and reads the end again. Not thread-safe: one writer thread
// uses it (the client's own thread delivers the answers to AwaitAck()).
#ifndef WALFEED_SERVER_REPLICATION_JETSTREAM_LOG_H_
#define WALFEED_SERVER_REPLICATION_JETSTREAM_LOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/replication/replication_options.h"

namespace walfeed {

class JetStreamLog {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // A message of the stream. From ReadLast(): the last one (sequence 0 and nothing else when the
  // stream is empty; present false when the stream ends at `sequence` but that message is gone:
  // expired by the stream's limits, or deleted).
  struct Message {
    uint64_t sequence = 0;
    bool present = false;
    std::string id;  // its Nats-Msg-Id
    // ReadFrom(): how many messages the stream held after this one when it was delivered.
    uint64_t pending = 0;
    Headers headers;
    std::string data;
    std::string Header(absl::string_view name) const;
  };

  // What the next append expects to find at the stream's end.
  struct Expectation {
    uint64_t last_sequence = 0;  // used while last_id is empty
    std::string last_id;
  };

  // Connects; creates the stream when it is missing, or with `create_missing` false (a reader)
  // fails with NotFound.
  static absl::StatusOr<std::unique_ptr<JetStreamLog>> Open(const ReplicationOptions& options,
                                                            bool create_missing = true);
  ~JetStreamLog();

  JetStreamLog(const JetStreamLog&) = delete;
  JetStreamLog& operator=(const JetStreamLog&) = delete;

  absl::StatusOr<Message> ReadLast();

  // Sends `data` with `headers` under message id `id` (unique among the unanswered ones) without
  // waiting for the answer; fails only when the client cannot take it.
  absl::Status Send(absl::string_view data, const Headers& headers, absl::string_view id,
                    const Expectation& expect);
  // The stream sequence the servers stored message `id` at, or why they did not (also when no
  // answer came within the request timeout).
  absl::StatusOr<uint64_t> AwaitAck(absl::string_view id);
  // Forgets every message still unanswered and every answer not yet taken.
  void Abandon();

  // Reads the stream in order from message `sequence` on: up to `max` messages, waiting up to
  // `wait` for the first (none when nothing came). Consecutive calls that continue where the
  // previous one ended share one reader (an ephemeral pull consumer) on the servers.
  absl::StatusOr<std::vector<Message>> ReadFrom(uint64_t sequence, int max, absl::Duration wait);
  // The sequence of the stream's first stored message; when it holds none, the sequence the next
  // message will get (0 for a stream never written).
  absl::StatusOr<uint64_t> FirstSequence();

  // The largest message the servers accept (their max_payload), headers included.
  int64_t MaxPayload() const;
  // The URL of the server the connection is on ("" while disconnected).
  std::string ConnectedUrl() const;
  const std::string& subject() const { return subject_; }

 private:
  struct Handles;
  JetStreamLog(const ReplicationOptions& options, std::unique_ptr<Handles> handles);
  absl::Status EnsureStream(bool create_missing, bool retried = false);

  const ReplicationOptions options_;
  const std::string subject_;
  std::unique_ptr<Handles> handles_;
  uint64_t reader_next_ = 0;  // the sequence ReadFrom()'s reader delivers next
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_REPLICATION_JETSTREAM_LOG_H_
