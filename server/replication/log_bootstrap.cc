#include "server/replication/log_bootstrap.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/table_name.h"
#include "server/core/value_ref.h"
#include "server/log/out_of_line_values.h"
#include "spdlog/spdlog.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace walfeed {
namespace {

constexpr absl::Duration kInfoTimeout = absl::Seconds(10);

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

absl::StatusOr<v1::FeedInfo> ReadInfo(v1::ChangeFeed::Stub& stub, const std::string& address) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kInfoTimeout));
  v1::FeedInfo info;
  grpc::Status status = stub.GetFeedInfo(&context, v1::GetFeedInfoRequest(), &info);
  if (!status.ok()) return FromGrpc(status, absl::StrCat("cannot describe the feed at ", address));
  return info;
}

// The chunks of one value stored out of line, as the peer stores them (each ValueChunk is at
// most one stored chunk).
absl::Status ReadChunks(v1::ChangeFeed::Stub& stub, const v1::LargeValue& large,
                        std::vector<ChangeLog::StoredChunk>* chunks) {
  absl::StatusOr<ValueRef> ref = ParseValueRef(large.ref());
  if (!ref.ok()) return ref.status();
  grpc::ClientContext context;
  v1::ReadValueRequest request;
  request.set_ref(large.ref());
  std::unique_ptr<grpc::ClientReader<v1::ValueChunk>> reader = stub.ReadValue(&context, request);
  v1::ValueChunk chunk;
  uint64_t read = 0;
  while (reader->Read(&chunk)) {
    read += chunk.data().size();
    chunks->push_back(
        ChangeLog::StoredChunk{*ref, chunk.offset(), std::move(*chunk.mutable_data())});
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpc(status, absl::StrCat("cannot read value ", large.ref()));
  if (read != large.size()) {
    return absl::UnavailableError(
        absl::StrCat("value ", large.ref(), " came with ", read, " bytes of ", large.size()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LogBootstrap::CopyToPeerHead(const std::function<bool()>& stopping) {
  // Every reachable peer in turn gives what it holds past the head so far (the list may name
  // this instance too: it gives nothing); an unreachable one is passed over.
  absl::Status last = absl::UnavailableError("no address to copy the log from");
  bool reached = false;
  for (const std::string& address : addresses_) {
    absl::Status copied = CopyFrom(address, stopping);
    if (copied.ok()) {
      reached = true;
    } else if (!absl::IsUnavailable(copied)) {
      return copied;
    } else {
      last = copied;
    }
  }
  return reached ? absl::OkStatus() : last;
}

absl::Status LogBootstrap::CopyFrom(const std::string& address,
                                    const std::function<bool()>& stopping) {
  auto stub =
      v1::ChangeFeed::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  absl::StatusOr<v1::FeedInfo> info = ReadInfo(*stub, address);
  if (!info.ok()) return info.status();
  if (info->log_id() != log_->LogId()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the walfeed at ", address, " serves log ", info->log_id(), ", not this replica's log ",
        log_->LogId(), ": --bootstrap-from must name instances of the same group"));
  }
  const absl::Time began = absl::Now();
  const Position from = log_->Head();
  v1::SubscribeRequest request;
  request.set_log_id(log_->LogId());
  request.set_stop_at_head(true);
  if (!from.IsZero()) request.set_cursor(FormatCursor(from));
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader =
      stub->Subscribe(&context, request);
  v1::SubscribeResponse response;
  uint64_t copied = 0;
  absl::Status failed;
  while (failed.ok() && reader->Read(&response)) {
    if (stopping()) {
      failed = absl::CancelledError("stopping");
      break;
    }
    std::vector<ChangeLog::StoredChunk> chunks;
    std::vector<LogRecord> records;
    bool ends_transaction = false;
    for (const v1::Change& change : response.changes()) {
      for (const v1::LargeValue& large : OutOfLineValues(change)) {
        failed = ReadChunks(*stub, large, &chunks);
        if (!failed.ok()) break;
      }
      if (!failed.ok()) break;
      records.push_back(
          LogRecord{Position{change.lsn(), change.seq()}, change.SerializeAsString()});
      ends_transaction = change.last_in_transaction();
    }
    if (!failed.ok() || records.empty()) continue;
    failed = log_->AppendStored(chunks, records, ends_transaction, {});
    copied += records.size();
  }
  if (!failed.ok()) {
    context.TryCancel();
    reader->Finish();
    return failed;
  }
  if (grpc::Status status = reader->Finish(); !status.ok()) {
    return FromGrpc(status, absl::StrCat("cannot read the log from ", address));
  }
  // Read after the copy: whatever the peer purged meanwhile is below it.
  absl::StatusOr<v1::FeedInfo> after = ReadInfo(*stub, address);
  if (!after.ok()) return after.status();
  if (!after->purge_cursor().empty()) {
    absl::StatusOr<Position> purge_point = ParseCursor(after->purge_cursor());
    if (!purge_point.ok()) return purge_point.status();
    if (absl::Status raised = log_->RaisePurgePoint(*purge_point); !raised.ok()) return raised;
  }
  spdlog::info("event=bootstrap_copied peer={} from={} head={} changes={} seconds={:.2f}", address,
               FormatCursor(from), FormatCursor(log_->Head()), copied,
               absl::ToDoubleSeconds(absl::Now() - began));
  return absl::OkStatus();
}

}  // namespace walfeed
