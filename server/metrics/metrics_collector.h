// MetricsCollector: walfeed's Prometheus metrics, read fresh at each scrape from what the rest of
// walfeed already keeps (the feed description, the subscriber hub, the slot as PostgreSQL
// reports it, the event counters); nothing is counted twice and nothing on the hot paths waits
// for a scrape. Every family is named walfeed_* and documented in README's "Metrics" section.
// Thread-safe if its inputs are.
#ifndef WALFEED_SERVER_METRICS_METRICS_COLLECTOR_H_
#define WALFEED_SERVER_METRICS_METRICS_COLLECTOR_H_

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/core/position.h"
#include "server/core/slot_wal.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed {

struct MetricsInputs {
  // What GetFeedInfo answers.
  std::function<v1::FeedInfo()> describe;
  // Changes written to subscribers since start.
  std::function<uint64_t()> changes_sent;
  // Where the slowest subscriber reads on from (zero: no subscriber has been sent anything).
  std::function<Position()> slowest_subscriber;
  // The newest appended transaction's commit time and when it was appended.
  std::function<std::pair<absl::Time, absl::Time>()> newest_append;
  // The slot as PostgreSQL reports it (an error leaves the slot's families out of the scrape).
  std::function<absl::StatusOr<SlotWal>()> slot;
};

class MetricsCollector final : public prometheus::Collectable {
 public:
  explicit MetricsCollector(MetricsInputs inputs) : inputs_(std::move(inputs)) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const MetricsInputs inputs_;
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_METRICS_METRICS_COLLECTOR_H_
