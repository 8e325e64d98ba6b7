#include "server/replication/segment_builder.h"

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/core/change_wire_format.h"
#include "server/core/value_ref.h"

namespace walfeed {
namespace {

// Field numbers, from the generated code of the .proto (they never change).
constexpr uint32_t kSegmentLogId = v1::LogSegment::kLogIdFieldNumber;
constexpr uint32_t kSegmentChanges = v1::LogSegment::kChangesFieldNumber;
constexpr uint32_t kSegmentFirstCursor = v1::LogSegment::kFirstCursorFieldNumber;
constexpr uint32_t kSegmentLastCursor = v1::LogSegment::kLastCursorFieldNumber;
constexpr uint32_t kSegmentContinued = v1::LogSegment::kContinuedFieldNumber;
constexpr uint32_t kSegmentValues = v1::LogSegment::kValuesFieldNumber;
constexpr uint32_t kChunkRef = v1::LargeValueChunk::kRefFieldNumber;
constexpr uint32_t kChunkOffset = v1::LargeValueChunk::kOffsetFieldNumber;
constexpr uint32_t kChunkData = v1::LargeValueChunk::kDataFieldNumber;

// A field's tag and length prefix take at most this many bytes.
constexpr size_t kFieldOverhead = 16;
// Room kept in every segment for the cursors and the flag written at its end.
constexpr size_t kTrailerRoom = 128;
// At most this many changes are read ahead for one segment.
constexpr size_t kMaxRecordsRead = 100000;

struct Chunk {
  ValueRef ref;
  uint64_t offset = 0;
  std::string data;
};

// Fills one segment item by item, remembering where the last whole transaction ended.
class SegmentWriter {
 public:
  // `starts_inside`: the segment's first change is not the first of its transaction.
  SegmentWriter(absl::string_view log_id, size_t budget, bool starts_inside)
      : budget_(budget), open_transaction_(starts_inside) {
    WriteLengthDelimited(kSegmentLogId, log_id, &buffer_);
    empty_size_ = buffer_.size();
  }

  bool empty() const { return buffer_.size() == empty_size_; }
  // Whether an item of `bytes` fits (anything fits an empty segment).
  bool Fits(size_t bytes) const {
    return empty() || buffer_.size() + bytes + kTrailerRoom <= budget_;
  }

  void AddChunk(const Chunk& chunk) {
    std::string field;
    WriteLengthDelimited(kChunkRef, FormatValueRef(chunk.ref), &field);
    WriteVarintField(kChunkOffset, chunk.offset, &field);
    WriteLengthDelimited(kChunkData, chunk.data, &field);
    WriteLengthDelimited(kSegmentValues, field, &buffer_);
    ++segment_.chunks;
  }

  void AddChange(const Position& position, absl::string_view stored, bool last_in_transaction) {
    WriteLengthDelimited(kSegmentChanges, stored, &buffer_);
    if (!segment_.first.has_value()) segment_.first = position;
    segment_.last = position;
    ++segment_.changes;
    open_transaction_ = !last_in_transaction;
    if (last_in_transaction) {
      segment_.last_whole = position;
      boundary_ = Boundary{buffer_.size(), segment_};
    }
  }

  // Ends the segment before the item that starts at `next`: at the end of the last whole
  // transaction instead when the segment holds one and would otherwise end inside another.
  Segment Cut(const SegmentStart& next) {
    if (open_transaction_ || segment_.chunks > (boundary_ ? boundary_->segment.chunks : 0)) {
      if (boundary_.has_value()) {
        buffer_.resize(boundary_->size);
        segment_ = boundary_->segment;
        open_transaction_ = false;
        return Finish(SegmentStart::At(segment_.last->Successor()));
      }
    }
    return Finish(next);
  }

 private:
  Segment Finish(const SegmentStart& next) {
    if (segment_.first.has_value()) {
      WriteLengthDelimited(kSegmentFirstCursor, FormatCursor(*segment_.first), &buffer_);
      WriteLengthDelimited(kSegmentLastCursor, FormatCursor(*segment_.last), &buffer_);
    }
    WriteVarintField(kSegmentContinued, open_transaction_ ? 1 : 0, &buffer_);
    Segment done = std::move(segment_);
    done.bytes = std::move(buffer_);
    done.next = next;
    return done;
  }

  struct Boundary {
    size_t size;
    Segment segment;
  };
  const size_t budget_;
  std::string buffer_;
  size_t empty_size_ = 0;
  Segment segment_;
  bool open_transaction_ = false;
  std::optional<Boundary> boundary_;
};

}  // namespace

std::string FormatSegmentStart(const SegmentStart& start) {
  if (!start.chunk.has_value()) return FormatCursor(start.position);
  return absl::StrCat(FormatValueRef(*start.chunk), "+", start.chunk_offset);
}

absl::StatusOr<SegmentStart> ParseSegmentStart(absl::string_view text) {
  SegmentStart start;
  const size_t plus = text.find('+');
  if (plus == absl::string_view::npos) {
    absl::StatusOr<Position> position = ParseCursor(text);
    if (!position.ok()) return position.status();
    start.position = *position;
    return start;
  }
  absl::StatusOr<ValueRef> ref = ParseValueRef(text.substr(0, plus));
  if (!ref.ok() || !absl::SimpleAtoi(text.substr(plus + 1), &start.chunk_offset)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text,
        "' is not a segment start: expected a cursor, or a value ref, '+' and a byte offset"));
  }
  start.position = ref->position;
  start.chunk = *ref;
  return start;
}

absl::StatusOr<std::optional<Segment>> BuildSegment(const ChangeLog& log, absl::string_view log_id,
                                                    const SegmentStart& from, size_t budget) {
  std::vector<LogRecord> records;
  if (absl::Status read = log.Read(from.position, kMaxRecordsRead, budget, &records); !read.ok()) {
    return read;
  }
  if (records.empty()) return std::optional<Segment>();
  if (from.chunk.has_value() && records.front().position != from.position) {
    return absl::DataLossError(absl::StrCat("the change at ", FormatCursor(from.position),
                                            ", whose values are being replicated, is not in the "
                                            "log"));
  }
  // The value chunks of those changes (from `from`'s chunk on), as many as could fill the
  // segment: where that stops, the segment stops too.
  std::vector<Chunk> chunks;
  size_t chunk_bytes = 0;
  std::optional<SegmentStart> first_unread;
  absl::Status visited = log.VisitValueChunks(
      records.front().position, records.back().position,
      [&](const ValueRef& ref, uint64_t offset, absl::string_view data) {
        if (chunk_bytes > budget) {
          first_unread = SegmentStart{ref.position, ref, offset};
          return false;
        }
        chunks.push_back(Chunk{ref, offset, std::string(data)});
        chunk_bytes += data.size();
        return true;
      },
      from.chunk.has_value() ? std::optional<std::pair<ValueRef, uint64_t>>(
                                   std::make_pair(*from.chunk, from.chunk_offset))
                             : std::nullopt);
  if (!visited.ok()) return visited;

  SegmentWriter writer(log_id, budget, records.front().position.seq > 0);
  size_t next_chunk = 0;
  for (const LogRecord& record : records) {
    // Where this change starts once its chunks are sent: past the last one (the offset just
    // beyond its data seeks to whatever chunk comes next, none of this change's).
    SegmentStart after_chunks = SegmentStart::At(record.position);
    for (; next_chunk < chunks.size() && chunks[next_chunk].ref.position == record.position;
         ++next_chunk) {
      const Chunk& chunk = chunks[next_chunk];
      if (!writer.Fits(chunk.data.size() + kFieldOverhead * 2 + 64)) {
        return std::optional<Segment>(
            writer.Cut(SegmentStart{record.position, chunk.ref, chunk.offset}));
      }
      writer.AddChunk(chunk);
      after_chunks = SegmentStart{record.position, chunk.ref, chunk.offset + chunk.data.size()};
    }
    // The chunks read end here: the rest of this change's values, or the next change's, come in
    // a later segment.
    if (first_unread.has_value() && first_unread->position == record.position) {
      return std::optional<Segment>(writer.Cut(*first_unread));
    }
    if (first_unread.has_value() && first_unread->position < record.position) {
      return std::optional<Segment>(writer.Cut(SegmentStart::At(record.position)));
    }
    if (!writer.Fits(record.change.size() + kFieldOverhead)) {
      return std::optional<Segment>(writer.Cut(after_chunks));
    }
    ChangeSummary summary;
    if (!SummarizeChange(record.change, &summary)) {
      return absl::DataLossError(absl::StrCat("the change at ", FormatCursor(record.position),
                                              " in the log cannot be parsed"));
    }
    writer.AddChange(record.position, record.change, summary.last_in_transaction);
  }
  // At the head the last change ends its transaction; short of it (the read stopped at the
  // budget) the segment ends after its last whole transaction.
  return std::optional<Segment>(writer.Cut(SegmentStart::At(records.back().position.Successor())));
}

}  // namespace walfeed
