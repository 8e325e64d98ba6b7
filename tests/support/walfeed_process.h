// WalfeedProcess: the real walfeed binary started by a test on a free loopback port, ready
// once its gRPC feed answers; stopped (SIGTERM, or SIGKILL for crash tests) by process id.
// Also the gRPC client helpers integration tests use to read what it serves.
#ifndef WALFEED_TESTS_SUPPORT_WALFEED_PROCESS_H_
#define WALFEED_TESTS_SUPPORT_WALFEED_PROCESS_H_

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/process.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed::test {

std::string WalfeedBinary();
std::string WalfeedctlBinary();

struct WalfeedOptions {
  std::string conninfo;
  std::string data_dir;
  std::string slot = "walfeed";
  std::string publication = "walfeed";
  int port = 0;  // 0: pick a free one
  // Start() returns once the source streams (true) or once the gRPC server answers (false).
  bool wait_for_streaming = true;
  std::vector<std::string> extra_args;
  // "NAME=value" entries added to walfeed's environment (a fault point to arm, say).
  std::vector<std::string> env;
  // How to reach it: plaintext when unset; a bearer token sent with every call when set.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string token;
};

class WalfeedProcess {
 public:
  // Starts walfeed and waits until GetFeedInfo answers (and the source streams, unless
  // options.wait_for_streaming is false); fails with walfeed's output if it exits.
  static absl::StatusOr<std::unique_ptr<WalfeedProcess>> Start(WalfeedOptions options);
  ~WalfeedProcess();

  std::string address() const { return "127.0.0.1:" + std::to_string(options_.port); }
  const WalfeedOptions& options() const { return options_; }
  std::string Log() const { return ReadFile(log_path_); }

  // SIGTERM and wait; returns the exit code.
  int Terminate() { return child_.Stop(SIGTERM); }
  // SIGKILL: a crash.
  void Kill() { child_.Stop(SIGKILL); }
  pid_t pid() const { return child_.pid(); }
  // Waits up to `timeout` for the process to exit on its own (at a fault point, say); returns
  // whether it did.
  bool AwaitExit(absl::Duration timeout);

  std::unique_ptr<v1::ChangeFeed::Stub> NewStub() const;
  // A channel with options().credentials (plaintext when unset).
  std::shared_ptr<grpc::Channel> NewChannel() const;

 private:
  WalfeedProcess() = default;
  WalfeedOptions options_;
  std::string log_path_;
  ChildProcess child_;
};

std::unique_ptr<v1::ChangeFeed::Stub> NewStub(const std::string& address);

// Both readers fetch the values sent out of line and put them in place, as the client libraries
// do (a test that wants the references reads on its own).
// Reads with stop_at_head set; fails on a non-OK end or after `timeout`. The default timeouts
// here are generous on purpose: a sanitizer build on a busy machine is several times slower, and
// a passing read returns as soon as it is done.
absl::StatusOr<std::vector<v1::Change>> ReadToHead(v1::ChangeFeed::Stub& stub,
                                                   v1::SubscribeRequest request,
                                                   absl::Duration timeout = absl::Seconds(300));

// Reads until a MESSAGE change with content `marker` arrives; returns every change before it.
absl::StatusOr<std::vector<v1::Change>> ReadUntilMarker(
    v1::ChangeFeed::Stub& stub, const v1::SubscribeRequest& request, const std::string& marker,
    absl::Duration timeout = absl::Seconds(300));

// SQL that emits the marker ReadUntilMarker waits for.
std::string MarkerSql(const std::string& marker);

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_WALFEED_PROCESS_H_
