// ReplicationOptions: where and how the change log is replicated into NATS JetStream
// (--replicate-to and the --replication-* / --nats-* settings).
#ifndef WALFEED_SERVER_REPLICATION_REPLICATION_OPTIONS_H_
#define WALFEED_SERVER_REPLICATION_REPLICATION_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/replication/segment_codec.h"

namespace walfeed {

enum class ConfirmAfter {
  // PostgreSQL is told a change is safe once the local log has synced it.
  kLocal,
  // ... once JetStream has also acknowledged it.
  kReplicated,
};

struct ReplicationOptions {
  // The largest change (serialized, its large values out of line) a replicated log stores: it
  // fits one stream message under NATS's default max_payload (1 MB) with room for the headers.
  static constexpr size_t kMaxChangeBytes = 512 << 10;

  // NATS server URLs ("nats://host:port"); empty: no replication.
  std::vector<std::string> servers;
  // The JetStream stream (created when missing, on subject "<stream>.log") and its replicas.
  std::string stream = "walfeed";
  int replicas = 3;
  ConfirmAfter confirm_after = ConfirmAfter::kLocal;

  // Credentials: user and password, a token, or a .creds file (JWT and NKey seed).
  std::string user;
  std::string password;
  std::string token;
  std::string credentials_file;
  // TLS: a CA file to trust, and a client certificate and key (all optional; any of them, or a
  // tls:// URL, turns TLS on).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;

  // A segment (one stream message) holds at most this many bytes, and never more than the
  // servers' max_payload allows.
  size_t segment_bytes = 1 << 20;
  // How a segment is stored in its message (--replication-compression): zstd shrinks changes'
  // repeated names several times over, so the servers store and replicate that much less.
  SegmentCompression compression = SegmentCompression::kZstd;
  // Segments sent and not yet acknowledged at most: the servers check each one's expectation in
  // order as they store it, so a window covers the round trip without losing the fencing; 1
  // publishes one message at a time.
  int in_flight = 8;
  // Ingest failover (--ingest=auto): this walfeed is one of a group that shares the stream and
  // the slot; whichever holds the slot publishes. The replication then waits for the log to
  // reach a stream that is ahead of it instead of failing, and stops (demoted) once another
  // writer publishes after it did.
  bool failover = false;
  // Who publishes, in every message's Walfeed-Writer header: the instance's name
  // (--instance-name) and a token of this process ("walfeed-0/3f9a1c2e").
  std::string writer;

  // Other instances of the group (host:port of their gRPC feed) a replica copies the log from
  // when the stream no longer holds what it lacks (--bootstrap-from); empty: it stops instead.
  std::vector<std::string> bootstrap_from;

  // How long a publish or a read of the stream may take before it is retried.
  absl::Duration request_timeout = absl::Seconds(5);
  // Backoff between attempts while publishing fails (--replication-timeout sets both it and
  // retry_max).
  absl::Duration retry_min = absl::Milliseconds(100);
  absl::Duration retry_max = absl::Seconds(5);

  bool enabled() const { return !servers.empty(); }

  // Rejects a bad value with a sentence naming the setting.
  absl::Status Validate() const {
    for (const std::string& server : servers) {
      if (!absl::StartsWith(server, "nats://") && !absl::StartsWith(server, "tls://")) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--replicate-to names '", server, "': expected nats://host:port or tls://host:port"));
      }
    }
    if (stream.empty() || stream.size() > 200 ||
        stream.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--replication-stream='", stream,
          "' is not a JetStream stream name walfeed uses: letters, digits, '_' and '-' only"));
    }
    if (replicas < 1 || replicas > 5) {
      return absl::InvalidArgumentError(
          "--replication-replicas must be a whole number from 1 to 5 (JetStream's limit)");
    }
    if (in_flight < 1 || in_flight > 32) {
      return absl::InvalidArgumentError(
          "--replication-in-flight must be a whole number from 1 to 32 (segments awaiting "
          "JetStream's acknowledgement)");
    }
    if (confirm_after == ConfirmAfter::kReplicated && servers.empty()) {
      return absl::InvalidArgumentError(
          "--confirm-after=replicated needs --replicate-to: there is nothing to wait for");
    }
    if (tls_cert_file.empty() != tls_key_file.empty()) {
      return absl::InvalidArgumentError(
          "--nats-tls-cert and --nats-tls-key go together: give both or neither");
    }
    return absl::OkStatus();
  }
  std::string subject() const { return stream + ".log"; }
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_REPLICATION_REPLICATION_OPTIONS_H_
