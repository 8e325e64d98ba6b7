// walfeed's entry point: reads the configuration, opens the change log, starts the gRPC feed,
// the background compactor, the replication into NATS JetStream (with --replicate-to) and the
// PostgreSQL source - or, for a replica (--follow), the follower that copies the log from the
// replication stream instead of the source, or, in an ingest group (--ingest=auto), the member
// that is one or the other as the group needs - and on SIGINT/SIGTERM shuts them down in order: a
// running compaction pass stops between batches, streams end with UNAVAILABLE, the source appends
// and confirms what it has, the push deliveries store what was acknowledged, the replication
// stops after its current publish, the log closes.
//
// The rooms meet only here: the source writes the log through TransactionSink and is bounded by a
// ConfirmGate; the feed and the replication read the log, the follower writes it; none of them
// knows another.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"
#include "server/backfill/backfill_runner.h"
#include "server/config.h"
#include "server/core/fault_point.h"
#include "server/core/free_memory.h"
#include "server/core/log_format.h"
#include "server/core/table_name.h"
#include "server/feed/feed_server.h"
#include "server/group_member.h"
#include "server/log/change_log.h"
#include "server/log/compactor.h"
#include "server/metrics/metrics_collector.h"
#include "server/push/push_manager.h"
#include "server/replication/log_follower.h"
#include "server/replication/log_replicator.h"
#include "server/source/slot_monitor.h"
#include "server/source/source.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

#ifdef WALFEED_JEMALLOC
// jemalloc's settings, read when it starts: a background thread gives freed pages back within
// about a second (the default keeps them ten), so RSS falls soon after a large transaction or a
// crowd of streams is gone.
extern "C" {
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
#endif

namespace {

int Fail(absl::string_view what, const absl::Status& status) {
  spdlog::error("event=startup_failed step={} error=\"{}\"", what,
                walfeed::EscapeForLog(status.message()));
  std::cerr << "walfeed: " << what << ": " << status.message() << "\n";
  return 1;
}

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("walfeed");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ level=%l %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

// Who publishes, as every stream message names it: the instance's name (the host name unless
// --instance-name says) and a token of this process, so that a restarted or second process
// under the same name is still another writer.
std::string WriterName(const std::string& instance_name) {
  std::string name = instance_name;
  if (name.empty()) {
    char host[256] = {};
    name = gethostname(host, sizeof(host) - 1) == 0 ? host : "walfeed";
  }
  std::random_device random;
  return absl::StrCat(name, "/", absl::Hex(random(), absl::kZeroPad8));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<walfeed::Config> config =
      walfeed::ParseConfig(args, [](const std::string& name) -> std::optional<std::string> {
        const char* value = std::getenv(name.c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
      });
  if (!config.ok()) {
    std::cerr << "walfeed: " << config.status().message()
              << "\nRun 'walfeed --help' for the settings.\n";
    return 2;
  }
  if (config->show_help) {
    std::cout << walfeed::ConfigHelp();
    return 0;
  }
  if (config->show_version) {
    std::cout << "walfeed 0.1.0\n";
    return 0;
  }
  if (absl::Status armed = walfeed::ArmFaultPointFromEnvironment(); !armed.ok()) {
    std::cerr << "walfeed: " << armed.message() << "\n";
    return 2;
  }
  SetUpLogging(config->log_level);

  // Signals go to the main thread's sigwait only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<walfeed::ChangeLog>> log = walfeed::ChangeLog::Open(config->log);
  if (!log.ok()) return Fail("opening the change log", log.status());
  spdlog::info("event=log_opened path={} head={} resume_lsn={} log_id={}", config->log.path,
               walfeed::FormatCursor((*log)->Head()), walfeed::FormatLsn((*log)->ResumeLsn()),
               (*log)->LogId());

  walfeed::Compactor compactor(log->get(), config->compaction, config->compaction_interval);
  config->replication.writer = WriterName(config->instance_name);
  walfeed::SlotMonitor slot_monitor(config->source.conninfo, config->source.slot);
  // Where the log comes from: PostgreSQL (the source), or, for a replica (--follow), the
  // replication stream another walfeed publishes.
  std::unique_ptr<walfeed::Source> source;
  std::unique_ptr<walfeed::LogFollower> follower;
  walfeed::SourceStatusFn source_status;
  // The replication into NATS JetStream (--replicate-to) reads the log like a subscriber; it
  // bounds what compaction removes and, under --confirm-after=replicated, what the source
  // confirms to PostgreSQL.
  std::unique_ptr<walfeed::LogReplicator> replicator;
  walfeed::ReplicationStatusFn replication_status;
  // Or, under --ingest=auto, a member of an ingest group that is either, and changes.
  std::unique_ptr<walfeed::GroupMember> member;
  if (config->ingest_auto) {
    member = std::make_unique<walfeed::GroupMember>(config->source, config->replication, log->get(),
                                                    &slot_monitor);
    absl::StatusOr<bool> joined = member->Join([&signals] {
      const timespec no_wait = {0, 0};
      return sigtimedwait(&signals, nullptr, &no_wait) >= 0;
    });
    if (!joined.ok()) return Fail("joining the ingest group", joined.status());
    if (!*joined) return 0;
    walfeed::GroupMember* g = member.get();
    source_status = [g] { return g->SourceView(); };
    replication_status = [g] { return g->ReplicationView(); };
    compactor.KeepFrom([g] { return g->KeepFrom(); });
  } else if (!config->follow.empty()) {
    walfeed::ReplicationOptions follow = config->replication;
    follow.servers = config->follow;
    follower = std::make_unique<walfeed::LogFollower>(follow, log->get());
    // An empty replica takes the id of the log it copies before it serves anything; SIGTERM
    // ends the wait.
    const absl::Time give_up = absl::Now() + absl::Minutes(2);
    while (true) {
      absl::StatusOr<bool> adopted = follower->AdoptStreamLogId();
      if (!adopted.ok()) return Fail("taking the id of the log to copy", adopted.status());
      if (*adopted) break;
      if (absl::Now() > give_up) {
        return Fail("taking the id of the log to copy",
                    absl::UnavailableError("the stream named no log within 2 minutes (see the "
                                           "event=follow_waiting lines for why)"));
      }
      const timespec retry = {2, 0};
      if (sigtimedwait(&signals, nullptr, &retry) >= 0) return 0;
    }
    walfeed::LogFollower* f = follower.get();
    source_status = [f] { return f->SourceView(); };
    replication_status = [f] { return f->Status(); };
  } else {
    source = std::make_unique<walfeed::Source>(config->source, log->get(), log->get());
    walfeed::Source* s = source.get();
    source_status = [s] { return s->status(); };
    if (config->replication.enabled()) {
      replicator = std::make_unique<walfeed::LogReplicator>(config->replication, log->get());
      walfeed::LogReplicator* r = replicator.get();
      compactor.KeepFrom([r] { return r->KeepFrom(); });
      if (config->replication.confirm_after == walfeed::ConfirmAfter::kReplicated) {
        s->SetConfirmGate(r);
      }
      replication_status = [r] { return r->Status(); };
    }
  }
  // Backfills (Admin.Backfill) need the walfeed that reads PostgreSQL on its own.
  std::unique_ptr<walfeed::BackfillRunner> backfills;
  if (source != nullptr) {
    absl::StatusOr<std::unique_ptr<walfeed::BackfillRunner>> loaded =
        walfeed::BackfillRunner::Load(config->source, log->get(), source_status);
    if (!loaded.ok()) return Fail("reading the backfills", loaded.status());
    backfills = *std::move(loaded);
  }
  // Push subscriptions: the feed POSTed to HTTP endpoints (README: Push to your web app).
  absl::StatusOr<std::unique_ptr<walfeed::PushManager>> pushes =
      walfeed::PushManager::Load(log->get(), source_status, config->push_config);
  if (!pushes.ok()) return Fail("reading the push subscriptions", pushes.status());
  absl::StatusOr<std::unique_ptr<walfeed::FeedServer>> feed = walfeed::FeedServer::Start(
      config->feed, log->get(), &compactor, source_status, replication_status,
      walfeed::FeedControls{backfills.get(), pushes->get()});
  if (!feed.ok()) return Fail("starting the gRPC server", feed.status());
  if (config->keep_for_consumers) {
    walfeed::ConsumerRegistry* consumers = (*feed)->consumers();
    compactor.KeepFrom([consumers] { return consumers->OldestUncommitted(); });
    walfeed::PushManager* push_manager = pushes->get();
    compactor.KeepFrom([push_manager] { return push_manager->OldestUndelivered(); });
  }
  compactor.Start();
  if (replicator != nullptr) replicator->Start();

  // The Prometheus endpoint, read at each scrape from what the feed, log and slot keep.
  std::unique_ptr<prometheus::Exposer> metrics_exposer;
  std::shared_ptr<walfeed::MetricsCollector> metrics;
  if (!config->metrics_listen.empty()) {
    walfeed::FeedServer* server = feed->get();
    walfeed::ChangeLog* change_log = log->get();
    metrics = std::make_shared<walfeed::MetricsCollector>(walfeed::MetricsInputs{
        [server] { return server->Describe(); }, [server] { return server->changes_sent(); },
        [server] { return server->SlowestSubscriber(); },
        [change_log] {
          const walfeed::ChangeLogStats stats = change_log->Stats();
          return std::make_pair(stats.newest_commit_time, stats.newest_append_time);
        },
        [&slot_monitor, &follower]() -> absl::StatusOr<walfeed::SlotWal> {
          if (follower != nullptr) return absl::UnavailableError("a replica reads no slot");
          return slot_monitor.Read();
        }});
    try {
      metrics_exposer = std::make_unique<prometheus::Exposer>(config->metrics_listen);
    } catch (const std::exception& error) {
      compactor.Stop();
      (*feed)->Shutdown();
      return Fail("starting the metrics endpoint",
                  absl::UnavailableError(absl::StrCat("cannot listen on ", config->metrics_listen,
                                                      ": ", error.what())));
    }
    metrics_exposer->RegisterCollectable(metrics);
    const std::vector<int> ports = metrics_exposer->GetListeningPorts();
    spdlog::info("event=metrics_listening address={} port={}", config->metrics_listen,
                 ports.empty() ? 0 : ports[0]);
  }

  if (member != nullptr) {
    member->Start();
  } else if (follower != nullptr) {
    follower->Start();
  } else if (absl::Status started = source->Start(); !started.ok()) {
    compactor.Stop();
    (*feed)->Shutdown();
    return Fail("starting the PostgreSQL source", started);
  }
  if (backfills != nullptr) backfills->Start();
  (*pushes)->Start();
  spdlog::info("event=ready listen={} port={} allocator={}", config->feed.listen_address,
               (*feed)->port(), walfeed::AllocatorName());

  // Waits for SIGTERM or SIGINT, checking the source's health every second meanwhile.
  int signal_number = -1;
  const timespec one_second = {1, 0};
  while (signal_number < 0) {
    signal_number = sigtimedwait(&signals, nullptr, &one_second);
    if (signal_number < 0) (*feed)->CheckSourceHealth();
  }
  spdlog::info("event=shutdown_requested signal={}", signal_number);
  metrics_exposer.reset();  // no scrape may outlive what it reads
  compactor.Stop();
  (*feed)->BeginShutdown();
  if (backfills != nullptr) backfills->Stop();
  (*pushes)->Stop();
  if (source != nullptr) source->Stop();
  if (member != nullptr) member->Stop();
  if (follower != nullptr) follower->Stop();
  if (replicator != nullptr) replicator->Stop();
  (*feed)->Shutdown();
  const walfeed::SourceStatus final_status = source_status();
  const walfeed::ChangeLogStats stats = (*log)->Stats();
  spdlog::info(
      "event=stopped confirmed_flush_lsn={} head={} changes_appended={} transactions_appended={} "
      "appends={}",
      walfeed::FormatLsn(final_status.confirmed_flush_lsn), walfeed::FormatCursor((*log)->Head()),
      stats.changes_appended, stats.transactions_appended, stats.appends);
  return 0;
}
