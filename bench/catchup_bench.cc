// catchup_bench: how fast one subscriber from 0 catches up on a long log through walfeed's real
// gRPC server and a C++ client, against a raw sequential RocksDB scan of the same log.
//
//   catchup_bench --dir DIR --changes N [--row-bytes 200]
//
// 1. Fills a fresh ChangeLog in DIR/log with N row changes (rows of about --row-bytes, in
//    transactions of 100, every change a distinct key so compaction would supersede nothing).
//    Appends are not fsynced (the fill is set-up, not measured; they still go through RocksDB's
//    write-ahead log).
// 2. Settles it: closes the log, opens the directory with RocksDB (which flushes what the
//    write-ahead log held), waits until no flush or compaction is pending or running, closes it.
//    Reads then come from SST files as after a restart, and no background compaction competes
//    with them. The page cache is not dropped: the log was just written, so on a machine with
//    memory to spare both reads below come from the page cache (CPU, not disk, is measured).
// 3. The reference: the best sequential scan RocksDB can do of the "changes" column family,
//    opened read-only with the log's table options (64 MiB block cache), touching every key and
//    value: once through the block cache (the default read options), once as a streaming scan
//    (no cache fill, 2 MiB readahead, as a far-behind reader of walfeed reads). Both run before
//    and after the feed; the fastest of the four counts, so the ratio errs against walfeed.
// 4. The feed: the log reopened, walfeed's FeedServer on 127.0.0.1 (port 0) with default
//    FeedOptions, and one C++ client on this thread: Subscribe from_lsn 0, stop_at_head,
//    max_batch_changes at the server's maximum. The changes must arrive in strictly increasing
//    (lsn, seq) order and number exactly N. Timed from the call (on an already connected
//    channel) to the stream's OK end. Twice: first a client that reads each message as bytes and
//    only each change's position from the wire format (as the raw scan touches each record
//    without parsing it: the "feed" figures), then one that parses every SubscribeResponse into
//    the generated classes, as most consumers do (the "parsing_feed" figures).
// Prints one JSON object on stdout (logs go to stderr). Exits 1 with a message when anything
// fails or the feed delivers the wrong changes.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <time.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_flags.h"
#include "bench/synthetic_log.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "server/core/change_wire_format.h"
#include "server/core/position.h"
#include "server/core/source_status.h"
#include "server/feed/feed_options.h"
#include "server/feed/feed_server.h"
#include "server/log/change_log.h"
#include "server/log/compaction_policy.h"
#include "server/log/compactor.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"
#include "walfeed/v1/walfeed.grpc.pb.h"

namespace {

// The column family that holds the changes (server/log/change_log_state.h). A rename would show
// as a raw scan that finds no changes, which fails the run.
constexpr char kChangesFamily[] = "changes";
// ChangeLogOptions::block_cache_bytes' default: the reference reads with the same cache.
constexpr size_t kBlockCacheBytes = 64 << 20;

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", status.ToString()));
}

double CpuSeconds(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

// Every column family of the database in `path`, with default options.
absl::StatusOr<std::vector<rocksdb::ColumnFamilyDescriptor>> Families(const std::string& path) {
  std::vector<std::string> names;
  rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names);
  if (!listed.ok()) return FromRocks(listed, absl::StrCat("cannot list the families of ", path));
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  return families;
}

// Opens the database read-write, which flushes what its write-ahead log held, and waits until
// no flush or compaction is pending or running, so that the timed reads run on a quiet log.
absl::Status Settle(const std::string& path) {
  absl::StatusOr<std::vector<rocksdb::ColumnFamilyDescriptor>> families = Families(path);
  if (!families.ok()) return families.status();
  rocksdb::DBOptions options;
  options.IncreaseParallelism(2);
  std::vector<rocksdb::ColumnFamilyHandle*> raw_handles;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status opened = rocksdb::DB::Open(options, path, *families, &raw_handles, &raw_db);
  if (!opened.ok()) return FromRocks(opened, absl::StrCat("cannot open ", path, " to settle it"));
  std::unique_ptr<rocksdb::DB> db(raw_db);
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles(raw_handles.begin(),
                                                                    raw_handles.end());
  absl::Status settled = FromRocks(db->Flush(rocksdb::FlushOptions(), raw_handles),
                                   "cannot flush the log's memtables");
  // Quiet twice in a row: a finished flush can schedule a compaction just after it.
  for (int quiet = 0; settled.ok() && quiet < 2;) {
    uint64_t busy = 0;
    uint64_t value = 0;
    for (rocksdb::ColumnFamilyHandle* family : raw_handles) {
      if (db->GetIntProperty(family, rocksdb::DB::Properties::kCompactionPending, &value)) {
        busy += value;
      }
    }
    if (db->GetIntProperty(rocksdb::DB::Properties::kNumRunningCompactions, &value)) busy += value;
    if (db->GetIntProperty(rocksdb::DB::Properties::kNumRunningFlushes, &value)) busy += value;
    quiet = busy == 0 ? quiet + 1 : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  handles.clear();  // before the DB
  if (settled.ok()) settled = FromRocks(db->Close(), "cannot close the settled log");
  return settled;
}

struct ScanResult {
  uint64_t changes = 0;
  uint64_t bytes = 0;  // keys and values
  absl::Duration took;
};

// How the reference scan reads.
enum class ScanKind {
  kCached,     // default read options: blocks go through the 64 MiB block cache
  kStreaming,  // no cache fill, 2 MiB readahead
};

// The reference: every change of the log in key order, read-only, with a plain iterator.
absl::StatusOr<ScanResult> RawScan(const std::string& path, ScanKind kind) {
  rocksdb::BlockBasedTableOptions table_options;
  table_options.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  rocksdb::ColumnFamilyOptions changes_options;
  changes_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kChangesFamily, changes_options}};
  std::vector<rocksdb::ColumnFamilyHandle*> raw_handles;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status opened =
      rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, families, &raw_handles, &raw_db);
  if (!opened.ok()) return FromRocks(opened, absl::StrCat("cannot open ", path, " read-only"));
  std::unique_ptr<rocksdb::DB> db(raw_db);
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles(raw_handles.begin(),
                                                                    raw_handles.end());
  ScanResult result;
  const absl::Time start = absl::Now();
  {
    rocksdb::ReadOptions read_options;
    if (kind == ScanKind::kStreaming) {
      read_options.fill_cache = false;
      read_options.readahead_size = 2 << 20;
    }
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read_options, raw_handles[1]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const rocksdb::Slice key = it->key();
      const rocksdb::Slice value = it->value();
      ++result.changes;
      result.bytes += key.size() + value.size();
    }
    if (!it->status().ok()) return FromRocks(it->status(), "the raw scan failed");
  }
  result.took = absl::Now() - start;
  handles.clear();
  return result;
}

struct FeedResult {
  uint64_t changes = 0;
  uint64_t messages = 0;
  absl::Duration took;
  double process_cpu_seconds = 0;
  double client_cpu_seconds = 0;
};

// How the client reads the stream.
enum class Client {
  // Parses every SubscribeResponse into generated protobuf classes, as most consumers do.
  kParse,
  // Receives each message as bytes and reads only each change's (lsn, seq) from the wire format,
  // as the raw scan touches each record without parsing it: like with like.
  kCount,
};

// Checks that changes arrive in strictly increasing order and counts them.
class OrderCheck {
 public:
  void See(const walfeed::Position& position) {
    if (position <= last_ && status_.ok()) {
      status_ = absl::DataLossError(absl::StrCat("change ", changes_, " arrived at ",
                                                 walfeed::FormatCursor(position), ", not after ",
                                                 walfeed::FormatCursor(last_)));
    }
    last_ = position;
    ++changes_;
  }
  void Fail(absl::Status status) {
    if (status_.ok()) status_ = std::move(status);
  }
  uint64_t changes() const { return changes_; }
  const absl::Status& status() const { return status_; }

 private:
  walfeed::Position last_;
  uint64_t changes_ = 0;
  absl::Status status_;
};

grpc::Status ReadParsed(grpc::Channel& channel, const walfeed::v1::SubscribeRequest& request,
                        OrderCheck& check, uint64_t& messages) {
  std::unique_ptr<walfeed::v1::ChangeFeed::Stub> stub = walfeed::v1::ChangeFeed::NewStub(
      std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<walfeed::v1::SubscribeResponse>> reader =
      stub->Subscribe(&context, request);
  walfeed::v1::SubscribeResponse response;  // reused, as a consumer's read loop would
  while (reader->Read(&response)) {
    ++messages;
    for (const walfeed::v1::Change& change : response.changes()) {
      check.See(walfeed::Position{change.lsn(), change.seq()});
    }
  }
  return reader->Finish();
}

grpc::Status ReadCounted(grpc::Channel& channel, const walfeed::v1::SubscribeRequest& request,
                         OrderCheck& check, uint64_t& messages) {
  // SubscribeResponse.changes (see the .proto).
  constexpr uint32_t kChangesField = 1;
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, "/walfeed.v1.ChangeFeed/Subscribe", &queue);
  // One operation at a time: each is started, then awaited.
  const auto await = [&queue] {
    void* tag = nullptr;
    bool ok = false;
    return queue.Next(&tag, &ok) && ok;
  };
  call->StartCall(nullptr);
  if (!await()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the call did not start");
  const std::string request_bytes = request.SerializeAsString();
  grpc::Slice request_slice(request_bytes);
  call->WriteLast(grpc::ByteBuffer(&request_slice, 1), grpc::WriteOptions(), nullptr);
  if (!await()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the request was not sent");
  grpc::ByteBuffer buffer;
  std::vector<grpc::Slice> slices;
  std::string joined;
  for (;;) {
    call->Read(&buffer, nullptr);
    if (!await()) break;
    ++messages;
    if (!buffer.Dump(&slices).ok()) {
      check.Fail(absl::DataLossError("a message could not be read"));
      continue;
    }
    absl::string_view bytes;
    if (slices.size() == 1) {
      bytes = absl::string_view(reinterpret_cast<const char*>(slices[0].begin()), slices[0].size());
    } else {
      joined.clear();
      for (const grpc::Slice& slice : slices) {
        joined.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
      }
      bytes = joined;
    }
    const bool parsed =
        walfeed::VisitFields(bytes, [&check](uint32_t field, uint64_t, absl::string_view change) {
          if (field != kChangesField) return true;
          walfeed::ChangeSummary summary;
          if (!walfeed::SummarizeChange(change, &summary)) return false;
          check.See(walfeed::Position{summary.lsn, summary.seq});
          return true;
        });
    if (!parsed) check.Fail(absl::DataLossError("a message is not a well-formed response"));
  }
  grpc::Status finished;
  call->Finish(&finished, nullptr);
  await();
  return finished;
}

// The real feed: walfeed's server in-process, one C++ client subscribed from 0 to the head.
absl::StatusOr<FeedResult> Feed(const std::string& path, uint64_t expected, Client client) {
  absl::StatusOr<std::unique_ptr<walfeed::ChangeLog>> log = walfeed::bench::OpenUnsyncedLog(path);
  if (!log.ok()) return log.status();
  // Not started: no pass and no index catch-up runs during the read.
  walfeed::Compactor compactor(log->get(), walfeed::CompactionPolicy(), absl::InfiniteDuration());
  walfeed::FeedOptions options;
  options.listen_address = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<walfeed::FeedServer>> server = walfeed::FeedServer::Start(
      options, log->get(), &compactor, [] { return walfeed::SourceStatus(); });
  if (!server.ok()) return server.status();

  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    return absl::UnavailableError("the client cannot connect to the in-process feed server");
  }
  walfeed::v1::SubscribeRequest request;
  request.set_from_lsn(0);
  request.set_stop_at_head(true);
  request.set_max_batch_changes(static_cast<uint32_t>(options.max_batch_changes));

  FeedResult result;
  OrderCheck check;
  const double process_cpu_start = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
  const double client_cpu_start = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
  const absl::Time start = absl::Now();
  const grpc::Status finished = client == Client::kParse
                                    ? ReadParsed(*channel, request, check, result.messages)
                                    : ReadCounted(*channel, request, check, result.messages);
  result.took = absl::Now() - start;
  result.client_cpu_seconds = CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - client_cpu_start;
  result.process_cpu_seconds = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - process_cpu_start;
  result.changes = check.changes();
  (*server)->Shutdown();

  if (!finished.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "the Subscribe stream ended with ", finished.error_code(), ": ", finished.error_message()));
  }
  if (!check.status().ok()) return check.status();
  if (result.changes != expected) {
    return absl::DataLossError(
        absl::StrCat("the feed delivered ", result.changes, " changes; the log holds ", expected));
  }
  return result;
}

int Fail(const absl::Status& status) {
  std::cerr << "catchup_bench: " << status << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  uint64_t changes = 0;
  uint64_t row_bytes = 200;
  if (!walfeed::bench::ParseBenchFlags(argc, argv, "catchup_bench", {{"--dir", &dir}},
                                       {{"--changes", &changes}, {"--row-bytes", &row_bytes}})) {
    return 2;
  }
  if (dir.empty() || changes == 0 || argc % 2 == 0) {
    std::cerr << "usage: catchup_bench --dir DIR --changes N [--row-bytes B] (N > 0)\n";
    return 2;
  }
  // stdout carries the result alone.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("catchup_bench"));
  spdlog::set_level(spdlog::level::warn);

  const std::string path = dir + "/log";
  if (std::filesystem::exists(path)) {
    return Fail(absl::FailedPreconditionError(
        absl::StrCat("'", path, "' already exists; give a fresh --dir")));
  }
  absl::Duration fill_time;
  {
    absl::StatusOr<std::unique_ptr<walfeed::ChangeLog>> log = walfeed::bench::OpenUnsyncedLog(path);
    if (!log.ok()) return Fail(log.status());
    const absl::Time fill_start = absl::Now();
    // Keys = N: every change inserts its own row.
    if (absl::Status s = walfeed::bench::Fill(**log, changes, changes, 0, row_bytes,
                                              absl::Now() - absl::Hours(1));
        !s.ok()) {
      return Fail(s);
    }
    fill_time = absl::Now() - fill_start;
  }
  const absl::Time settle_start = absl::Now();
  if (absl::Status s = Settle(path); !s.ok()) return Fail(s);
  const absl::Duration settle_time = absl::Now() - settle_start;
  const uint64_t log_bytes = walfeed::bench::DirectoryBytes(path);

  // The reference scans, each kind before and after the feed; the fastest counts.
  std::vector<std::pair<const char*, ScanResult>> scans;
  const auto scan_both_ways = [&]() -> absl::Status {
    for (const auto& [name, kind] : {std::pair<const char*, ScanKind>{"cached", ScanKind::kCached},
                                     {"streaming", ScanKind::kStreaming}}) {
      absl::StatusOr<ScanResult> scan = RawScan(path, kind);
      if (!scan.ok()) return scan.status();
      if (scan->changes != changes) {
        return absl::DataLossError(absl::StrCat("the raw scan found ", scan->changes, " changes; ",
                                                changes, " were written"));
      }
      scans.emplace_back(name, *scan);
    }
    return absl::OkStatus();
  };
  if (absl::Status s = scan_both_ways(); !s.ok()) return Fail(s);
  absl::StatusOr<FeedResult> feed = Feed(path, changes, Client::kCount);
  if (!feed.ok()) return Fail(feed.status());
  absl::StatusOr<FeedResult> parsing = Feed(path, changes, Client::kParse);
  if (!parsing.ok()) return Fail(parsing.status());
  if (absl::Status s = scan_both_ways(); !s.ok()) return Fail(s);
  size_t fastest = 0;
  for (size_t i = 1; i < scans.size(); ++i) {
    if (scans[i].second.took < scans[fastest].second.took) fastest = i;
  }
  const ScanResult& scan = scans[fastest].second;

  const double scan_seconds = absl::ToDoubleSeconds(scan.took);
  const double feed_seconds = absl::ToDoubleSeconds(feed->took);
  const double scan_rate = changes / scan_seconds;
  const double feed_rate = changes / feed_seconds;
  std::cout << "{\"changes\": " << changes << ", \"row_bytes\": " << row_bytes
            << ", \"log_bytes\": " << log_bytes
            << ", \"fill_seconds\": " << absl::ToDoubleSeconds(fill_time)
            << ", \"settle_seconds\": " << absl::ToDoubleSeconds(settle_time)
            << ", \"raw_scan_seconds\": " << scan_seconds << ", \"raw_scan_kind\": \""
            << scans[fastest].first << "\""
            << ", \"raw_scan_cached_seconds\": [" << absl::ToDoubleSeconds(scans[0].second.took)
            << ", " << absl::ToDoubleSeconds(scans[2].second.took) << "]"
            << ", \"raw_scan_streaming_seconds\": [" << absl::ToDoubleSeconds(scans[1].second.took)
            << ", " << absl::ToDoubleSeconds(scans[3].second.took) << "]"
            << ", \"raw_scan_bytes\": " << scan.bytes
            << ", \"raw_scan_changes_per_second\": " << static_cast<uint64_t>(scan_rate)
            << ", \"feed_seconds\": " << feed_seconds
            << ", \"feed_changes_per_second\": " << static_cast<uint64_t>(feed_rate)
            << ", \"feed_messages\": " << feed->messages
            << ", \"feed_process_cpu_seconds\": " << feed->process_cpu_seconds
            << ", \"feed_client_cpu_seconds\": " << feed->client_cpu_seconds
            << ", \"feed_server_cpu_seconds\": "
            << feed->process_cpu_seconds - feed->client_cpu_seconds
            << ", \"parsing_feed_seconds\": " << absl::ToDoubleSeconds(parsing->took)
            << ", \"parsing_feed_changes_per_second\": "
            << static_cast<uint64_t>(changes / absl::ToDoubleSeconds(parsing->took))
            << ", \"parsing_feed_process_cpu_seconds\": " << parsing->process_cpu_seconds
            << ", \"parsing_feed_client_cpu_seconds\": " << parsing->client_cpu_seconds
            << ", \"parsing_feed_server_cpu_seconds\": "
            << parsing->process_cpu_seconds - parsing->client_cpu_seconds
            << ", \"ratio\": " << feed_rate / scan_rate << "}\n";
  return 0;
}
