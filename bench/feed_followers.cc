// feed_followers: N concurrent subscribers following walfeed's feed, measuring how late each
// change arrives (receipt time minus its transaction's commit time) and that every subscriber
// gets every change. The client side of the latency and fan-out benchmarks (bench/live.py).
//
//   feed_followers --server HOST:PORT --subscribers N [--channels C] [--timeout 300s]
//                  [--from-head] [--idle N [--idle-table SCHEMA.TABLE]]
//
// Every subscriber reads from from_lsn 0 (the benchmark starts walfeed on an empty table, so
// that is every change of the run; with --from-head, every change committed after it started) with
// gRPC's callback API (one process, no thread per stream), decoding from each change only its
// position and commit time (see ChangeStamp). With more than one subscriber, only each message's
// first and last change are decoded (the rest are counted): every change of a message is given the
// latency of its first, oldest change, an upper bound, and order is checked message by message.
// This keeps 1,000 subscribers' decoding from taking the core walfeed needs on a 2-core machine.
// Prints "ready" once every stream is open. Then reads one line "expect M" on stdin (the number
// of changes the writer committed), waits until every subscriber has received M changes (or the
// timeout passes), and prints one JSON object: latency percentiles over every change received
// by every subscriber, the worst subscriber's worst latency, changes delivered, and how many
// subscribers were complete. Exits 1 when a subscriber missed a change or a stream failed.
// With --idle N, N more streams subscribe from the head to a table nobody writes (connected,
// mostly idle: they receive only progress messages); each must still be open at the end.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/latency_histogram.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace {

using walfeed::bench::LatencyHistogram;

struct Totals {
  LatencyHistogram latency;
  std::atomic<uint64_t> changes{0};
  std::atomic<int64_t> worst_micros{0};
  std::atomic<int> failed{0};
};

// The few fields of a change the benchmark needs, read straight from a SubscribeResponse's wire
// bytes (lsn, seq and commit_time of each change) without building the messages: on a 2-core
// machine shared with walfeed and PostgreSQL, full parsing in 1,000 subscribers would measure
// the client, not the server. A consumer on its own machine parses what it needs.
struct ChangeStamp {
  uint64_t lsn = 0;
  uint32_t seq = 0;
  int64_t commit_micros = 0;
};

bool ReadChangeStamp(google::protobuf::io::CodedInputStream& in, ChangeStamp* stamp) {
  using google::protobuf::internal::WireFormatLite;
  int64_t seconds = 0;
  uint32_t nanos = 0;
  while (const uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (field == 1 && !in.ReadVarint64(&stamp->lsn)) return false;
    if (field == 2 && !in.ReadVarint32(&stamp->seq)) return false;
    if (field == 11) {
      uint32_t length = 0;
      if (!in.ReadVarint32(&length)) return false;
      const auto limit = in.PushLimit(static_cast<int>(length));
      while (const uint32_t inner = in.ReadTag()) {
        const int inner_field = WireFormatLite::GetTagFieldNumber(inner);
        uint64_t value = 0;
        if (inner_field == 1 || inner_field == 2) {
          if (!in.ReadVarint64(&value)) return false;
          if (inner_field == 1) seconds = static_cast<int64_t>(value);
          if (inner_field == 2) nanos = static_cast<uint32_t>(value);
        } else if (!WireFormatLite::SkipField(&in, inner)) {
          return false;
        }
      }
      in.PopLimit(limit);
    }
    if (field != 1 && field != 2 && field != 11 && !WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  stamp->commit_micros = seconds * 1'000'000 + nanos / 1000;
  return true;
}

// One subscriber on the raw method (request and responses as bytes): reads until told to stop,
// checking order and counting.
class Follower : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // `table`: subscribe to that table only ("" for every change).
  Follower(grpc::GenericStub* stub, Totals* totals, bool every_change, bool from_head,
           const std::string& table = "")
      : totals_(totals), every_change_(every_change) {
    walfeed::v1::SubscribeRequest request;
    if (from_head) {
      request.set_from_head(true);
    } else {
      request.set_from_lsn(0);
    }
    if (!table.empty()) request.add_tables(table);
    const std::string bytes = request.SerializeAsString();
    grpc::Slice slice(bytes);
    request_ = grpc::ByteBuffer(&slice, 1);
    stub->PrepareBidiStreamingCall(&context_, "/walfeed.v1.ChangeFeed/Subscribe",
                                   grpc::StubOptions(), this);
    StartWrite(&request_);
    StartWritesDone();
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const int64_t now_micros = absl::ToUnixMicros(absl::Now());
    std::vector<grpc::Slice> slices;
    (void)response_.Dump(&slices);
    bytes_.clear();
    for (const grpc::Slice& slice : slices) {
      bytes_.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    using google::protobuf::internal::WireFormatLite;
    const auto* data = reinterpret_cast<const uint8_t*>(bytes_.data());
    google::protobuf::io::CodedInputStream in(data, static_cast<int>(bytes_.size()));
    uint64_t n = 0;
    int64_t message_micros = 0;  // sampled: the first (oldest) change's latency, for all
    int last_offset = -1;
    uint32_t last_length = 0;
    while (const uint32_t tag = in.ReadTag()) {
      if (WireFormatLite::GetTagFieldNumber(tag) != 1) {
        if (!WireFormatLite::SkipField(&in, tag)) break;
        continue;
      }
      uint32_t length = 0;
      if (!in.ReadVarint32(&length)) break;
      ++n;
      if (!every_change_ && n > 1) {
        last_offset = in.CurrentPosition();
        last_length = length;
        if (!in.Skip(static_cast<int>(length))) malformed_ = true;
        continue;
      }
      const auto limit = in.PushLimit(static_cast<int>(length));
      ChangeStamp stamp;
      if (!ReadChangeStamp(in, &stamp)) malformed_ = true;
      in.PopLimit(limit);
      Follow(stamp);
      message_micros = now_micros - stamp.commit_micros;
      if (every_change_) Record(message_micros, 1);
    }
    if (!every_change_ && n > 0) {
      Record(message_micros, n);
      if (last_offset >= 0) {
        google::protobuf::io::CodedInputStream last(data + last_offset,
                                                    static_cast<int>(last_length));
        ChangeStamp stamp;
        if (!ReadChangeStamp(last, &stamp)) malformed_ = true;
        Follow(stamp);
      }
    }
    received_.fetch_add(n);
    totals_->changes.fetch_add(n);
    StartRead(&response_);
  }
  // Order: each change (or, sampled, each message's first and last) is past the one before.
  void Follow(const ChangeStamp& stamp) {
    if (std::make_pair(stamp.lsn, stamp.seq) <= last_) out_of_order_ = true;
    last_ = {stamp.lsn, stamp.seq};
  }
  void Record(int64_t micros, uint64_t count) {
    totals_->latency.Add(micros, count);
    int64_t worst = totals_->worst_micros.load();
    while (micros > worst && !totals_->worst_micros.compare_exchange_weak(worst, micros)) {
    }
  }

  void OnWriteDone(bool) override {}
  void OnWritesDoneDone(bool) override {}

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      std::cerr << "feed_followers: stream ended: " << status.error_code() << " "
                << status.error_message() << "\n";
      totals_->failed.fetch_add(1);
    }
    done_ = true;
  }

  uint64_t received() const { return received_.load(); }
  bool out_of_order() const { return out_of_order_ || malformed_; }
  void Cancel() { context_.TryCancel(); }
  void AwaitDone() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

 private:
  Totals* totals_;
  const bool every_change_;
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::string bytes_;
  // Touched only by this stream's read callbacks, which gRPC runs one at a time.
  std::pair<uint64_t, uint32_t> last_{0, 0};
  bool out_of_order_ = false;
  bool malformed_ = false;
  std::atomic<uint64_t> received_{0};
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

struct Flags {
  std::string server;
  int subscribers = 1;
  int channels = 0;
  absl::Duration timeout = absl::Seconds(300);
  bool from_head = false;
  // More subscribers, each to a table nobody writes: connected, mostly idle.
  int idle = 0;
  std::string idle_table = "public.feed_followers_idle";
};

bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--from-head") {
      flags->from_head = true;
      --i;  // takes no value
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string value = argv[i + 1];
    bool ok = true;
    if (flag == "--server") {
      flags->server = value;
    } else if (flag == "--subscribers") {
      ok = absl::SimpleAtoi(value, &flags->subscribers) && flags->subscribers > 0;
    } else if (flag == "--channels") {
      ok = absl::SimpleAtoi(value, &flags->channels) && flags->channels > 0;
    } else if (flag == "--timeout") {
      ok = absl::ParseDuration(value, &flags->timeout);
    } else if (flag == "--idle") {
      ok = absl::SimpleAtoi(value, &flags->idle) && flags->idle >= 0;
    } else if (flag == "--idle-table") {
      flags->idle_table = value;
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "feed_followers: bad flag " << flag << " " << value << "\n";
      return false;
    }
  }
  return !flags->server.empty();
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::cerr << "usage: feed_followers --server HOST:PORT --subscribers N [--channels C] "
                 "[--timeout 300s] [--from-head] [--idle N [--idle-table SCHEMA.TABLE]]\n";
    return 2;
  }
  const std::string& server = flags.server;
  const int subscribers = flags.subscribers;
  const bool from_head = flags.from_head;
  const absl::Duration timeout = flags.timeout;
  int channels = flags.channels;
  // Many subscribers: decode only the first and last change of each message (see the header).
  const bool sampled = subscribers > 1;
  // About 100 streams per connection unless told otherwise.
  if (channels == 0) channels = std::max(1, (subscribers + flags.idle) / 100);
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments arguments;
    arguments.SetInt("walfeed.bench.channel", c);  // distinct channels, not one shared connection
    stubs.push_back(std::make_unique<grpc::GenericStub>(
        grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), arguments)));
  }
  Totals totals;
  std::vector<std::unique_ptr<Follower>> followers;
  for (int i = 0; i < subscribers; ++i) {
    followers.push_back(
        std::make_unique<Follower>(stubs[i % channels].get(), &totals, !sampled, from_head));
  }
  std::vector<std::unique_ptr<Follower>> idle;
  for (int i = 0; i < flags.idle; ++i) {
    idle.push_back(std::make_unique<Follower>(stubs[(subscribers + i) % channels].get(), &totals,
                                              false, true, flags.idle_table));
  }
  std::cout << "ready" << std::endl;

  std::string word;
  uint64_t expect = 0;
  if (!(std::cin >> word >> expect) || word != "expect") {
    std::cerr << "feed_followers: expected a line 'expect M' on stdin\n";
    for (auto* group : {&followers, &idle}) {
      for (auto& follower : *group) follower->Cancel();
      for (auto& follower : *group) follower->AwaitDone();
    }
    return 2;
  }
  const absl::Time deadline = absl::Now() + timeout;
  int complete = 0;
  while (true) {
    complete = 0;
    for (const auto& follower : followers) complete += follower->received() >= expect;
    if (complete == subscribers || absl::Now() > deadline || totals.failed.load() > 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  bool exact = true;
  bool ordered = true;
  for (auto& follower : followers) {
    exact = exact && follower->received() == expect;
    ordered = ordered && !follower->out_of_order();
  }
  // Failures so far include the idle streams': each must still be open.
  const uint64_t failed = totals.failed.load();
  for (auto* group : {&followers, &idle}) {
    for (auto& follower : *group) follower->Cancel();
    for (auto& follower : *group) follower->AwaitDone();
  }

  std::cout << "{\"subscribers\": " << subscribers << ", \"idle_subscribers\": " << flags.idle
            << ", \"failed_streams\": " << failed << ", \"expected_per_subscriber\": " << expect
            << ", \"complete_subscribers\": " << complete
            << ", \"changes_delivered\": " << totals.changes.load()
            << ", \"in_order\": " << (ordered ? "true" : "false")
            << ", \"latency_ms\": {\"p50\": " << totals.latency.PercentileMillis(0.5)
            << ", \"p99\": " << totals.latency.PercentileMillis(0.99)
            << ", \"p999\": " << totals.latency.PercentileMillis(0.999)
            << ", \"max\": " << static_cast<double>(totals.worst_micros.load()) / 1000.0 << "}}"
            << std::endl;
  return exact && ordered && failed == 0 ? 0 : 1;
}
