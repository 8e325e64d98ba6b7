#include "tests/support/walfeed_process.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "client/large_values.h"

namespace walfeed::test {

std::string WalfeedBinary() { return std::string(WALFEED_BIN_DIR) + "/walfeed"; }
std::string WalfeedctlBinary() { return std::string(WALFEED_BIN_DIR) + "/walfeedctl"; }

std::unique_ptr<v1::ChangeFeed::Stub> NewStub(const std::string& address) {
  return v1::ChangeFeed::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

absl::StatusOr<std::unique_ptr<WalfeedProcess>> WalfeedProcess::Start(WalfeedOptions options) {
  // A port FreePort() gave may be taken by another test's process before this walfeed binds it:
  // then this walfeed exits saying so, and it starts again on another port. The readiness check
  // below never mistakes that other process for this walfeed: it also waits for this process's own
  // "event=feed_listening" line, written once its gRPC server holds the port.
  const bool any_port = options.port == 0;
  for (int attempt = 1;; ++attempt) {
    if (any_port) options.port = FreePort();
    std::unique_ptr<WalfeedProcess> process(new WalfeedProcess());
    process->options_ = options;
    process->log_path_ = options.data_dir + ".log";
    const size_t log_start = process->Log().size();
    std::vector<std::string> argv = {
        WalfeedBinary(),     "--pg",     options.conninfo,  "--data-dir",
        options.data_dir,    "--slot",   options.slot,      "--publication",
        options.publication, "--listen", process->address()};
    argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
    absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(argv, process->log_path_, options.env);
    if (!child.ok()) return child.status();
    process->child_ = std::move(*child);

    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    bool port_taken = false;
    while (absl::Now() < deadline) {
      if (!process->child_.running()) {
        const std::string log = process->Log();
        port_taken = any_port && log.find("cannot listen on '", log_start) != std::string::npos;
        if (port_taken && attempt < 3) break;
        return absl::FailedPreconditionError(absl::StrCat("walfeed exited: ", log));
      }
      if (process->Log().find("event=feed_listening", log_start) != std::string::npos) {
        // A fresh channel each time: a channel that failed to connect backs off for seconds.
        std::unique_ptr<v1::ChangeFeed::Stub> stub = v1::ChangeFeed::NewStub(process->NewChannel());
        grpc::ClientContext context;
        if (!options.token.empty()) context.AddMetadata("authorization", "Bearer " + options.token);
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
        v1::FeedInfo info;
        if (stub->GetFeedInfo(&context, v1::GetFeedInfoRequest(), &info).ok() &&
            (!options.wait_for_streaming || info.source_state() == "streaming")) {
          return process;
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (!port_taken) {
      return absl::DeadlineExceededError(
          absl::StrCat("walfeed did not become ready: ", process->Log()));
    }
  }
}

WalfeedProcess::~WalfeedProcess() { child_.Stop(SIGTERM); }

std::shared_ptr<grpc::Channel> WalfeedProcess::NewChannel() const {
  return grpc::CreateChannel(
      address(), options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials());
}

bool WalfeedProcess::AwaitExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (child_.running()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

std::unique_ptr<v1::ChangeFeed::Stub> WalfeedProcess::NewStub() const {
  return test::NewStub(address());
}

absl::StatusOr<std::vector<v1::Change>> ReadToHead(v1::ChangeFeed::Stub& stub,
                                                   v1::SubscribeRequest request,
                                                   absl::Duration timeout) {
  request.set_stop_at_head(true);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  auto reader = stub.Subscribe(&context, request);
  std::vector<v1::Change> changes;
  v1::SubscribeResponse response;
  while (reader->Read(&response)) {
    for (v1::Change& change : *response.mutable_changes()) {
      if (absl::Status fetched = FetchLargeValues(stub, nullptr, &change); !fetched.ok()) {
        context.TryCancel();
        reader->Finish();
        return fetched;
      }
      changes.push_back(change);
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return changes;
}

absl::StatusOr<std::vector<v1::Change>> ReadUntilMarker(v1::ChangeFeed::Stub& stub,
                                                        const v1::SubscribeRequest& request,
                                                        const std::string& marker,
                                                        absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  auto reader = stub.Subscribe(&context, request);
  std::vector<v1::Change> changes;
  v1::SubscribeResponse response;
  while (reader->Read(&response)) {
    for (v1::Change& change : *response.mutable_changes()) {
      if (absl::Status fetched = FetchLargeValues(stub, nullptr, &change); !fetched.ok()) {
        context.TryCancel();
        reader->Finish();
        return fetched;
      }
      if (change.op() == v1::Change::MESSAGE && change.message().content() == marker) {
        context.TryCancel();
        reader->Finish();
        return changes;
      }
      changes.push_back(change);
    }
  }
  grpc::Status status = reader->Finish();
  return absl::DeadlineExceededError(
      absl::StrCat("marker '", marker, "' never arrived (", changes.size(),
                   " changes read, stream ended with ", status.error_message(), ")"));
}

std::string MarkerSql(const std::string& marker) {
  return absl::StrCat("SELECT pg_logical_emit_message(true, 'walfeed-test', '", marker, "')");
}

}  // namespace walfeed::test
