// NatsCluster: a private NATS JetStream cluster started for a test (scripts/nats-local.sh: N
// nodes on free 127.0.0.1 ports, file storage in a temp dir) and stopped, by process id, when the
// object goes away; nodes can be killed, stopped and started again. ReadStream() reads a stream
// from its first message with the NATS C client, as any consumer of walfeed's stream would.
#ifndef WALFEED_TESTS_SUPPORT_NATS_CLUSTER_H_
#define WALFEED_TESTS_SUPPORT_NATS_CLUSTER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "walfeed/v1/walfeed.pb.h"

namespace walfeed::test {

// One message of a stream: its sequence, headers and the LogSegment it holds.
struct StreamMessage {
  uint64_t sequence = 0;
  std::map<std::string, std::string> headers;
  v1::LogSegment segment;
};

class NatsCluster {
 public:
  static absl::StatusOr<std::unique_ptr<NatsCluster>> Start(int nodes = 3);
  ~NatsCluster();

  // "nats://127.0.0.1:P1,nats://127.0.0.1:P2,..."
  const std::string& urls() const { return urls_; }
  int nodes() const { return nodes_; }

  absl::Status Kill(int node);  // SIGKILL (1-based)
  absl::Status Stop(int node);  // SIGTERM, waits for the exit
  absl::Status StartNode(int node);
  absl::Status StopAll();
  absl::Status StartAll();
  // The node that leads `stream` now (waits up to 60 s for an election to end).
  absl::StatusOr<int> Leader(const std::string& stream);

  // Every message of `stream` from its first, decoded (fails on a message that is not a
  // LogSegment).
  absl::StatusOr<std::vector<StreamMessage>> ReadStream(const std::string& stream) const;
  // Removes all but the newest `keep` messages of `stream`, as its limits would.
  absl::Status PurgeStream(const std::string& stream, uint64_t keep) const;

 private:
  NatsCluster(std::string dir, int nodes) : dir_(std::move(dir)), nodes_(nodes) {}
  absl::Status Script(const std::vector<std::string>& args) const;

  const std::string dir_;
  const int nodes_;
  std::string urls_;
};

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_NATS_CLUSTER_H_
