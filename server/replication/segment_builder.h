// Segments: how the change log is cut into the messages of its replication stream.
//
// A segment is one serialized walfeed.v1.LogSegment: the stored changes from a starting point on,
// in position order, exactly as the log holds them (so as Subscribe sends them), preceded by the
// chunks of their values stored out of line. BuildSegment() promises:
// - Nothing is skipped or repeated: the segment begins exactly at `from` and its `next` is where
//   the following segment must begin. Chained, segments are the log from `from` to the head.
// - A segment stays within `budget` bytes unless one item (a change, or a 256 KiB value chunk)
//   alone is larger; then that item is the segment.
// - Whole transactions: a segment that would end inside a transaction ends after the last
//   transaction it holds whole instead; only a transaction too large for one segment is split,
//   and the segment that splits it says so (`continued`).
// - A segment is the log's content between `from` and its `next`: committed changes there never
//   change (compaction keeps what is not replicated), so two segments with the same start and the
//   same next are the same bytes. (Rebuilt from the same start later, a segment may reach further,
//   the head having moved: the message id names both ends.)
// It knows the log and the wire format, nothing of NATS.
#ifndef WALFEED_SERVER_REPLICATION_SEGMENT_BUILDER_H_
#define WALFEED_SERVER_REPLICATION_SEGMENT_BUILDER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/position.h"
#include "server/core/value_ref.h"
#include "server/log/change_log.h"

namespace walfeed {

// Where a segment begins: the first change at or after `position`, or, when `chunk` is set, the
// middle of that change's values stored out of line: from the chunk of `chunk` at `chunk_offset`
// on (a value too large for one segment is split between segments at chunk boundaries).
struct SegmentStart {
  Position position;
  std::optional<ValueRef> chunk;
  uint64_t chunk_offset = 0;

  // The first change at or after `position`, from its first value chunk.
  static SegmentStart At(const Position& position) {
    SegmentStart start;
    start.position = position;
    return start;
  }

  friend bool operator==(const SegmentStart& a, const SegmentStart& b) {
    return a.position == b.position && a.chunk == b.chunk && a.chunk_offset == b.chunk_offset;
  }
};

// "<cursor>", or "<value ref>+<offset>" inside a change's values, e.g. "0/16B3748:3/after/2+262144"
// (the headers Walfeed-Start and Walfeed-Next).
std::string FormatSegmentStart(const SegmentStart& start);
absl::StatusOr<SegmentStart> ParseSegmentStart(absl::string_view text);

struct Segment {
  std::string bytes;  // a serialized walfeed.v1.LogSegment
  SegmentStart next;
  // The first and last change in the segment (unset when it holds only value chunks).
  std::optional<Position> first;
  std::optional<Position> last;
  // The last change in the segment that ends its transaction (unset when none does): every
  // transaction up to it is whole in this segment and the ones before.
  std::optional<Position> last_whole;
  uint64_t changes = 0;
  uint64_t chunks = 0;
};

// The segment that begins at `from`, or nullopt when the log holds nothing from there on.
absl::StatusOr<std::optional<Segment>> BuildSegment(const ChangeLog& log, absl::string_view log_id,
                                                    const SegmentStart& from, size_t budget);

}  // namespace walfeed

#endif  // WALFEED_SERVER_REPLICATION_SEGMENT_BUILDER_H_
