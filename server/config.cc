#include "server/config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace walfeed {
namespace {

struct Setting {
  const char* flag;  // without the leading "--"
  const char* env;
  const char* default_text;
  const char* help;
  std::function<absl::Status(const std::string& value, Config& config)> apply;
};

absl::Status SetDuration(const char* flag, const std::string& value, absl::Duration* out) {
  absl::Duration parsed;
  if (!absl::ParseDuration(value, &parsed) || parsed <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "='", value,
                     "' is not a positive duration; use a number with a unit, e.g. 5s or 250ms"));
  }
  *out = parsed;
  return absl::OkStatus();
}

// Zero allowed; `forever` (when `forever_allowed`) means InfiniteDuration.
absl::Status SetDurationOrZero(const char* flag, const std::string& value, bool forever_allowed,
                               absl::Duration* out) {
  absl::Duration parsed;
  if (forever_allowed && (value == "forever" || value == "off")) {
    *out = absl::InfiniteDuration();
    return absl::OkStatus();
  }
  if (value == "0") {
    *out = absl::ZeroDuration();
    return absl::OkStatus();
  }
  if (!absl::ParseDuration(value, &parsed) || parsed < absl::ZeroDuration() ||
      parsed == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "='", value, "' is not a duration of zero or more; use a number with a unit, ",
        "e.g. 0s, 90s, 30m or 24h", forever_allowed ? ", or 'forever'" : ""));
  }
  *out = parsed;
  return absl::OkStatus();
}

absl::Status SetBytes(const char* flag, const std::string& value, size_t* out) {
  static const std::pair<absl::string_view, size_t> kUnits[] = {
      {"GiB", size_t{1} << 30}, {"MiB", size_t{1} << 20}, {"KiB", size_t{1} << 10}, {"", 1}};
  for (const auto& [suffix, scale] : kUnits) {
    if (!absl::EndsWith(value, suffix)) continue;
    uint64_t number;
    if (absl::SimpleAtoi(absl::string_view(value).substr(0, value.size() - suffix.size()),
                         &number) &&
        number > 0 && number <= (uint64_t{1} << 40) / scale) {
      *out = number * scale;
      return absl::OkStatus();
    }
    break;
  }
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "='", value,
                                                 "' is not a positive size; use bytes or a number "
                                                 "with KiB, MiB or GiB"));
}

// "a, b,c" -> {"a", "b", "c"}; empty entries are dropped.
std::vector<std::string> SplitList(const std::string& value) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) out.emplace_back(part);
  }
  return out;
}

const std::vector<Setting>& Settings() {
  static const auto* settings = new std::vector<Setting>{
      {"pg", "WALFEED_PG", "(none, required)",
       "PostgreSQL to capture, as a libpq conninfo or postgresql:// URI. Prefer PGPASSWORD or "
       "PGPASSFILE for the password: it is never logged",
       [](const std::string& v, Config& c) {
         c.source.conninfo = v;
         return absl::OkStatus();
       }},
      {"listen", "WALFEED_LISTEN", "127.0.0.1:50051", "gRPC listen address, host:port",
       [](const std::string& v, Config& c) {
         if (v.find(':') == std::string::npos) {
           return absl::InvalidArgumentError(
               absl::StrCat("--listen='", v, "' must be host:port, e.g. 127.0.0.1:50051"));
         }
         c.feed.listen_address = v;
         return absl::OkStatus();
       }},
      {"data-dir", "WALFEED_DATA_DIR", "./walfeed-data", "directory of the durable change log",
       [](const std::string& v, Config& c) {
         c.log.path = v;
         return absl::OkStatus();
       }},
      {"slot", "WALFEED_SLOT", "walfeed", "logical replication slot (created when missing)",
       [](const std::string& v, Config& c) {
         c.source.slot = v;
         return absl::OkStatus();
       }},
      {"publication", "WALFEED_PUBLICATION", "walfeed",
       "publication to stream (created FOR ALL TABLES when missing)",
       [](const std::string& v, Config& c) {
         c.source.publication = v;
         return absl::OkStatus();
       }},
      {"snapshot", "WALFEED_SNAPSHOT", "initial",
       "initial: on first start deliver the rows that already exist as READ changes before any "
       "streamed change; never: stream only changes committed from now on",
       [](const std::string& v, Config& c) {
         if (v == "initial") {
           c.source.snapshot = SnapshotMode::kInitial;
         } else if (v == "never") {
           c.source.snapshot = SnapshotMode::kNever;
         } else {
           return absl::InvalidArgumentError(
               absl::StrCat("--snapshot='", v, "' must be initial or never"));
         }
         return absl::OkStatus();
       }},
      {"on-slot-lost", "WALFEED_ON_SLOT_LOST", "resync",
       "when the log holds changes but the replication slot is gone or invalidated (a failover, a "
       "DROP, max_slot_wal_keep_size): resync creates a new slot and appends only the differences "
       "between the log and PostgreSQL's rows, so every consumer keeps its cursor; fail refuses "
       "to go on",
       [](const std::string& v, Config& c) {
         if (v == "resync") {
           c.source.on_slot_lost = OnSlotLost::kResync;
         } else if (v == "fail") {
           c.source.on_slot_lost = OnSlotLost::kFail;
         } else {
           return absl::InvalidArgumentError(
               absl::StrCat("--on-slot-lost='", v, "' must be resync or fail"));
         }
         return absl::OkStatus();
       }},
      {"tables", "WALFEED_TABLES", "(all published tables)",
       "comma-separated 'schema.table' names or globs (* and ?) of the tables to capture",
       [](const std::string& v, Config& c) {
         c.source.include_tables = SplitList(v);
         return absl::OkStatus();
       }},
      {"exclude-tables", "WALFEED_EXCLUDE_TABLES", "(none)",
       "comma-separated 'schema.table' names or globs of published tables never to capture",
       [](const std::string& v, Config& c) {
         c.source.exclude_tables = SplitList(v);
         return absl::OkStatus();
       }},
      {"exclude-columns", "WALFEED_EXCLUDE_COLUMNS", "(none)",
       "comma-separated 'schema.table.column' names of columns that never reach the log",
       [](const std::string& v, Config& c) {
         c.source.exclude_columns = SplitList(v);
         return absl::OkStatus();
       }},
      {"max-transaction-memory", "WALFEED_MAX_TRANSACTION_MEMORY", "16MiB",
       "a transaction whose decoded changes would take more than this (estimated at four times "
       "what PostgreSQL sends) is staged in the log in parts instead of held in memory (bytes, "
       "or with a KiB, MiB or GiB suffix)",
       [](const std::string& v, Config& c) {
         return SetBytes("max-transaction-memory", v, &c.source.max_transaction_bytes);
       }},
      {"max-inflight-bytes", "WALFEED_MAX_INFLIGHT_BYTES", "256MiB",
       "all Subscribe streams together hold about this much in messages their clients have not "
       "taken yet; with many streams each one's batches shrink (to 64 KiB at least)",
       [](const std::string& v, Config& c) {
         return SetBytes("max-inflight-bytes", v, &c.feed.max_inflight_bytes);
       }},
      {"progress-interval", "WALFEED_PROGRESS_INTERVAL", "5s",
       "how often an idle subscriber gets a progress message",
       [](const std::string& v, Config& c) {
         return SetDuration("progress-interval", v, &c.feed.progress_interval);
       }},
      {"unhealthy-after", "WALFEED_UNHEALTHY_AFTER", "60s",
       "how long the source may fail without progress (PostgreSQL unreachable, the slot gone or "
       "invalidated) before health answers NOT_SERVING",
       [](const std::string& v, Config& c) {
         return SetDuration("unhealthy-after", v, &c.feed.unhealthy_after);
       }},
      {"status-interval", "WALFEED_STATUS_INTERVAL", "10s",
       "how often walfeed reports its durable position to PostgreSQL when nothing else prompts it",
       [](const std::string& v, Config& c) {
         return SetDuration("status-interval", v, &c.source.status_interval);
       }},
      {"tls-cert", "WALFEED_TLS_CERT", "(none: plaintext)",
       "PEM certificate chain for the gRPC listener; with --tls-key, the feed is served over TLS",
       [](const std::string& v, Config& c) {
         c.feed.tls_cert_file = v;
         return absl::OkStatus();
       }},
      {"tls-key", "WALFEED_TLS_KEY", "(none)", "PEM private key of --tls-cert",
       [](const std::string& v, Config& c) {
         c.feed.tls_key_file = v;
         return absl::OkStatus();
       }},
      {"tls-client-ca", "WALFEED_TLS_CLIENT_CA", "(none)",
       "PEM CA certificates: clients must present a certificate signed by one (mutual TLS)",
       [](const std::string& v, Config& c) {
         c.feed.tls_client_ca_file = v;
         return absl::OkStatus();
       }},
      {"auth-token-file", "WALFEED_AUTH_TOKEN_FILE", "(none: no token needed)",
       "file of bearer tokens, one per line; every call except health checks and reflection must "
       "send 'authorization: Bearer <token>' with one of them",
       [](const std::string& v, Config& c) {
         c.feed.auth_token_file = v;
         return absl::OkStatus();
       }},
      {"admin-token-file", "WALFEED_ADMIN_TOKEN_FILE",
       "(none: admin is open only when no token or client name is configured)",
       "file of admin bearer tokens, one per line: Admin calls (compact) need one of them; "
       "consumer tokens get PERMISSION_DENIED there",
       [](const std::string& v, Config& c) {
         c.feed.admin_token_file = v;
         return absl::OkStatus();
       }},
      {"admin-client-name", "WALFEED_ADMIN_CLIENT_NAME", "(none)",
       "comma-separated certificate names (common name or DNS name): under mutual TLS, Admin "
       "calls also need a client certificate with one of them",
       [](const std::string& v, Config& c) {
         c.feed.admin_client_names = absl::StrSplit(v, ',', absl::SkipEmpty());
         return absl::OkStatus();
       }},
      {"config", "WALFEED_CONFIG", "(none)",
       "a file of settings, one 'name = value' a line, names as the flags' without '--' and '#' "
       "for comments; a flag wins over an environment variable, which wins over the file",
       [](const std::string&, Config&) { return absl::OkStatus(); }},  // read before the rest
      {"metrics-listen", "WALFEED_METRICS_LISTEN", "(none: no metrics endpoint)",
       "host:port to serve Prometheus metrics on, at /metrics (e.g. 127.0.0.1:9187)",
       [](const std::string& v, Config& c) {
         if (v.find(':') == std::string::npos) {
           return absl::InvalidArgumentError(
               absl::StrCat("--metrics-listen='", v, "' is not host:port, e.g. 127.0.0.1:9187"));
         }
         c.metrics_listen = v;
         return absl::OkStatus();
       }},
      {"push-config", "WALFEED_PUSH_CONFIG", "(none)",
       "a JSON file of push subscriptions to create at start, or to update keeping their "
       "cursors (README: Push to your web app); others are made with walfeedctl push create",
       [](const std::string& v, Config& c) {
         c.push_config = v;
         return absl::OkStatus();
       }},
      {"compaction-lag", "WALFEED_COMPACTION_LAG", "1h",
       "changes younger than this (by commit time) are never compacted away, so a consumer near "
       "the head sees every change",
       [](const std::string& v, Config& c) {
         return SetDurationOrZero("compaction-lag", v, false, &c.compaction.lag);
       }},
      {"compaction-lag-changes", "WALFEED_COMPACTION_LAG_CHANGES", "0",
       "also keep every one of the newest N changes, whatever their age",
       [](const std::string& v, Config& c) {
         if (!absl::SimpleAtoi(v, &c.compaction.lag_changes)) {
           return absl::InvalidArgumentError(absl::StrCat(
               "--compaction-lag-changes='", v, "' is not a whole number of changes (0 or more)"));
         }
         return absl::OkStatus();
       }},
      {"keep-for-consumers", "WALFEED_KEEP_FOR_CONSUMERS", "false",
       "true: compaction removes nothing a named consumer has not committed yet (nor a push "
       "subscription delivered), so none is ever sent back to re-read (one that stops keeps the "
       "log from shrinking: delete it with walfeedctl consumers delete, walfeedctl push delete)",
       [](const std::string& v, Config& c) {
         if (v != "true" && v != "false") {
           return absl::InvalidArgumentError(
               absl::StrCat("--keep-for-consumers='", v, "' must be true or false"));
         }
         c.keep_for_consumers = v == "true";
         return absl::OkStatus();
       }},
      {"delete-retention", "WALFEED_DELETE_RETENTION", "24h",
       "how long a delete (or truncate) stays in the log as a tombstone before compaction purges "
       "it; a consumer whose cursor is older than a purged tombstone must re-read from 0",
       [](const std::string& v, Config& c) {
         return SetDurationOrZero("delete-retention", v, false, &c.compaction.delete_retention);
       }},
      {"retention", "WALFEED_RETENTION", "forever",
       "how long changes that are never merged (tables without a primary key or unique replica "
       "identity index, and messages) are kept",
       [](const std::string& v, Config& c) {
         return SetDurationOrZero("retention", v, true, &c.compaction.retention);
       }},
      {"retention-bytes", "WALFEED_RETENTION_BYTES", "0 (no limit)",
       "when the log is larger than this, the oldest never-merged changes are removed first "
       "(bytes, or with a KiB, MiB or GiB suffix)",
       [](const std::string& v, Config& c) {
         if (v == "0") {
           c.compaction.retention_bytes = 0;
           return absl::OkStatus();
         }
         size_t bytes = 0;
         if (absl::Status s = SetBytes("retention-bytes", v, &bytes); !s.ok()) return s;
         c.compaction.retention_bytes = bytes;
         return absl::OkStatus();
       }},
      {"compaction-interval", "WALFEED_COMPACTION_INTERVAL", "10m",
       "how often a compaction pass runs in the background ('off': only on 'walfeedctl compact')",
       [](const std::string& v, Config& c) {
         absl::Duration interval;
         if (absl::Status s = SetDurationOrZero("compaction-interval", v, true, &interval);
             !s.ok()) {
           return s;
         }
         if (interval == absl::ZeroDuration()) {
           return absl::InvalidArgumentError(
               "--compaction-interval=0 would compact without pause; use a positive duration or "
               "'off'");
         }
         c.compaction_interval = interval;
         return absl::OkStatus();
       }},
      {"replicate-to", "WALFEED_REPLICATE_TO", "(none: the log stays on this machine)",
       "comma-separated NATS server URLs (nats://host:port, or tls://): the log is published, in "
       "order and exactly once, into a JetStream stream there (see --replication-stream)",
       [](const std::string& v, Config& c) {
         c.replication.servers = SplitList(v);
         return absl::OkStatus();
       }},
      {"follow", "WALFEED_FOLLOW", "(none: this walfeed reads PostgreSQL)",
       "comma-separated NATS server URLs: run as a replica that copies the log from the "
       "JetStream stream another walfeed publishes (--replication-stream) and serves the same "
       "feed, same cursors and log id; --pg is not needed",
       [](const std::string& v, Config& c) {
         c.follow = SplitList(v);
         return absl::OkStatus();
       }},
      {"ingest", "WALFEED_INGEST", "always",
       "always: this walfeed reads PostgreSQL; auto: one of a group of walfeeds with the same "
       "--pg, --slot, --replicate-to and --replication-stream, of which the one holding the slot "
       "ingests and the others serve the stream's copy, taking over when it dies (needs "
       "--confirm-after=replicated)",
       [](const std::string& v, Config& c) {
         if (v != "always" && v != "auto") {
           return absl::InvalidArgumentError(
               absl::StrCat("--ingest='", v, "' must be always or auto"));
         }
         c.ingest_auto = v == "auto";
         return absl::OkStatus();
       }},
      {"instance-name", "WALFEED_INSTANCE_NAME", "(the host name)",
       "this walfeed's name in an ingest group, shown as FeedInfo.replication.writer on every "
       "member while it ingests",
       [](const std::string& v, Config& c) {
         c.instance_name = v;
         return absl::OkStatus();
       }},
      {"bootstrap-from", "WALFEED_BOOTSTRAP_FROM", "(none)",
       "comma-separated host:port of other walfeeds of the group: a replica (--follow, or "
       "--ingest=auto) whose stream no longer holds what it lacks copies it from those that "
       "answer (plaintext gRPC; the list may name the instance itself) instead of stopping",
       [](const std::string& v, Config& c) {
         c.replication.bootstrap_from = SplitList(v);
         return absl::OkStatus();
       }},
      {"replication-stream", "WALFEED_REPLICATION_STREAM", "walfeed",
       "the JetStream stream the log goes into, created when missing on subject '<stream>.log'; "
       "one stream per log",
       [](const std::string& v, Config& c) {
         c.replication.stream = v;
         return absl::OkStatus();
       }},
      {"replication-replicas", "WALFEED_REPLICATION_REPLICAS", "3",
       "copies JetStream keeps of a stream walfeed creates (1 to 5; file storage)",
       [](const std::string& v, Config& c) {
         if (!absl::SimpleAtoi(v, &c.replication.replicas)) c.replication.replicas = 0;
         return absl::OkStatus();
       }},
      {"confirm-after", "WALFEED_CONFIRM_AFTER", "local",
       "local: PostgreSQL is told a change is safe once the local log has synced it; "
       "replicated: only once JetStream has it too, so losing this machine and its disk loses "
       "nothing (PostgreSQL keeps the WAL meanwhile, also while NATS is down)",
       [](const std::string& v, Config& c) {
         if (v == "local") {
           c.replication.confirm_after = ConfirmAfter::kLocal;
         } else if (v == "replicated") {
           c.replication.confirm_after = ConfirmAfter::kReplicated;
         } else {
           return absl::InvalidArgumentError(
               absl::StrCat("--confirm-after='", v, "' must be local or replicated"));
         }
         return absl::OkStatus();
       }},
      {"replication-segment-bytes", "WALFEED_REPLICATION_SEGMENT_BYTES", "1MiB",
       "the most bytes of changes one stream message holds (lowered to fit the NATS servers' "
       "max_payload)",
       [](const std::string& v, Config& c) {
         return SetBytes("replication-segment-bytes", v, &c.replication.segment_bytes);
       }},
      {"replication-compression", "WALFEED_REPLICATION_COMPRESSION", "zstd",
       "how a stream message holds its segment: zstd (compressed; readers decompress a message "
       "whose Walfeed-Compression header says zstd) or none",
       [](const std::string& v, Config& c) {
         if (v == "zstd") {
           c.replication.compression = SegmentCompression::kZstd;
         } else if (v == "none") {
           c.replication.compression = SegmentCompression::kNone;
         } else {
           return absl::InvalidArgumentError(
               absl::StrCat("--replication-compression='", v, "' must be zstd or none"));
         }
         return absl::OkStatus();
       }},
      {"replication-in-flight", "WALFEED_REPLICATION_IN_FLIGHT", "8",
       "stream messages sent and not yet acknowledged at most (1 to 32; 1 waits for each)",
       [](const std::string& v, Config& c) {
         if (!absl::SimpleAtoi(v, &c.replication.in_flight)) c.replication.in_flight = 0;
         return absl::OkStatus();
       }},
      {"replication-timeout", "WALFEED_REPLICATION_TIMEOUT", "5s",
       "how long a publish to JetStream (or a read of the stream's end) may take before it is "
       "given up and retried from the stream's end; retries back off up to this long too",
       [](const std::string& v, Config& c) {
         if (absl::Status s = SetDuration("replication-timeout", v, &c.replication.request_timeout);
             !s.ok()) {
           return s;
         }
         c.replication.retry_max = c.replication.request_timeout;
         return absl::OkStatus();
       }},
      {"nats-user", "WALFEED_NATS_USER", "(none)", "NATS user name (with WALFEED_NATS_PASSWORD)",
       [](const std::string& v, Config& c) {
         c.replication.user = v;
         return absl::OkStatus();
       }},
      {"nats-password", "WALFEED_NATS_PASSWORD", "(none)",
       "NATS password; prefer the environment variable: it is never logged",
       [](const std::string& v, Config& c) {
         c.replication.password = v;
         return absl::OkStatus();
       }},
      {"nats-token", "WALFEED_NATS_TOKEN", "(none)",
       "NATS authentication token; prefer the environment variable",
       [](const std::string& v, Config& c) {
         c.replication.token = v;
         return absl::OkStatus();
       }},
      {"nats-credentials", "WALFEED_NATS_CREDENTIALS", "(none)",
       "NATS .creds file (user JWT and NKey seed)",
       [](const std::string& v, Config& c) {
         c.replication.credentials_file = v;
         return absl::OkStatus();
       }},
      {"nats-tls-ca", "WALFEED_NATS_TLS_CA", "(none)",
       "PEM CA certificates to trust for the NATS servers (turns TLS on)",
       [](const std::string& v, Config& c) {
         c.replication.tls_ca_file = v;
         return absl::OkStatus();
       }},
      {"nats-tls-cert", "WALFEED_NATS_TLS_CERT", "(none)",
       "PEM client certificate for the NATS servers (with --nats-tls-key; turns TLS on)",
       [](const std::string& v, Config& c) {
         c.replication.tls_cert_file = v;
         return absl::OkStatus();
       }},
      {"nats-tls-key", "WALFEED_NATS_TLS_KEY", "(none)", "PEM private key of --nats-tls-cert",
       [](const std::string& v, Config& c) {
         c.replication.tls_key_file = v;
         return absl::OkStatus();
       }},
      {"log-level", "WALFEED_LOG_LEVEL", "info", "trace, debug, info, warn or error",
       [](const std::string& v, Config& c) {
         const std::string level = absl::AsciiStrToLower(v);
         if (level != "trace" && level != "debug" && level != "info" && level != "warn" &&
             level != "error") {
           return absl::InvalidArgumentError(
               absl::StrCat("--log-level='", v, "' must be trace, debug, info, warn or error"));
         }
         c.log_level = level;
         return absl::OkStatus();
       }},
  };
  return *settings;
}

const Setting* FindSetting(absl::string_view flag) {
  for (const Setting& setting : Settings()) {
    if (flag == setting.flag) return &setting;
  }
  return nullptr;
}

// The --config file named in `args` (or by WALFEED_CONFIG); "" when none.
std::string ConfigFilePath(const std::vector<std::string>& args, const EnvLookup& env) {
  std::string path;
  if (std::optional<std::string> value = env("WALFEED_CONFIG")) path = *value;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) path = args[i + 1];
    if (absl::StartsWith(args[i], "--config=")) path = args[i].substr(9);
  }
  return path;
}

// Applies a config file: one `name = value` a line (names as the flags', without "--"; the value
// may be in double quotes), blank lines and `#` comments ignored.
absl::Status ApplyConfigFile(const std::string& path, Config& config) {
  std::ifstream file(path);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the config file '", path, "': ", std::strerror(errno)));
  }
  std::string line;
  for (int number = 1; std::getline(file, line); ++number) {
    absl::string_view text = line;
    if (const size_t hash = text.find('#'); hash != absl::string_view::npos) {
      text = text.substr(0, hash);
    }
    text = absl::StripAsciiWhitespace(text);
    if (text.empty()) continue;
    const std::string where = absl::StrCat("config file '", path, "' line ", number, ": ");
    const size_t eq = text.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected name = value"));
    }
    const std::string name(absl::StripAsciiWhitespace(text.substr(0, eq)));
    absl::string_view value = absl::StripAsciiWhitespace(text.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    const Setting* setting = FindSetting(name);
    if (setting == nullptr || name == "config") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "unknown setting '", name, "' (see walfeed --help)"));
    }
    if (absl::Status applied = setting->apply(std::string(value), config); !applied.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, applied.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> ParseConfig(const std::vector<std::string>& args, const EnvLookup& env) {
  Config config;
  config.log.path = "./walfeed-data";
  // Precedence, lowest first: defaults, the config file, environment variables, flags.
  if (const std::string path = ConfigFilePath(args, env); !path.empty()) {
    if (absl::Status applied = ApplyConfigFile(path, config); !applied.ok()) return applied;
  }
  for (const Setting& setting : Settings()) {
    if (std::optional<std::string> value = env(setting.env)) {
      if (absl::Status applied = setting.apply(*value, config); !applied.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("environment variable ", setting.env, ": ", applied.message()));
      }
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      config.show_help = true;
      continue;
    }
    if (arg == "--version") {
      config.show_version = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", arg, "': every setting is a --flag (see --help)"));
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const Setting* setting = FindSetting(name);
    if (setting == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
      value = args[++i];
    }
    if (absl::Status applied = setting->apply(value, config); !applied.ok()) return applied;
  }
  if (config.show_help || config.show_version) return config;
  if (!config.follow.empty()) {
    // A replica: the replication settings name the stream it copies; it reads no PostgreSQL.
    if (config.ingest_auto) {
      return absl::InvalidArgumentError(
          "--follow and --ingest=auto exclude each other: a group member follows the stream it "
          "would publish to (--replicate-to) whenever another member ingests");
    }
    if (config.replication.enabled()) {
      return absl::InvalidArgumentError(
          "--follow and --replicate-to exclude each other: a replica copies the stream another "
          "walfeed publishes and publishes nothing itself");
    }
    if (config.replication.confirm_after == ConfirmAfter::kReplicated) {
      return absl::InvalidArgumentError(
          "--confirm-after=replicated is for the walfeed that reads PostgreSQL, not a replica "
          "(--follow)");
    }
    ReplicationOptions follow = config.replication;
    follow.servers = config.follow;
    if (absl::Status s = follow.Validate(); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(s.message(), " (--follow takes the same URLs as --replicate-to)"));
    }
    if (absl::Status s = config.log.Validate(); !s.ok()) return s;
    if (absl::Status s = config.feed.Validate(); !s.ok()) return s;
    return config;
  }
  if (config.ingest_auto) {
    if (!config.replication.enabled()) {
      return absl::InvalidArgumentError(
          "--ingest=auto needs --replicate-to: the group's members share the log through that "
          "JetStream stream");
    }
    if (config.replication.confirm_after != ConfirmAfter::kReplicated) {
      return absl::InvalidArgumentError(
          "--ingest=auto needs --confirm-after=replicated: a member that takes over finds in the "
          "stream only what JetStream has, so PostgreSQL must keep the rest");
    }
    config.replication.failover = true;
  }
  if (absl::Status s = config.source.Validate(); !s.ok()) return s;
  if (absl::Status s = config.log.Validate(); !s.ok()) return s;
  if (absl::Status s = config.feed.Validate(); !s.ok()) return s;
  if (absl::Status s = config.replication.Validate(); !s.ok()) return s;
  // A replicated change must fit one stream message, whatever the NATS servers' max_payload
  // (1 MB by default): more of a very wide row's values go out of line.
  if (config.replication.enabled()) {
    config.log.out_of_line.change_bytes =
        std::min(config.log.out_of_line.change_bytes, ReplicationOptions::kMaxChangeBytes);
  }
  return config;
}

std::string ConfigHelp() {
  std::string out =
      "walfeed: PostgreSQL change data capture over gRPC.\n\n"
      "Usage: walfeed --pg \"host=... dbname=... user=...\" [flags]\n\n"
      "Every flag can also be set by its environment variable or in the --config file. A flag\n"
      "wins over the environment variable, which wins over the config file, which wins over the\n"
      "default.\n\n";
  for (const Setting& setting : Settings()) {
    absl::StrAppend(&out, "  --", setting.flag, " (", setting.env, ", default ",
                    setting.default_text, ")\n      ", setting.help, "\n");
  }
  absl::StrAppend(&out, "  --help     this text\n  --version  the version\n");
  return out;
}

}  // namespace walfeed
