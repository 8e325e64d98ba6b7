// FeedOptions: how the gRPC feed batches, paces and paces-down its streams.
// Defaults are written here; Validate() rejects bad values once, at start.
#ifndef WALFEED_SERVER_FEED_FEED_OPTIONS_H_
#define WALFEED_SERVER_FEED_FEED_OPTIONS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace walfeed {

struct FeedOptions {
  // host:port to listen on.
  std::string listen_address = "127.0.0.1:50051";
  // A subscriber with nothing to receive gets a progress message this often.
  absl::Duration progress_interval = absl::Seconds(5);
  // Health answers NOT_SERVING once the source has been failing this long without progress.
  absl::Duration unhealthy_after = absl::Seconds(60);
  // Batches per stream message: at most this many changes (the request may ask for fewer) ...
  size_t max_batch_changes = 4000;
  size_t default_batch_changes = 500;
  // ... and about this many bytes, well under gRPC's default 4 MiB receive limit.
  size_t max_batch_bytes = 1 << 20;
  // All streams together hold about this many bytes of changes in messages their clients have
  // not taken yet: with many streams each one's batches shrink (to 64 KiB at least), so memory
  // stays bounded however many subscribers stall.
  size_t max_inflight_bytes = size_t{256} << 20;
  // Server keepalive pings on idle streams, so proxies do not drop them.
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // How long shutdown waits for streams to end before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(2);
  // TLS, from PEM files: plaintext when tls_cert_file is empty. With tls_client_ca_file set,
  // clients must present a certificate signed by that CA (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Bearer tokens, one per line; empty: calls need no token.
  std::string auth_token_file;
  // Admin bearer tokens, one per line (see Authenticator for who may call Admin).
  std::string admin_token_file;
  // Admin calls need a client certificate with one of these names (mutual TLS).
  std::vector<std::string> admin_client_names;

  absl::Status Validate() const {
    if (listen_address.empty()) return absl::InvalidArgumentError("--listen must be host:port");
    if (progress_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("the progress interval must be positive");
    }
    if (max_batch_changes == 0 || default_batch_changes == 0 || max_batch_bytes == 0) {
      return absl::InvalidArgumentError("feed batch limits must be positive");
    }
    if (tls_cert_file.empty() != tls_key_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-cert and --tls-key go together: give both (TLS) or neither (plaintext)");
    }
    if (!admin_client_names.empty() && tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--admin-client-name needs --tls-client-ca: client certificate names are known only "
          "under mutual TLS");
    }
    if (!tls_client_ca_file.empty() && tls_cert_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked over "
          "TLS only");
    }
    return absl::OkStatus();
  }
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_FEED_OPTIONS_H_
