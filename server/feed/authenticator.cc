#include "server/feed/authenticator.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/error_reason.h"
#include "server/feed/grpc_status.h"

namespace walfeed {
namespace {

constexpr char kBearer[] = "Bearer ";

// Equal contents, in time that depends only on the lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

}  // namespace

absl::StatusOr<Authenticator> Authenticator::FromFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the token file '", path, "' given by --auth-token-file"));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(contents.str(), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) tokens.emplace_back(line);
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the token file '", path, "' holds no token (one per line)"));
  }
  return Authenticator(std::move(tokens));
}

grpc::Status Authenticator::Check(const grpc::ServerContextBase& context) const {
  if (tokens_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find("authorization");
  if (found == metadata.end()) {
    return GrpcError(grpc::StatusCode::UNAUTHENTICATED,
                     "this walfeed requires a bearer token: send 'authorization: Bearer <token>'",
                     reason::kUnauthenticated);
  }
  const absl::string_view header(found->second.data(), found->second.size());
  bool accepted = false;
  if (absl::StartsWith(header, kBearer)) {
    const absl::string_view token = header.substr(sizeof(kBearer) - 1);
    for (const std::string& known : tokens_) accepted |= ConstantTimeEquals(token, known);
  }
  if (!accepted) {
    return GrpcError(grpc::StatusCode::UNAUTHENTICATED,
                     "the bearer token in 'authorization' is not valid for this walfeed",
                     reason::kUnauthenticated);
  }
  return grpc::Status::OK;
}

}  // namespace walfeed
