// stream_follower: one consumer of walfeed's replication stream in NATS JetStream, measuring how
// late each change arrives there (receipt time minus its transaction's commit time) and that it
// gets every change once, in order. The NATS side of the replication benchmark
// (bench/replication.py): what a consumer in any language reading the stream would see.
//
//   stream_follower --nats URLS --stream NAME [--timeout 300s]
//
// Reads the stream from its first message with an ordered JetStream push consumer (the NATS C
// client), decoding every LogSegment. Prints "ready" once subscribed, then reads one line
// "expect M" on stdin (the number of changes committed), waits until M changes arrived (or the
// timeout passes), and prints one JSON object: latency percentiles, changes received, messages
// (segments) received, and whether the changes were complete and in order. Exits 1 otherwise.
#include <nats/nats.h>

#include <atomic>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/latency_histogram.h"
#include "server/replication/segment_codec.h"
#include "walfeed/v1/walfeed.pb.h"

int main(int argc, char** argv) {
  std::string urls, stream;
  absl::Duration timeout = absl::Seconds(300);
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--nats") urls = argv[i + 1];
    if (flag == "--stream") stream = argv[i + 1];
    if (flag == "--timeout" && !absl::ParseDuration(argv[i + 1], &timeout)) return 2;
  }
  if (urls.empty() || stream.empty()) {
    std::cerr << "usage: stream_follower --nats URLS --stream NAME [--timeout 300s]\n";
    return 2;
  }
  std::vector<std::string> servers = absl::StrSplit(urls, ',');
  std::vector<const char*> server_ptrs;
  for (const std::string& server : servers) server_ptrs.push_back(server.c_str());
  natsOptions* options = nullptr;
  natsOptions_Create(&options);
  natsOptions_SetServers(options, server_ptrs.data(), static_cast<int>(server_ptrs.size()));
  natsConnection* connection = nullptr;
  if (natsConnection_Connect(&connection, options) != NATS_OK) {
    std::cerr << "stream_follower: cannot connect to " << urls << "\n";
    return 1;
  }
  jsCtx* js = nullptr;
  natsConnection_JetStream(&js, connection, nullptr);
  jsSubOptions sub_options;
  jsSubOptions_Init(&sub_options);
  sub_options.Stream = stream.c_str();
  sub_options.Ordered = true;
  natsSubscription* subscription = nullptr;
  jsErrCode js_error = jsErrCode{};
  const std::string subject = stream + ".log";
  // The stream appears with walfeed's first connection: wait for it.
  const absl::Time subscribe_deadline = absl::Now() + absl::Seconds(60);
  while (js_SubscribeSync(&subscription, js, subject.c_str(), nullptr, &sub_options, &js_error) !=
         NATS_OK) {
    if (absl::Now() > subscribe_deadline) {
      std::cerr << "stream_follower: cannot subscribe to " << stream << " (" << js_error << ")\n";
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  std::cout << "ready" << std::endl;

  walfeed::bench::LatencyHistogram latency;
  std::atomic<uint64_t> expected{0};
  std::atomic<bool> expecting{false};
  std::thread reader([&] {
    std::string line;
    while (std::getline(std::cin, line)) {
      uint64_t count = 0;
      absl::string_view text = line;
      if (absl::ConsumePrefix(&text, "expect ") && absl::SimpleAtoi(text, &count)) {
        expected = count;
        expecting = true;
        return;
      }
    }
  });
  uint64_t changes = 0, messages = 0, worst_micros = 0;
  bool in_order = true;
  std::pair<uint64_t, uint32_t> last{0, 0};
  absl::Time deadline = absl::InfiniteFuture();
  walfeed::v1::LogSegment segment;
  while (!expecting || changes < expected) {
    if (expecting && deadline == absl::InfiniteFuture()) deadline = absl::Now() + timeout;
    if (absl::Now() > deadline) break;
    natsMsg* message = nullptr;
    if (natsSubscription_NextMsg(&message, subscription, 200) != NATS_OK) continue;
    const int64_t now_micros = absl::ToUnixMicros(absl::Now());
    ++messages;
    const char* compression = nullptr;
    if (natsMsgHeader_Get(message, walfeed::kCompressionHeader, &compression) != NATS_OK) {
      compression = "";
    }
    std::string scratch;
    absl::StatusOr<absl::string_view> bytes = walfeed::DecodeSegment(
        absl::string_view(natsMsg_GetData(message), natsMsg_GetDataLength(message)), compression,
        &scratch);
    if (bytes.ok() && segment.ParseFromArray(bytes->data(), static_cast<int>(bytes->size()))) {
      for (const walfeed::v1::Change& change : segment.changes()) {
        const std::pair<uint64_t, uint32_t> position{change.lsn(), change.seq()};
        if (changes > 0 && !(last < position)) in_order = false;
        last = position;
        const int64_t commit_micros =
            change.commit_time().seconds() * 1'000'000 + change.commit_time().nanos() / 1000;
        const int64_t late = now_micros - commit_micros;
        latency.Add(late, 1);
        worst_micros =
            std::max<uint64_t>(worst_micros, static_cast<uint64_t>(std::max<int64_t>(late, 0)));
        ++changes;
      }
    }
    natsMsg_Destroy(message);
  }
  const bool complete = changes == expected && in_order;
  std::cout << "{\"changes\": " << changes << ", \"expected\": " << expected.load()
            << ", \"messages\": " << messages << ", \"in_order\": " << (in_order ? "true" : "false")
            << ", \"latency_ms\": {\"p50\": " << latency.PercentileMillis(0.5)
            << ", \"p99\": " << latency.PercentileMillis(0.99)
            << ", \"p999\": " << latency.PercentileMillis(0.999)
            << ", \"max\": " << static_cast<double>(worst_micros) / 1000.0 << "}}" << std::endl;
  if (reader.joinable()) reader.detach();
  natsSubscription_Destroy(subscription);
  jsCtx_Destroy(js);
  natsConnection_Destroy(connection);
  natsOptions_Destroy(options);
  return complete ? 0 : 1;
}
