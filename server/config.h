// walfeed's configuration: every setting with its flag, environment variable, default and help.
//
// Precedence: a command-line flag beats its environment variable, which beats the config file
// (--config / WALFEED_CONFIG), which beats the default.
// ParseConfig() validates every value once and rejects a bad one with a sentence naming the
// setting, the value and the expected form. ConfigHelp() lists every setting with its default.
#ifndef WALFEED_SERVER_CONFIG_H_
#define WALFEED_SERVER_CONFIG_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/feed/feed_options.h"
#include "server/log/change_log_options.h"
#include "server/log/compaction_policy.h"
#include "server/replication/replication_options.h"
#include "server/source/source_options.h"

namespace walfeed {

struct Config {
  SourceOptions source;
  ChangeLogOptions log;
  FeedOptions feed;
  CompactionPolicy compaction;
  ReplicationOptions replication;
  // A replica (--follow): the log is copied from the replication stream at these NATS servers
  // (with the stream and NATS settings of `replication`), never read from PostgreSQL.
  std::vector<std::string> follow;
  // --ingest=auto: one of an ingest group (see group_member.h); false: this walfeed always reads
  // PostgreSQL (or, with --follow, never).
  bool ingest_auto = false;
  // This instance's name in an ingest group (--instance-name); empty: the host name.
  std::string instance_name;
  // --push-config: push subscriptions to create or update at start; empty: none.
  std::string push_config;
  // --keep-for-consumers: compaction keeps what a named consumer (or a push subscription) has not
  // committed (delivered) yet.
  bool keep_for_consumers = false;
  // How often a background compaction pass runs; InfiniteDuration: only when asked.
  absl::Duration compaction_interval = absl::Minutes(10);
  std::string log_level = "info";
  // host:port of the Prometheus metrics endpoint; empty: none.
  std::string metrics_listen;
  bool show_help = false;
  bool show_version = false;
};

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

absl::StatusOr<Config> ParseConfig(const std::vector<std::string>& args, const EnvLookup& env);

std::string ConfigHelp();

}  // namespace walfeed

#endif  // WALFEED_SERVER_CONFIG_H_
