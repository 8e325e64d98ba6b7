// walfeedctl: a command-line client for walfeed.
//
//   walfeedctl subscribe [--server HOST:PORT] [--from-lsn LSN | --cursor C | --from-head]
//                        [--stop-at-head] [--table schema.table]... [--op INSERT]...
//   walfeedctl info [--server HOST:PORT]
//   walfeedctl compact [--server HOST:PORT] [--compaction-lag DURATION] [--delete-retention D]
//   walfeedctl health [--server HOST:PORT]
//   walfeedctl consumers list | reset NAME (--cursor C | --to-start | --to-head) | delete NAME
//   walfeedctl backfill start TABLE [--from-key V]... [--to-key V]... [--where SQL] [--wait]
//                       | list | cancel ID
//   walfeedctl push create NAME --url URL [...] | list | pause NAME | resume NAME | delete NAME
//
// `subscribe` prints one JSON object per change, one a line, on stdout (walfeed's Change as
// JSON; Debezium's envelope with --format debezium; one line of text with --format text; progress
// messages go to stderr with --show-progress). Values walfeed sends out of line are fetched and
// printed whole (--large-values ref prints their references instead). `info` prints the feed
// description as JSON. `compact` runs a full compaction pass, waits for it, and prints what it
// removed as JSON (the durations override the server's settings for this pass). `health` asks the
// standard grpc.health.v1 service and exits 0 when walfeed is SERVING (a container health check).
// `subscribe --consumer NAME` reads as a named consumer whose position the server keeps: it
// resumes where NAME's last run left off and commits each change once printed. `consumers`
// lists them (JSON, one a line), resets one's position or deletes one (admin calls).
// `backfill start` queues a backfill (an admin call) and prints it as JSON; with --wait it then
// follows its progress on stderr and exits 0 once it is done (1 if it failed or was cancelled).
// `backfill list` prints the kept backfills, `backfill cancel` cancels one.
// `push` creates, lists, pauses, resumes and deletes push subscriptions (client/push_command.h).
// Bad flags exit 2 with a message; a failed call exits 1 with the server's status.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/change_text_format.h"
#include "client/debezium_format.h"
#include "client/push_command.h"
#include "client/subscriber.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/core/position.h"
#include "server/core/proto_time.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace {

constexpr char kUsage[] =
    "usage:\n"
    "  walfeedctl subscribe [--server HOST:PORT] [--from-lsn LSN | --cursor CURSOR | --from-head]\n"
    "                       [--stop-at-head] [--table SCHEMA.TABLE]... [--op OP]... "
    "[--show-progress]\n"
    "                       [--format json|text|debezium] [--cursor-file FILE] [--log-id ID]\n"
    "                       [--large-values fetch|ref] [--where CONDITION] [--consumer NAME]\n"
    "  walfeedctl info [--server HOST:PORT]\n"
    "  walfeedctl compact [--server HOST:PORT] [--compaction-lag DURATION] "
    "[--delete-retention DURATION]\n"
    "  walfeedctl health [--server HOST:PORT]\n"
    "  walfeedctl consumers list | reset NAME (--cursor CURSOR | --to-start | --to-head) |\n"
    "                       delete NAME   [--server HOST:PORT]\n"
    "  walfeedctl backfill start SCHEMA.TABLE [--from-key VALUE]... [--to-key VALUE]...\n"
    "                       [--where SQL] [--chunk-rows N] [--wait]\n"
    "  walfeedctl backfill list | cancel ID   [--server HOST:PORT]\n"
    "  walfeedctl push create NAME --url URL [--format json|debezium] [--table SCHEMA.TABLE]...\n"
    "                       [--tables A,B] [--op OP]... [--where CONDITION] [--secret-file FILE]\n"
    "                       [--header 'Name: value']... [--batch-changes N] [--batch-bytes N]\n"
    "                       [--timeout DURATION] [--ca-file PEM] [--http-version auto|1.1|2]\n"
    "                       [--from-head | --cursor CURSOR]\n"
    "  walfeedctl push list | pause NAME | resume NAME [--to-start | --to-head] | delete NAME\n"
    "subscribe --consumer NAME reads as a named consumer: the server keeps its position, and\n"
    "each change printed is committed.\n"
    "Every command also takes [--tls-ca PEM] [--tls-cert PEM --tls-key PEM] (TLS, mutual TLS)\n"
    "and [--token-file FILE] (a bearer token; or set $WALFEED_TOKEN).\n"
    "Durations are like 0s, 90s, 30m, 24h. LSNs are PostgreSQL's X/Y form (e.g. 0/16B3748) or "
    "decimal; a cursor is X/Y:seq.\n"
    "The server defaults to $WALFEED_SERVER or 127.0.0.1:50051. Several, comma-separated (a\n"
    "walfeed and its replicas), are tried in turn: subscribe moves on to the next after a\n"
    "connection error; compact takes one (each instance compacts its own log).\n";

struct Options {
  std::string command;
  std::string server;
  walfeed::v1::SubscribeRequest request;
  walfeed::v1::CompactRequest compact;
  // consumers: the subcommand (list, reset, delete) and what reset sets.
  std::string subcommand;
  walfeed::v1::ResetConsumerRequest reset;
  // backfill: the subcommand (start, list, cancel), its request and whether to wait.
  walfeed::v1::BackfillRequest backfill;
  uint64_t backfill_id = 0;
  bool wait = false;
  // push: its subcommand and what it sends.
  walfeed::PushCommand push;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string token;
  bool show_progress = false;
  std::string format = "json";  // json, text or debezium
  std::string cursor_file;
  bool fetch_large_values = true;
};

bool ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream file(path);
  if (!file) return false;
  std::stringstream contents;
  contents << file.rdbuf();
  *out = contents.str();
  return true;
}

int UsageError(const std::string& message) {
  std::cerr << "walfeedctl: " << message << "\n" << kUsage;
  return 2;
}

// Parses argv into `options`; returns a non-empty error message on bad input.
std::string ParseArgs(int argc, char** argv, Options* options) {
  if (argc < 2) return "missing command";
  options->command = argv[1];
  if (options->command != "subscribe" && options->command != "info" &&
      options->command != "compact" && options->command != "health" &&
      options->command != "consumers" && options->command != "backfill" &&
      options->command != "push") {
    return absl::StrCat("unknown command '", options->command, "'");
  }
  int first_flag = 2;
  if (options->command == "consumers") {
    options->subcommand = argc > 2 ? argv[2] : "";
    if (options->subcommand == "list") {
      first_flag = 3;
    } else if (options->subcommand == "reset" || options->subcommand == "delete") {
      if (argc < 4 || absl::StartsWith(argv[3], "--")) {
        return absl::StrCat("consumers ", options->subcommand, " needs the consumer's NAME");
      }
      options->reset.set_consumer(argv[3]);
      first_flag = 4;
    } else {
      return "consumers needs list, reset NAME or delete NAME";
    }
  }
  if (options->command == "backfill") {
    options->subcommand = argc > 2 ? argv[2] : "";
    const bool named = options->subcommand == "start" || options->subcommand == "cancel";
    if (options->subcommand == "list") {
      first_flag = 3;
    } else if (named) {
      if (argc < 4 || absl::StartsWith(argv[3], "--")) {
        return options->subcommand == "start" ? "backfill start needs the TABLE"
                                              : "backfill cancel needs the backfill's ID";
      }
      if (options->subcommand == "start") {
        options->backfill.set_table(argv[3]);
      } else if (!absl::SimpleAtoi(argv[3], &options->backfill_id)) {
        return absl::StrCat("backfill cancel: '", argv[3], "' is not a backfill ID (a number)");
      }
      first_flag = 4;
    } else {
      return "backfill needs start TABLE, list or cancel ID";
    }
  }
  if (options->command == "push") {
    if (std::string error = walfeed::ParsePushSubcommand(argc, argv, &first_flag, &options->push);
        !error.empty()) {
      return error;
    }
  }
  if (const char* token = std::getenv("WALFEED_TOKEN")) options->token = token;
  const char* env_server = std::getenv("WALFEED_SERVER");
  options->server = env_server ? env_server : "127.0.0.1:50051";
  const bool subscribe = options->command == "subscribe";
  const bool compact = options->command == "compact";
  const bool reset = options->command == "consumers" && options->subcommand == "reset";
  const bool backfill = options->command == "backfill" && options->subcommand == "start";
  for (int i = first_flag; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = flag.find('='); eq != std::string::npos && flag.rfind("--", 0) == 0) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
      has_value = true;
    }
    const auto take_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    if (options->command == "push") {
      std::optional<std::string> taken = walfeed::ParsePushFlag(
          flag,
          [&](std::string* out) {
            if (!take_value()) return false;
            *out = value;
            return true;
          },
          &options->push);
      if (taken.has_value()) {
        if (!taken->empty()) return *taken;
        continue;
      }
    }
    if (flag == "--server") {
      if (!take_value()) return "--server needs HOST:PORT";
      options->server = value;
    } else if (flag == "--tls-ca" || flag == "--tls-cert" || flag == "--tls-key") {
      if (!take_value()) return absl::StrCat(flag, " needs a PEM file");
      std::string contents;
      if (!ReadWholeFile(value, &contents)) {
        return absl::StrCat("cannot read ", flag, " file '", value, "'");
      }
      (flag == "--tls-ca"     ? options->tls_ca
       : flag == "--tls-cert" ? options->tls_cert
                              : options->tls_key) = contents;
    } else if (flag == "--token-file") {
      if (!take_value()) return "--token-file needs a file holding the token";
      std::string contents;
      if (!ReadWholeFile(value, &contents))
        return absl::StrCat("cannot read token file '", value, "'");
      // The first non-blank line, as walfeed reads its own token file.
      options->token.clear();
      for (absl::string_view line : absl::StrSplit(contents, '\n')) {
        line = absl::StripAsciiWhitespace(line);
        if (!line.empty()) {
          options->token = std::string(line);
          break;
        }
      }
      if (options->token.empty()) return absl::StrCat("token file '", value, "' holds no token");
    } else if (subscribe && flag == "--from-lsn") {
      if (!take_value()) return "--from-lsn needs an LSN";
      absl::StatusOr<uint64_t> lsn = walfeed::ParseLsn(value);
      if (!lsn.ok()) return std::string(lsn.status().message());
      options->request.set_from_lsn(*lsn);
    } else if (subscribe && flag == "--cursor") {
      if (!take_value()) return "--cursor needs a cursor such as 0/16B3748:3";
      absl::StatusOr<walfeed::Position> cursor = walfeed::ParseCursor(value);
      if (!cursor.ok()) return std::string(cursor.status().message());
      options->request.set_cursor(value);
    } else if (subscribe && flag == "--where") {
      if (!take_value()) return "--where needs a condition such as \"status = 'shipped'\"";
      options->request.set_where(value);
    } else if (subscribe && flag == "--consumer") {
      if (!take_value()) return "--consumer needs the consumer's name";
      options->request.set_consumer(value);
    } else if (reset && flag == "--cursor") {
      if (!take_value() || !walfeed::ParseCursor(value).ok()) {
        return "--cursor needs a cursor such as 0/16B3748:3";
      }
      options->reset.set_cursor(value);
    } else if (backfill && (flag == "--from-key" || flag == "--to-key")) {
      if (!take_value()) return absl::StrCat(flag, " needs a key value (repeat it per key column)");
      (flag == "--from-key" ? options->backfill.add_from_key(value)
                            : options->backfill.add_to_key(value));
    } else if (backfill && flag == "--where") {
      if (!take_value()) return "--where needs an SQL condition such as \"region = 'eu'\"";
      options->backfill.set_where(value);
    } else if (backfill && flag == "--chunk-rows") {
      uint32_t rows = 0;
      if (!take_value() || !absl::SimpleAtoi(value, &rows) || rows == 0) {
        return "--chunk-rows needs a number of rows above 0";
      }
      options->backfill.set_chunk_rows(rows);
    } else if (backfill && flag == "--wait") {
      options->wait = true;
    } else if (reset && flag == "--to-start") {
      options->reset.set_to_start(true);
    } else if (reset && flag == "--to-head") {
      options->reset.set_to_head(true);
    } else if (subscribe && flag == "--log-id") {
      if (!take_value()) return "--log-id needs the log id the cursor came from (walfeedctl info)";
      options->request.set_log_id(value);
    } else if (subscribe && flag == "--from-head") {
      options->request.set_from_head(true);
    } else if (subscribe && flag == "--stop-at-head") {
      options->request.set_stop_at_head(true);
    } else if (subscribe && flag == "--cursor-file") {
      if (!take_value()) return "--cursor-file needs a file to keep the cursor in";
      options->cursor_file = value;
    } else if (subscribe && flag == "--show-progress") {
      options->show_progress = true;
    } else if (subscribe && flag == "--format") {
      if (!take_value() || (value != "json" && value != "text" && value != "debezium"))
        return "--format must be json, text or debezium";
      options->format = value;
    } else if (subscribe && flag == "--large-values") {
      if (!take_value() || (value != "fetch" && value != "ref")) {
        return "--large-values must be fetch (print values whole) or ref (print their references)";
      }
      options->fetch_large_values = value == "fetch";
    } else if (subscribe && flag == "--table") {
      if (!take_value()) return "--table needs SCHEMA.TABLE";
      options->request.add_tables(value);
    } else if (subscribe && flag == "--op") {
      if (!take_value()) return "--op needs INSERT, UPDATE, DELETE, TRUNCATE, READ or MESSAGE";
      walfeed::v1::Change::Op op;
      if (!walfeed::v1::Change::Op_Parse(absl::AsciiStrToUpper(value), &op) ||
          op == walfeed::v1::Change::OP_UNSPECIFIED) {
        return absl::StrCat("--op '", value,
                            "' is not INSERT, UPDATE, DELETE, TRUNCATE, READ or MESSAGE");
      }
      options->request.add_ops(op);
    } else if (compact && (flag == "--compaction-lag" || flag == "--delete-retention")) {
      absl::Duration duration;
      if (!take_value() || !absl::ParseDuration(value, &duration) ||
          duration < absl::ZeroDuration() || duration == absl::InfiniteDuration()) {
        return absl::StrCat(flag, " needs a duration of zero or more, such as 0s, 90s or 24h");
      }
      google::protobuf::Duration* out = flag == "--compaction-lag"
                                            ? options->compact.mutable_compaction_lag()
                                            : options->compact.mutable_delete_retention();
      walfeed::ToProtoDuration(duration, out);
    } else {
      return absl::StrCat("unknown flag '", flag, "' for ", options->command);
    }
  }
  if (options->command == "push") {
    if (std::string error = walfeed::CheckPushCommand(options->push); !error.empty()) return error;
  }
  if (options->tls_cert.empty() != options->tls_key.empty()) {
    return "--tls-cert and --tls-key go together";
  }
  if (!options->tls_cert.empty() && options->tls_ca.empty()) {
    return "--tls-cert needs --tls-ca: client certificates are sent over TLS only";
  }
  const walfeed::v1::SubscribeRequest& r = options->request;
  if ((r.from_lsn() != 0) + !r.cursor().empty() + r.from_head() > 1) {
    return "use at most one of --from-lsn, --cursor and --from-head";
  }
  if (!r.consumer().empty() && !options->cursor_file.empty()) {
    return "--consumer and --cursor-file do not go together: the server keeps a consumer's cursor";
  }
  const walfeed::v1::ResetConsumerRequest& rc = options->reset;
  if (reset && !rc.cursor().empty() + rc.to_start() + rc.to_head() != 1) {
    return "consumers reset needs one of --cursor, --to-start and --to-head";
  }
  return "";
}

int RpcFailed(const grpc::Status& status) {
  std::cerr << "walfeedctl: " << status.error_code() << " " << status.error_message() << "\n";
  return 1;
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

// Every call carries the bearer token, when there is one.
void Authorize(const Options& options, grpc::ClientContext* context) {
  if (!options.token.empty()) context->AddMetadata("authorization", "Bearer " + options.token);
}

// One GetFeedInfo call, with the token and a ten-second deadline.
grpc::Status GetFeedInfo(walfeed::v1::ChangeFeed::Stub& stub, const Options& options,
                         walfeed::v1::FeedInfo* info) {
  grpc::ClientContext context;
  Authorize(options, &context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return stub.GetFeedInfo(&context, walfeed::v1::GetFeedInfoRequest(), info);
}

// A named consumer's cursor, kept by the server: nothing to load (the server resumes the
// consumer), and each cursor saved is committed.
class ConsumerCursorStore final : public walfeed::CursorStore {
 public:
  ConsumerCursorStore(walfeed::v1::ChangeFeed::Stub* stub, const Options* options)
      : stub_(stub), options_(options) {}
  absl::StatusOr<walfeed::SavedCursor> Load() override { return walfeed::SavedCursor(); }
  absl::Status Save(const walfeed::SavedCursor& saved) override {
    walfeed::v1::CommitRequest request;
    request.set_consumer(options_->request.consumer());
    request.set_cursor(saved.cursor);
    request.set_log_id(saved.log_id);
    grpc::ClientContext context;
    Authorize(*options_, &context);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    walfeed::v1::CommitResponse response;
    const grpc::Status status = stub_->Commit(&context, request, &response);
    if (status.ok()) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("cannot commit consumer '",
                                               options_->request.consumer(), "' at ", saved.cursor,
                                               ": ", status.error_message()));
  }

 private:
  walfeed::v1::ChangeFeed::Stub* const stub_;
  const Options* const options_;
};

// Prints the feed through walfeed::Subscriber: reconnects with backoff after transport errors
// (saying so on stderr) and resumes after the last change printed, saved in --cursor-file.
int Subscribe(walfeed::v1::ChangeFeed::Stub& stub,
              const std::shared_ptr<grpc::ChannelCredentials>& credentials,
              const Options& options) {
  // Debezium's envelope names the database: ask the feed once.
  walfeed::DebeziumSource debezium;
  if (options.format == "debezium") {
    walfeed::v1::FeedInfo info;
    if (grpc::Status status = GetFeedInfo(stub, options, &info); !status.ok()) {
      return RpcFailed(status);
    }
    debezium.database = info.database();
  }
  std::unique_ptr<walfeed::CursorStore> store;
  if (!options.cursor_file.empty()) {
    store = std::make_unique<walfeed::FileCursorStore>(options.cursor_file);
  } else if (!options.request.consumer().empty()) {
    store = std::make_unique<ConsumerCursorStore>(&stub, &options);
  }
  walfeed::SubscriberOptions subscriber_options;
  subscriber_options.server = options.server;
  subscriber_options.credentials = credentials;
  subscriber_options.token = options.token;
  subscriber_options.request = options.request;
  subscriber_options.store = store.get();
  subscriber_options.fetch_large_values = options.fetch_large_values;
  walfeed::Subscriber subscriber(subscriber_options);
  const absl::Status ended = subscriber.Run(
      [&](const walfeed::v1::Change& change) {
        if (options.format == "text") {
          std::cout << walfeed::FormatChangeAsText(change) << "\n";
        } else if (options.format == "debezium") {
          std::cout << walfeed::FormatChangeAsDebezium(change, debezium, absl::Now()) << "\n";
        } else {
          std::cout << ToJson(change, false) << "\n";
        }
        std::cout.flush();
        return std::cout ? absl::OkStatus() : absl::DataLossError("stdout is closed");
      },
      [&](const std::string& cursor, const std::string& head_cursor) {
        if (options.show_progress) {
          std::cerr << "progress cursor=" << cursor << " head=" << head_cursor << "\n";
        }
      },
      [](const absl::Status& error, absl::Duration backoff) {
        std::cerr << "walfeedctl: " << error.message() << "; retrying in "
                  << absl::FormatDuration(backoff) << "\n";
      });
  if (!ended.ok()) {
    std::cerr << "walfeedctl: " << static_cast<int>(ended.code()) << " " << ended.message() << "\n";
    if (walfeed::IsLogMismatch(ended) && !options.cursor_file.empty()) {
      std::cerr << "walfeedctl: the cursor in '" << options.cursor_file
                << "' belongs to another log: remove that file and read again from the start "
                   "(--from-lsn 0) into a fresh copy of your state\n";
    }
    return 1;
  }
  return 0;
}

int Info(walfeed::v1::ChangeFeed::Stub& stub, const Options& options) {
  walfeed::v1::FeedInfo info;
  if (grpc::Status status = GetFeedInfo(stub, options, &info); !status.ok()) {
    return RpcFailed(status);
  }
  std::cout << ToJson(info, true) << "\n";
  return 0;
}

int Compact(const std::shared_ptr<grpc::Channel>& channel, const Options& options) {
  walfeed::v1::Admin::Stub stub(channel);
  grpc::ClientContext context;
  Authorize(options, &context);
  walfeed::v1::CompactionResult result;
  grpc::Status status = stub.Compact(&context, options.compact, &result);
  if (!status.ok()) return RpcFailed(status);
  std::cout << ToJson(result, true) << "\n";
  return 0;
}

int Consumers(const std::shared_ptr<grpc::Channel>& channel, const Options& options) {
  if (options.subcommand == "list") {
    walfeed::v1::ChangeFeed::Stub stub(channel);
    walfeed::v1::FeedInfo info;
    if (grpc::Status status = GetFeedInfo(stub, options, &info); !status.ok()) {
      return RpcFailed(status);
    }
    for (const walfeed::v1::ConsumerInfo& consumer : info.consumers()) {
      std::cout << ToJson(consumer, false) << "\n";
    }
    return 0;
  }
  walfeed::v1::Admin::Stub admin(channel);
  grpc::ClientContext context;
  Authorize(options, &context);
  if (options.subcommand == "reset") {
    walfeed::v1::ConsumerInfo consumer;
    grpc::Status status = admin.ResetConsumer(&context, options.reset, &consumer);
    if (!status.ok()) return RpcFailed(status);
    std::cout << ToJson(consumer, false) << "\n";
    return 0;
  }
  walfeed::v1::DeleteConsumerRequest request;
  request.set_consumer(options.reset.consumer());
  walfeed::v1::DeleteConsumerResponse response;
  grpc::Status status = admin.DeleteConsumer(&context, request, &response);
  return status.ok() ? 0 : RpcFailed(status);
}

// Follows backfill `id` in FeedInfo until it finishes, its progress on stderr.
int AwaitBackfill(const std::shared_ptr<grpc::Channel>& channel, const Options& options,
                  uint64_t id) {
  walfeed::v1::ChangeFeed::Stub stub(channel);
  std::string shown;
  for (;;) {
    walfeed::v1::FeedInfo info;
    if (grpc::Status status = GetFeedInfo(stub, options, &info); !status.ok()) {
      return RpcFailed(status);
    }
    const walfeed::v1::BackfillInfo* found = nullptr;
    for (const walfeed::v1::BackfillInfo& backfill : info.backfills()) {
      if (backfill.id() == id) found = &backfill;
    }
    if (found == nullptr) {
      std::cerr << "walfeedctl: backfill " << id << " is no longer listed\n";
      return 1;
    }
    const std::string line =
        absl::StrCat("backfill ", id, ": ", found->state(), ", ", found->chunks(), " chunks, ",
                     found->rows_read(), " rows read, ", found->rows_appended(), " appended, ",
                     found->rows_superseded(), " superseded",
                     found->error().empty() ? "" : absl::StrCat(" (", found->error(), ")"));
    if (line != shown) std::cerr << line << "\n";
    shown = line;
    if (found->state() == "done") return 0;
    if (found->state() == "failed" || found->state() == "cancelled") return 1;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

int Backfill(const std::shared_ptr<grpc::Channel>& channel, const Options& options) {
  if (options.subcommand == "list") {
    walfeed::v1::ChangeFeed::Stub stub(channel);
    walfeed::v1::FeedInfo info;
    if (grpc::Status status = GetFeedInfo(stub, options, &info); !status.ok()) {
      return RpcFailed(status);
    }
    for (const walfeed::v1::BackfillInfo& backfill : info.backfills()) {
      std::cout << ToJson(backfill, false) << "\n";
    }
    return 0;
  }
  walfeed::v1::Admin::Stub admin(channel);
  grpc::ClientContext context;
  Authorize(options, &context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  walfeed::v1::BackfillInfo backfill;
  grpc::Status status;
  if (options.subcommand == "cancel") {
    walfeed::v1::CancelBackfillRequest request;
    request.set_id(options.backfill_id);
    status = admin.CancelBackfill(&context, request, &backfill);
  } else {
    status = admin.Backfill(&context, options.backfill, &backfill);
  }
  if (!status.ok()) return RpcFailed(status);
  std::cout << ToJson(backfill, false) << std::endl;
  return options.wait ? AwaitBackfill(channel, options, backfill.id()) : 0;
}

// Exits 0 when the server answers SERVING within five seconds.
int Health(const std::shared_ptr<grpc::Channel>& channel, const Options& options) {
  grpc::health::v1::Health::Stub stub(channel);
  grpc::ClientContext context;
  Authorize(options, &context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub.Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  if (!status.ok()) return RpcFailed(status);
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

}  // namespace

// A channel to the first of the comma-separated addresses that accepts a connection within a
// few seconds (the instances of one group serve the same feed); the first one when none does, so
// the call fails with its error.
std::shared_ptr<grpc::Channel> FirstReachable(
    const std::string& servers, const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  std::vector<std::string> addresses = absl::StrSplit(servers, ',', absl::SkipWhitespace());
  for (std::string& address : addresses) address = std::string(absl::StripAsciiWhitespace(address));
  if (addresses.size() <= 1) {
    return grpc::CreateChannel(addresses.empty() ? servers : addresses.front(), credentials);
  }
  for (const std::string& address : addresses) {
    std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(address, credentials);
    if (channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(3)))) {
      return channel;
    }
  }
  return grpc::CreateChannel(addresses.front(), credentials);
}

int main(int argc, char** argv) {
  if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  Options options;
  if (std::string error = ParseArgs(argc, argv, &options); !error.empty()) return UsageError(error);
  if (options.command == "compact" && options.server.find(',') != std::string::npos) {
    return UsageError(
        "compact acts on one instance (each compacts its own log): give one --server");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_ca;
    ssl.pem_cert_chain = options.tls_cert;
    ssl.pem_private_key = options.tls_key;
    credentials = grpc::SslCredentials(ssl);
  }
  std::shared_ptr<grpc::Channel> channel = FirstReachable(options.server, credentials);
  if (options.command == "compact") return Compact(channel, options);
  if (options.command == "health") return Health(channel, options);
  if (options.command == "consumers") return Consumers(channel, options);
  if (options.command == "backfill") return Backfill(channel, options);
  if (options.command == "push") {
    walfeed::v1::Admin::Stub admin(channel);
    return walfeed::RunPushCommand(
        admin, [&options](grpc::ClientContext* context) { Authorize(options, context); },
        options.push);
  }
  walfeed::v1::ChangeFeed::Stub stub(channel);
  return options.command == "subscribe" ? Subscribe(stub, credentials, options)
                                        : Info(stub, options);
}
