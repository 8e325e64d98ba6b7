// Authenticator: bearer-token authentication of gRPC calls, with a separate credential for admin.
//
// Reading (ChangeFeed): with no consumer tokens configured every call is let in. Otherwise a call
// must carry `authorization: Bearer <token>` with one of the consumer tokens (one per line of
// --auth-token-file, so a token can be rotated without downtime for clients) or an admin token;
// anything else gets UNAUTHENTICATED before it can see data.
// Administering (Admin: compaction now, resets and backfills later) needs its own credential: a
// token from --admin-token-file, and, where --admin-client-name is set, a client certificate
// (mutual TLS) whose common name or DNS name is one of those names. A consumer token gets
// PERMISSION_DENIED. With consumer tokens but no admin token file, admin calls are closed; with
// no tokens and no admin names at all they are open (admin_open(), said in the start log).
// Tokens are compared in constant time and never logged. Health checks and server reflection
// (the schema, no data) stay open. Immutable after construction; thread-safe.
#ifndef WALFEED_SERVER_FEED_AUTHENTICATOR_H_
#define WALFEED_SERVER_FEED_AUTHENTICATOR_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace walfeed {

class Authenticator {
 public:
  Authenticator() = default;
  Authenticator(std::vector<std::string> tokens, std::vector<std::string> admin_tokens = {},
                std::vector<std::string> admin_client_names = {})
      : tokens_(std::move(tokens)),
        admin_tokens_(std::move(admin_tokens)),
        admin_client_names_(std::move(admin_client_names)) {}

  // The tokens in `path`, one per line (blank lines and surrounding spaces ignored). Fails when
  // the file cannot be read or holds no token, naming `flag`.
  static absl::StatusOr<std::vector<std::string>> ReadTokens(const std::string& path,
                                                             const std::string& flag);

  bool enabled() const { return !tokens_.empty(); }
  // Anyone who reaches the port may call Admin.
  bool admin_open() const {
    return tokens_.empty() && admin_tokens_.empty() && admin_client_names_.empty();
  }

  // For reading: OK, or UNAUTHENTICATED with a sentence saying what is missing.
  grpc::Status Check(const grpc::ServerContextBase& context) const;
  // For Admin calls: OK, UNAUTHENTICATED (no or an unknown token) or PERMISSION_DENIED (a
  // consumer's token, the wrong client certificate, or admin closed).
  grpc::Status CheckAdmin(const grpc::ServerContextBase& context) const;

 private:
  std::vector<std::string> tokens_;
  std::vector<std::string> admin_tokens_;
  std::vector<std::string> admin_client_names_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_AUTHENTICATOR_H_
