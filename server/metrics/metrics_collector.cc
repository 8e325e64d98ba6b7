#include "server/metrics/metrics_collector.h"

#include <map>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "server/core/event_counters.h"
#include "server/core/proto_time.h"

namespace walfeed {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddSample(MetricFamily& family, double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (family.type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
}

MetricFamily One(std::string name, std::string help, MetricType type, double value) {
  MetricFamily family = Family(std::move(name), std::move(help), type);
  AddSample(family, value);
  return family;
}

}  // namespace

std::vector<MetricFamily> MetricsCollector::Collect() const {
  const v1::FeedInfo info = inputs_.describe();
  std::vector<MetricFamily> families;
  const auto counter = [&](std::string name, std::string help, double value) {
    families.push_back(One(std::move(name), std::move(help), MetricType::Counter, value));
  };
  const auto gauge = [&](std::string name, std::string help, double value) {
    families.push_back(One(std::move(name), std::move(help), MetricType::Gauge, value));
  };

  // Ingest.
  counter("walfeed_changes_ingested_total", "Changes appended to the log since start.",
          static_cast<double>(info.changes_appended()));
  counter("walfeed_transactions_ingested_total", "Transactions appended to the log since start.",
          static_cast<double>(info.transactions_appended()));
  MetricFamily state = Family("walfeed_source_state",
                              "1 for the source's current state (starting, snapshotting, "
                              "streaming, reconnecting, stopped).",
                              MetricType::Gauge);
  AddSample(state, 1, {{"state", info.source_state()}});
  families.push_back(std::move(state));
  MetricFamily role = Family("walfeed_role",
                             "1 for this instance's role: ingester (reads PostgreSQL) or replica "
                             "(copies the replication stream).",
                             MetricType::Gauge);
  AddSample(role, 1, {{"role", info.role()}});
  families.push_back(std::move(role));
  const auto [commit_time, append_time] = inputs_.newest_append();
  if (commit_time != absl::InfinitePast()) {
    gauge("walfeed_source_lag_seconds",
          "How long after its commit the newest appended transaction reached the log.",
          absl::ToDoubleSeconds(append_time - commit_time));
    gauge("walfeed_newest_change_age_seconds",
          "Time since the newest appended transaction was committed.",
          absl::ToDoubleSeconds(absl::Now() - commit_time));
  }
  if (absl::StatusOr<SlotWal> slot = inputs_.slot(); slot.ok()) {
    gauge("walfeed_source_lag_bytes",
          "PostgreSQL's current WAL position minus what walfeed has confirmed durable.",
          static_cast<double>(slot->LagBytes()));
    gauge("walfeed_slot_retained_wal_bytes",
          "WAL PostgreSQL keeps for walfeed's slot (current WAL position minus restart_lsn).",
          static_cast<double>(slot->RetainedBytes()));
  }
  gauge("walfeed_snapshot_tables_total", "Tables the initial snapshot reads.",
        info.snapshot_tables_total());
  gauge("walfeed_snapshot_tables_copied", "Tables the initial snapshot has read.",
        info.snapshot_tables_copied());
  gauge("walfeed_snapshot_rows_copied", "Rows the initial snapshot has read.",
        static_cast<double>(info.snapshot_rows_copied()));

  // Subscribers.
  gauge("walfeed_subscribers", "Subscribe streams open now.", info.subscribers());
  counter("walfeed_changes_sent_total", "Changes written to subscribers since start.",
          static_cast<double>(inputs_.changes_sent()));
  const Position slowest = inputs_.slowest_subscriber();
  gauge("walfeed_slowest_subscriber_lag_bytes",
        "WAL bytes between the log's head and the slowest subscriber's position.",
        slowest.IsZero() || info.newest_lsn() < slowest.lsn
            ? 0
            : static_cast<double>(info.newest_lsn() - slowest.lsn));
  if (info.consumers_size() > 0) {
    MetricFamily lag = Family("walfeed_consumer_lag_bytes",
                              "WAL bytes between the log's head and each named consumer's stored "
                              "cursor.",
                              MetricType::Gauge);
    for (const v1::ConsumerInfo& consumer : info.consumers()) {
      AddSample(lag, static_cast<double>(consumer.lag_wal_bytes()),
                {{"consumer", consumer.name()}});
    }
    families.push_back(std::move(lag));
  }

  // Backfills: each kept one's rows by outcome, and how many are in each state.
  if (info.backfills_size() > 0) {
    MetricFamily rows = Family("walfeed_backfill_rows",
                               "Rows each kept backfill read, appended as READ, or left out "
                               "because the feed held a newer change of the row.",
                               MetricType::Gauge);
    MetricFamily states =
        Family("walfeed_backfills", "Kept backfills in each state.", MetricType::Gauge);
    std::map<std::string, int> in_state = {
        {"queued", 0}, {"running", 0}, {"done", 0}, {"cancelled", 0}, {"failed", 0}};
    for (const v1::BackfillInfo& backfill : info.backfills()) {
      const std::string id = std::to_string(backfill.id());
      const std::string& table = backfill.request().table();
      AddSample(rows, static_cast<double>(backfill.rows_read()),
                {{"id", id}, {"table", table}, {"rows", "read"}});
      AddSample(rows, static_cast<double>(backfill.rows_appended()),
                {{"id", id}, {"table", table}, {"rows", "appended"}});
      AddSample(rows, static_cast<double>(backfill.rows_superseded()),
                {{"id", id}, {"table", table}, {"rows", "superseded"}});
      ++in_state[backfill.state()];
    }
    for (const auto& [state, count] : in_state) AddSample(states, count, {{"state", state}});
    families.push_back(std::move(rows));
    families.push_back(std::move(states));
  }

  // Push subscriptions: each one's deliveries, retries, lag and pause.
  if (info.push_subscriptions_size() > 0) {
    MetricFamily batches = Family("walfeed_push_delivered_batches_total",
                                  "Batches each push subscription's receiver acknowledged (2xx).",
                                  MetricType::Counter);
    MetricFamily changes = Family("walfeed_push_delivered_changes_total",
                                  "Changes in the acknowledged batches of each push subscription.",
                                  MetricType::Counter);
    MetricFamily retries = Family("walfeed_push_retries_total",
                                  "Failed attempts (5xx, 408, 429, timeouts, connection errors) "
                                  "each push subscription retried.",
                                  MetricType::Counter);
    MetricFamily lag_changes = Family("walfeed_push_lag_changes",
                                      "Changes in the log after each push subscription's cursor "
                                      "(counted up to 100000).",
                                      MetricType::Gauge);
    MetricFamily lag_seconds = Family("walfeed_push_lag_seconds",
                                      "Age of the oldest change each push subscription has not "
                                      "delivered (0 when caught up).",
                                      MetricType::Gauge);
    MetricFamily paused = Family("walfeed_push_paused",
                                 "1 while a push subscription is paused (label reason: operator, "
                                 "HTTP_4XX, CURSOR_PURGED, FILTER_INVALID), else 0.",
                                 MetricType::Gauge);
    for (const v1::PushSubscriptionInfo& push : info.push_subscriptions()) {
      const std::string& name = push.subscription().name();
      AddSample(batches, static_cast<double>(push.delivered_batches()), {{"subscription", name}});
      AddSample(changes, static_cast<double>(push.delivered_changes()), {{"subscription", name}});
      AddSample(retries, static_cast<double>(push.retries()), {{"subscription", name}});
      AddSample(lag_changes, static_cast<double>(push.lag_changes()), {{"subscription", name}});
      AddSample(lag_seconds, push.lag_seconds(), {{"subscription", name}});
      AddSample(paused, push.state() == "paused" ? 1 : 0,
                {{"subscription", name}, {"reason", push.pause_reason()}});
    }
    for (MetricFamily* family :
         {&batches, &changes, &retries, &lag_changes, &lag_seconds, &paused}) {
      families.push_back(std::move(*family));
    }
  }

  // The log and compaction.
  gauge("walfeed_log_bytes", "Size of the change log on disk.",
        static_cast<double>(info.log_bytes()));
  if (info.has_last_compaction()) {
    const v1::CompactionResult& last = info.last_compaction();
    gauge("walfeed_live_keys", "Rows the log holds a newest change for (at the last compaction).",
          static_cast<double>(last.live_keys()));
    gauge("walfeed_compaction_last_duration_seconds", "How long the last compaction pass took.",
          absl::ToDoubleSeconds(FromProtoDuration(last.took())));
    MetricFamily removed =
        Family("walfeed_compaction_last_removed_changes",
               "Changes the last compaction pass removed, by why.", MetricType::Gauge);
    AddSample(removed, static_cast<double>(last.superseded_removed()), {{"why", "superseded"}});
    AddSample(removed, static_cast<double>(last.tombstones_purged()), {{"why", "tombstone"}});
    AddSample(removed, static_cast<double>(last.retention_removed()), {{"why", "retention"}});
    families.push_back(std::move(removed));
  }

  // The newest resynchronisation after a lost slot (none: no samples).
  if (info.has_last_resync()) {
    const v1::Resynchronisation& resync = info.last_resync();
    gauge("walfeed_last_resync_timestamp_seconds",
          "When the newest resynchronisation (after a lost slot) was committed, Unix seconds.",
          static_cast<double>(resync.time().seconds()));
    MetricFamily differences =
        Family("walfeed_last_resync_changes",
               "Changes the newest resynchronisation appended, by kind.", MetricType::Gauge);
    for (const auto& [kind, count] : {std::pair<const char*, uint64_t>{"insert", resync.inserts()},
                                      {"update", resync.updates()},
                                      {"delete", resync.deletes()},
                                      {"truncate", resync.truncated_tables()},
                                      {"read", resync.reads()}}) {
      AddSample(differences, static_cast<double>(count), {{"kind", kind}});
    }
    families.push_back(std::move(differences));
  }

  // The replication into NATS JetStream (--replicate-to; off: no samples).
  if (info.has_replication()) {
    const v1::ReplicationStatus& replication = info.replication();
    MetricFamily replication_state =
        Family("walfeed_replication_state",
               "1 for the replication's current state (connecting, replicating, caught_up, "
               "failing, failed).",
               MetricType::Gauge);
    AddSample(replication_state, 1, {{"state", replication.state()}});
    families.push_back(std::move(replication_state));
    if (!replication.writer().empty()) {
      MetricFamily writer = Family(
          "walfeed_replication_writer",
          "1 for the instance that wrote the newest stream message this one published or read "
          "(--instance-name and a process token): the ingester of its group.",
          MetricType::Gauge);
      AddSample(writer, 1, {{"writer", replication.writer()}});
      families.push_back(std::move(writer));
    }
    gauge("walfeed_replication_lag_changes",
          "Changes the log holds that JetStream has not acknowledged (counted up to 100,000).",
          static_cast<double>(replication.lag_changes()));
    gauge("walfeed_replication_lag_bytes", "Stored bytes of those changes.",
          static_cast<double>(replication.lag_bytes()));
    gauge("walfeed_replication_lag_seconds",
          "Age (by commit time) of the oldest change JetStream does not have; 0 when caught up.",
          replication.lag_seconds());
    gauge("walfeed_replication_stream_sequence",
          "Stream sequence of the newest message JetStream acknowledged (a replica: copied).",
          static_cast<double>(replication.stream_sequence()));
    gauge("walfeed_replication_lag_segments",
          "A replica: stream messages not copied yet when last read; 0 when caught up.",
          static_cast<double>(replication.lag_segments()));
    counter("walfeed_replication_segments_published_total",
            "Stream messages (LogSegment) published since start.",
            static_cast<double>(replication.segments_published()));
    counter("walfeed_replication_publish_errors_total",
            "Failed attempts to connect, read the stream's end or publish, since start.",
            static_cast<double>(replication.publish_errors()));
  }

  // Trouble, by kind.
  MetricFamily errors = Family("walfeed_errors_total",
                               "Errors since start by kind: source_disconnected, "
                               "log_write_failed, call_<reason> for refused calls, ...",
                               MetricType::Counter);
  for (const auto& [kind, count] : EventCounts()) {
    AddSample(errors, static_cast<double>(count), {{"kind", kind}});
  }
  families.push_back(std::move(errors));
  return families;
}

}  // namespace walfeed
