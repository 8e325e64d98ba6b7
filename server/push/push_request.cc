#include "server/push/push_request.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/debezium_format.h"
#include "server/push/webhook_signature.h"

namespace walfeed {
namespace {

constexpr absl::string_view kOwnHeaders[] = {
    "content-type", "content-length", "transfer-encoding", "host",
    "expect",       "connection",     "idempotency-key"};

}  // namespace

std::string IdempotencyKey(const v1::PushBatch& batch) {
  return absl::StrCat(batch.log_id(), ".", batch.subscription(), ".", batch.generation(), ".",
                      batch.first_cursor(), ".", batch.last_cursor());
}

std::string PushBody(const v1::PushSubscription& subscription, v1::PushBatch* batch,
                     absl::string_view database, absl::Time now) {
  batch->set_subscription(subscription.name());
  batch->set_idempotency_key(IdempotencyKey(*batch));
  std::string body;
  if (subscription.format() != v1::PushSubscription::DEBEZIUM) {
    (void)google::protobuf::util::MessageToJsonString(*batch, &body);
    return body;
  }
  DebeziumSource source;
  source.database = std::string(database);
  const bool array = subscription.batch_changes() > 1;
  if (array) body += "[";
  for (int i = 0; i < batch->changes_size(); ++i) {
    if (i > 0) body += ",";
    body += FormatChangeAsDebezium(batch->changes(i), source, now);
  }
  if (array) body += "]";
  return body;
}

std::vector<std::pair<std::string, std::string>> PushHeaders(
    const v1::PushSubscription& subscription, const v1::PushBatch& batch, absl::string_view body,
    int attempt, absl::Time now) {
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "application/json"},
      {"Idempotency-Key", batch.idempotency_key()},
      {"Walfeed-Subscription", subscription.name()},
      {"Walfeed-Log-Id", batch.log_id()},
      {"Walfeed-First-Cursor", batch.first_cursor()},
      {"Walfeed-Last-Cursor", batch.last_cursor()},
      {"Walfeed-Changes", absl::StrCat(batch.changes_size())},
      {"Walfeed-Attempt", absl::StrCat(attempt)},
  };
  if (!subscription.secret().empty()) {
    headers.emplace_back(kSignatureHeader, SignPush(subscription.secret(), now, body));
  }
  for (const auto& [name, value] : subscription.headers()) headers.emplace_back(name, value);
  return headers;
}

absl::Status ValidateExtraHeader(absl::string_view name, absl::string_view value) {
  const bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           absl::StrContains("!#$%&'*+-.^_`|~", c);
  });
  if (!token) {
    return absl::InvalidArgumentError(
        absl::StrCat("header name '", name, "' is not an HTTP token (letters, digits, '-', ...)"));
  }
  const std::string lower = absl::AsciiStrToLower(name);
  for (absl::string_view own : kOwnHeaders) {
    if (lower == own) {
      return absl::InvalidArgumentError(
          absl::StrCat("header '", name, "' is set by walfeed itself; leave it out"));
    }
  }
  if (absl::StartsWith(lower, "walfeed-")) {
    return absl::InvalidArgumentError(
        absl::StrCat("header '", name, "': the Walfeed- headers are walfeed's own"));
  }
  if (value.empty() || value.size() > kMaxHeaderValueBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the value of header '", name, "' must be 1 to ",
                                                   kMaxHeaderValueBytes, " bytes"));
  }
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t') || byte == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the value of header '", name, "' holds a control character (a line break, say)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace walfeed
