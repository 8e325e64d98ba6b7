#include "client/push_command.h"

#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "server/core/position.h"

namespace walfeed {
namespace {

std::string Json(const google::protobuf::Message& message) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out);
  return out;
}

int Failed(const grpc::Status& status) {
  std::cerr << "walfeedctl: " << status.error_code() << " " << status.error_message() << "\n";
  return 1;
}

}  // namespace

std::string ParsePushSubcommand(int argc, char** argv, int* first_flag, PushCommand* command) {
  command->subcommand = argc > 2 ? argv[2] : "";
  const std::string& sub = command->subcommand;
  if (sub == "list") {
    *first_flag = 3;
    return "";
  }
  if (sub != "create" && sub != "pause" && sub != "resume" && sub != "delete") {
    return "push needs create NAME, list, pause NAME, resume NAME or delete NAME";
  }
  if (argc < 4 || absl::StartsWith(argv[3], "--")) {
    return absl::StrCat("push ", sub, " needs the subscription's NAME");
  }
  command->settings.set_name(argv[3]);
  command->target.set_name(argv[3]);
  *first_flag = 4;
  return "";
}

std::optional<std::string> ParsePushFlag(const std::string& flag,
                                         const std::function<bool(std::string*)>& take_value,
                                         PushCommand* command) {
  v1::PushSubscription& s = command->settings;
  std::string value;
  if (command->subcommand == "resume") {
    if (flag == "--to-start") {
      command->target.set_to_start(true);
      return "";
    }
    if (flag == "--to-head") {
      command->target.set_to_head(true);
      return "";
    }
    return std::nullopt;
  }
  if (command->subcommand != "create") return std::nullopt;
  if (flag == "--url") {
    if (!take_value(&value)) return "--url needs the receiver's http:// or https:// URL";
    s.set_url(value);
  } else if (flag == "--format") {
    v1::PushSubscription::Format format;
    if (!take_value(&value) ||
        !v1::PushSubscription::Format_Parse(absl::AsciiStrToUpper(value), &format) ||
        format == v1::PushSubscription::FORMAT_UNSPECIFIED) {
      return "--format must be json or debezium";
    }
    s.set_format(format);
  } else if (flag == "--table" || flag == "--tables") {
    if (!take_value(&value)) return absl::StrCat(flag, " needs SCHEMA.TABLE");
    if (flag == "--table") {
      s.add_tables(value);
    } else {
      for (absl::string_view table : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
        s.add_tables(std::string(absl::StripAsciiWhitespace(table)));
      }
    }
  } else if (flag == "--op") {
    v1::Change::Op op;
    if (!take_value(&value) || !v1::Change::Op_Parse(absl::AsciiStrToUpper(value), &op) ||
        op == v1::Change::OP_UNSPECIFIED) {
      return "--op needs INSERT, UPDATE, DELETE, TRUNCATE, READ or MESSAGE";
    }
    s.add_ops(op);
  } else if (flag == "--where") {
    if (!take_value(&value)) return "--where needs a condition such as \"status = 'shipped'\"";
    s.set_where(value);
  } else if (flag == "--secret-file") {
    if (!take_value(&value)) return "--secret-file needs a file holding the signing secret";
    std::ifstream file(value, std::ios::binary);
    if (!file) return absl::StrCat("cannot read the secret file '", value, "'");
    std::stringstream content;
    content << file.rdbuf();
    std::string secret = content.str();
    if (absl::EndsWith(secret, "\n")) secret.pop_back();
    if (absl::EndsWith(secret, "\r")) secret.pop_back();
    if (secret.empty()) return absl::StrCat("the secret file '", value, "' is empty");
    s.set_secret(secret);
  } else if (flag == "--header") {
    const size_t colon = take_value(&value) ? value.find(':') : std::string::npos;
    if (colon == std::string::npos) return "--header needs 'Name: value'";
    (*s.mutable_headers())[std::string(absl::StripAsciiWhitespace(value.substr(0, colon)))] =
        std::string(absl::StripAsciiWhitespace(value.substr(colon + 1)));
  } else if (flag == "--batch-changes" || flag == "--batch-bytes") {
    uint32_t number = 0;
    if (!take_value(&value) || !absl::SimpleAtoi(value, &number) || number == 0) {
      return absl::StrCat(flag, " needs a number above 0");
    }
    flag == "--batch-changes" ? s.set_batch_changes(number) : s.set_batch_bytes(number);
  } else if (flag == "--timeout") {
    absl::Duration timeout;
    if (!take_value(&value) || !absl::ParseDuration(value, &timeout) ||
        timeout < absl::Milliseconds(1) || timeout > absl::Hours(1)) {
      return "--timeout needs a duration such as 500ms or 10s";
    }
    s.set_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(timeout)));
  } else if (flag == "--ca-file") {
    if (!take_value(&value)) return "--ca-file needs a PEM file on the walfeed server";
    s.set_ca_file(value);
  } else if (flag == "--http-version") {
    if (!take_value(&value)) return "--http-version needs auto, 1.1 or 2";
    if (value == "auto") {
      s.set_http_version(v1::PushSubscription::HTTP_VERSION_AUTO);
    } else if (value == "1.1") {
      s.set_http_version(v1::PushSubscription::HTTP_1_1);
    } else if (value == "2") {
      s.set_http_version(v1::PushSubscription::HTTP_2);
    } else {
      return "--http-version needs auto, 1.1 or 2";
    }
  } else if (flag == "--from-head") {
    s.set_from_head(true);
  } else if (flag == "--cursor") {
    if (!take_value(&value) || !ParseCursor(value).ok()) {
      return "--cursor needs a cursor such as 0/16B3748:3";
    }
    s.set_start_cursor(value);
  } else {
    return std::nullopt;
  }
  return "";
}

std::string CheckPushCommand(const PushCommand& command) {
  if (command.subcommand == "create" && command.settings.url().empty()) {
    return "push create needs --url";
  }
  if (command.subcommand == "create" && command.settings.from_head() &&
      !command.settings.start_cursor().empty()) {
    return "use one of --from-head and --cursor";
  }
  if (command.target.to_start() && command.target.to_head()) {
    return "use one of --to-start and --to-head";
  }
  return "";
}

int RunPushCommand(v1::Admin::Stub& admin,
                   const std::function<void(grpc::ClientContext*)>& authorize,
                   const PushCommand& command) {
  grpc::ClientContext context;
  authorize(&context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  const std::string& sub = command.subcommand;
  grpc::Status status;
  if (sub == "list") {
    v1::PushSubscriptionList list;
    status = admin.ListPushSubscriptions(&context, v1::ListPushSubscriptionsRequest(), &list);
    if (!status.ok()) return Failed(status);
    for (const v1::PushSubscriptionInfo& info : list.subscriptions()) {
      std::cout << Json(info) << "\n";
    }
    return 0;
  }
  if (sub == "delete") {
    v1::DeletePushSubscriptionResponse deleted;
    status = admin.DeletePushSubscription(&context, command.target, &deleted);
    return status.ok() ? 0 : Failed(status);
  }
  v1::PushSubscriptionInfo info;
  if (sub == "create") {
    status = admin.CreatePushSubscription(&context, command.settings, &info);
  } else if (sub == "pause") {
    status = admin.PausePushSubscription(&context, command.target, &info);
  } else {
    status = admin.ResumePushSubscription(&context, command.target, &info);
  }
  if (!status.ok()) return Failed(status);
  std::cout << Json(info) << "\n";
  return 0;
}

}  // namespace walfeed
