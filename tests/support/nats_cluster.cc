#include "tests/support/nats_cluster.h"

#include <nats/nats.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "server/replication/segment_codec.h"
#include "tests/support/process.h"

namespace walfeed::test {
namespace {

const std::string kNatsLocalScript = std::string(WALFEED_SOURCE_DIR) + "/scripts/nats-local.sh";

std::string LastLine(const std::string& output) {
  std::string text(absl::StripAsciiWhitespace(output));
  if (const size_t newline = text.rfind('\n'); newline != std::string::npos) {
    text = text.substr(newline + 1);
  }
  return text;
}

absl::Status NatsError(absl::string_view what, natsStatus s) {
  return absl::UnavailableError(absl::StrCat(what, ": ", natsStatus_GetText(s)));
}

// A connection to the cluster with its JetStream context, closed on destruction.
struct JetStreamSession {
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;

  natsStatus Connect(const std::string& urls) {
    natsOptions* options = nullptr;
    natsOptions_Create(&options);
    std::vector<std::string> split = absl::StrSplit(urls, ',');
    std::vector<const char*> servers;
    for (const std::string& url : split) servers.push_back(url.c_str());
    natsOptions_SetServers(options, servers.data(), static_cast<int>(servers.size()));
    natsStatus s = natsConnection_Connect(&connection, options);
    natsOptions_Destroy(options);
    if (s != NATS_OK) return s;
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.Wait = 10000;
    return natsConnection_JetStream(&js, connection, &js_options);
  }
  ~JetStreamSession() {
    if (js != nullptr) jsCtx_Destroy(js);
    if (connection != nullptr) natsConnection_Destroy(connection);
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<NatsCluster>> NatsCluster::Start(int nodes) {
  const std::string dir = MakeTempDir("walfeed-nats");
  if (dir.empty()) return absl::InternalError("cannot make a temp dir for NATS");
  std::unique_ptr<NatsCluster> cluster(new NatsCluster(dir, nodes));
  RunResult started = RunCommand({"bash", kNatsLocalScript, "start", dir, std::to_string(nodes)},
                                 absl::Seconds(90));
  if (started.exit_code != 0) {
    return absl::InternalError(absl::StrCat("cannot start NATS: ", started.output));
  }
  cluster->urls_ = LastLine(started.output);
  return cluster;
}

NatsCluster::~NatsCluster() {
  RunCommand({"bash", kNatsLocalScript, "stop", dir_}, absl::Seconds(60));
  RemoveTree(dir_);
}

absl::Status NatsCluster::Script(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"bash", kNatsLocalScript};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult result = RunCommand(argv, absl::Seconds(90));
  if (result.exit_code != 0) {
    return absl::InternalError(absl::StrCat("nats-local.sh ", args[0], ": ", result.output));
  }
  return absl::OkStatus();
}

absl::Status NatsCluster::Kill(int node) { return Script({"kill", dir_, std::to_string(node)}); }
absl::Status NatsCluster::Stop(int node) { return Script({"term", dir_, std::to_string(node)}); }
absl::Status NatsCluster::StartNode(int node) { return Script({"up", dir_, std::to_string(node)}); }
absl::Status NatsCluster::StopAll() { return Script({"stop", dir_}); }
absl::Status NatsCluster::StartAll() { return Script({"start", dir_}); }

absl::StatusOr<int> NatsCluster::Leader(const std::string& stream) {
  // A stream without a leader (an election under way: 4 to 9 s) is asked again for a while.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    RunResult result =
        RunCommand({"bash", kNatsLocalScript, "leader", dir_, stream}, absl::Seconds(30));
    int node = 0;
    if (result.exit_code == 0 && absl::SimpleAtoi(LastLine(result.output), &node)) return node;
    if (absl::Now() > deadline) {
      return absl::UnavailableError(absl::StrCat("no leader of ", stream, ": ", result.output));
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
}

absl::StatusOr<std::vector<StreamMessage>> NatsCluster::ReadStream(
    const std::string& stream) const {
  JetStreamSession session;
  natsStatus s = session.Connect(urls_);
  if (s != NATS_OK) return NatsError("cannot connect to NATS", s);
  jsCtx* js = session.js;
  absl::StatusOr<std::vector<StreamMessage>> result = std::vector<StreamMessage>();
  jsStreamInfo* info = nullptr;
  jsErrCode js_error = jsErrCode{};
  // Right after a restart the stream has no leader for a few seconds: ask again meanwhile.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while ((s = js_GetStreamInfo(&info, js, stream.c_str(), nullptr, &js_error)) != NATS_OK &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(500));
  }
  if (s != NATS_OK) {
    result = NatsError(absl::StrCat("cannot read stream ", stream), s);
  } else {
    const uint64_t first = info->State.FirstSeq;
    const uint64_t last = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
    for (uint64_t seq = std::max<uint64_t>(first, 1); seq <= last && result.ok(); ++seq) {
      natsMsg* message = nullptr;
      while ((s = js_GetMsg(&message, js, stream.c_str(), seq, nullptr, &js_error)) != NATS_OK &&
             s != NATS_NOT_FOUND && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(500));
      }
      if (s != NATS_OK) {
        result = NatsError(absl::StrCat("cannot read message ", seq, " of ", stream), s);
        break;
      }
      StreamMessage read;
      read.sequence = seq;
      const char** keys = nullptr;
      int count = 0;
      if (natsMsgHeader_Keys(message, &keys, &count) == NATS_OK) {
        for (int i = 0; i < count; ++i) {
          const char* value = nullptr;
          if (natsMsgHeader_Get(message, keys[i], &value) == NATS_OK) {
            read.headers[keys[i]] = value;
          }
        }
        free(static_cast<void*>(keys));
      }
      const auto compression = read.headers.find(kCompressionHeader);
      std::string scratch;
      absl::StatusOr<absl::string_view> bytes =
          DecodeSegment(absl::string_view(natsMsg_GetData(message), natsMsg_GetDataLength(message)),
                        compression == read.headers.end() ? "" : compression->second, &scratch);
      if (!bytes.ok()) {
        result = absl::DataLossError(
            absl::StrCat("message ", seq, " cannot be read: ", bytes.status().message()));
      } else if (!read.segment.ParseFromArray(bytes->data(), static_cast<int>(bytes->size()))) {
        result = absl::DataLossError(absl::StrCat("message ", seq, " is not a LogSegment"));
      }
      natsMsg_Destroy(message);
      if (result.ok()) result->push_back(std::move(read));
    }
  }
  return result;
}

absl::Status NatsCluster::PurgeStream(const std::string& stream, uint64_t keep) const {
  JetStreamSession session;
  natsStatus s = session.Connect(urls_);
  if (s != NATS_OK) return NatsError("cannot connect to NATS", s);
  jsCtx* js = session.js;
  jsOptions purge;
  jsOptions_Init(&purge);
  purge.Wait = 10000;
  purge.Stream.Purge.Keep = keep;
  jsErrCode js_error = jsErrCode{};
  s = js_PurgeStream(js, stream.c_str(), &purge, &js_error);
  if (s != NATS_OK) return NatsError(absl::StrCat("cannot purge stream ", stream), s);
  return absl::OkStatus();
}

}  // namespace walfeed::test
