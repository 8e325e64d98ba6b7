#include "server/feed/authenticator.h"

#include <fstream>
#include <optional>
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

absl::StatusOr<std::vector<std::string>> Authenticator::ReadTokens(const std::string& path,
                                                                   const std::string& flag) {
  std::ifstream file(path);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the token file '", path, "' given by ", flag));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(contents.str(), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) tokens.emplace_back(line);
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the token file '", path, "' given by ", flag,
                                                   " holds no token (one per line)"));
  }
  return tokens;
}

namespace {

// The bearer token the call carries; nullopt when it carries none.
std::optional<absl::string_view> BearerToken(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find("authorization");
  if (found == metadata.end()) return std::nullopt;
  const absl::string_view header(found->second.data(), found->second.size());
  if (!absl::StartsWith(header, kBearer)) return absl::string_view();
  return header.substr(sizeof(kBearer) - 1);
}

bool OneOf(absl::string_view token, const std::vector<std::string>& known) {
  bool accepted = false;
  for (const std::string& candidate : known) accepted |= ConstantTimeEquals(token, candidate);
  return accepted;
}

grpc::Status MissingToken() {
  return GrpcError(grpc::StatusCode::UNAUTHENTICATED,
                   "this walfeed requires a bearer token: send 'authorization: Bearer <token>'",
                   reason::kUnauthenticated);
}

grpc::Status Denied(const std::string& why) {
  return GrpcError(grpc::StatusCode::PERMISSION_DENIED, why, reason::kPermissionDenied);
}

}  // namespace

grpc::Status Authenticator::Check(const grpc::ServerContextBase& context) const {
  if (tokens_.empty()) return grpc::Status::OK;
  const std::optional<absl::string_view> token = BearerToken(context);
  if (!token) return MissingToken();
  if (!OneOf(*token, tokens_) && !OneOf(*token, admin_tokens_)) {
    return GrpcError(grpc::StatusCode::UNAUTHENTICATED,
                     "the bearer token in 'authorization' is not valid for this walfeed",
                     reason::kUnauthenticated);
  }
  return grpc::Status::OK;
}

grpc::Status Authenticator::CheckAdmin(const grpc::ServerContextBase& context) const {
  if (admin_open()) return grpc::Status::OK;
  if (!admin_client_names_.empty()) {
    bool named = false;
    const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
    for (const char* property : {"x509_common_name", "x509_subject_alternative_name"}) {
      if (auth == nullptr) break;
      for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
        const absl::string_view name(value.data(), value.size());
        for (const std::string& allowed : admin_client_names_) named |= name == allowed;
      }
    }
    if (!named) {
      return Denied(
          "admin calls need a client certificate whose name is one of --admin-client-name");
    }
  }
  if (admin_tokens_.empty()) {
    if (tokens_.empty()) return grpc::Status::OK;  // the certificate rule alone
    return Denied(
        "admin calls are closed: this walfeed takes consumer tokens but has no "
        "--admin-token-file; start it with one to administer it");
  }
  const std::optional<absl::string_view> token = BearerToken(context);
  if (!token) return MissingToken();
  if (OneOf(*token, admin_tokens_)) return grpc::Status::OK;
  if (OneOf(*token, tokens_)) {
    return Denied(
        "this token may read the feed but not administer it: admin calls need a token "
        "from --admin-token-file");
  }
  return GrpcError(grpc::StatusCode::UNAUTHENTICATED,
                   "the bearer token in 'authorization' is not valid for this walfeed",
                   reason::kUnauthenticated);
}

}  // namespace walfeed
