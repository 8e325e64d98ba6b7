// CopyPoint: where a log stands in its replication stream, recorded in the log's metadata so a
// walfeed that copies the stream (a replica, or a group member going back to following) reads
// on from there after a restart.
//
// Promise of whoever records it: the log holds everything before `next` (the Walfeed-Next of
// stream message `sequence`), so reading the stream from `sequence` + 1 continues it exactly.
#ifndef WALFEED_SERVER_REPLICATION_COPY_POINT_H_
#define WALFEED_SERVER_REPLICATION_COPY_POINT_H_

#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/core/metadata_keys.h"
#include "server/core/transaction_sink.h"

namespace walfeed {

struct CopyPoint {
  uint64_t sequence = 0;  // 0: nothing recorded
  std::string next;       // a formatted SegmentStart

  static CopyPoint Read(const TransactionSink& log) {
    CopyPoint point;
    if (!absl::SimpleAtoi(log.Metadata(kCopySequenceKey), &point.sequence)) point.sequence = 0;
    point.next = log.Metadata(kCopyNextKey);
    if (point.next.empty()) point.sequence = 0;
    return point;
  }
  TransactionSink::MetadataUpdates Updates() const {
    return {{kCopySequenceKey, absl::StrCat(sequence)}, {kCopyNextKey, next}};
  }
};

}  // namespace walfeed

#endif  // WALFEED_SERVER_REPLICATION_COPY_POINT_H_
