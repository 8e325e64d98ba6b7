// Authenticator: bearer-token authentication of gRPC calls.
//
// With no tokens configured every call is let in. Otherwise a call must carry
// `authorization: Bearer <token>` with one of the configured tokens (one per line of
// --auth-token-file, so a token can be rotated without downtime for clients); anything else gets
// UNAUTHENTICATED before it can see data. Tokens are compared in constant time and never logged.
// Health checks and server reflection (the schema, no data) stay open.
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
  explicit Authenticator(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}

  // The tokens in `path`, one per line (blank lines and surrounding spaces ignored). Fails when
  // the file cannot be read or holds no token.
  static absl::StatusOr<Authenticator> FromFile(const std::string& path);

  bool enabled() const { return !tokens_.empty(); }

  // OK, or UNAUTHENTICATED with a sentence saying what is missing.
  grpc::Status Check(const grpc::ServerContextBase& context) const;

 private:
  std::vector<std::string> tokens_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_FEED_AUTHENTICATOR_H_
