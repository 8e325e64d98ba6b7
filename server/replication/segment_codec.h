// Segment codec: how a serialized walfeed.v1.LogSegment travels as a stream message's data.
//
// A message's data is the segment itself, or, when its Walfeed-Compression header says "zstd",
// one zstd frame that holds it (RFC 8878; every language has a decoder). Changes repeat their
// column names, types and cursors, so a segment shrinks several times over: the NATS servers store
// and replicate that much less, which is most of what replication costs them.
//
// EncodeSegment() promises DecodeSegment() gives back the same bytes, and compresses only when
// that makes the message smaller (the header is then absent). DecodeSegment() refuses, with a
// sentence, an encoding it does not know, a damaged frame, and a frame that would expand past
// kMaxSegmentBytes (a segment is never larger than the servers' max_payload, at most 64 MB).
#ifndef WALFEED_SERVER_REPLICATION_SEGMENT_CODEC_H_
#define WALFEED_SERVER_REPLICATION_SEGMENT_CODEC_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace walfeed {

// The header that names a message's encoding, and its one value.
inline constexpr char kCompressionHeader[] = "Walfeed-Compression";
inline constexpr char kZstd[] = "zstd";
// NATS's largest max_payload: no segment is larger.
inline constexpr size_t kMaxSegmentBytes = 64 << 20;

enum class SegmentCompression {
  kNone,
  kZstd,
};

// A message's header and, when compressed, its data.
struct EncodedSegment {
  // The Walfeed-Compression header's value; empty: no header, the data is the segment itself.
  std::string compression;
  // The zstd frame, when `compression` is set.
  std::string frame;

  // The message's data: the frame, or `segment` (the one encoded) as it is, without a copy.
  absl::string_view Data(absl::string_view segment) const {
    return compression.empty() ? segment : absl::string_view(frame);
  }
};

EncodedSegment EncodeSegment(absl::string_view segment, SegmentCompression compression);

// The serialized segment a message's data holds, given its Walfeed-Compression header ("" when
// the message has none): `data` itself when it is not compressed (no copy), or the frame's
// content decompressed into `*scratch`. The view lives as long as both `data` and `*scratch`.
absl::StatusOr<absl::string_view> DecodeSegment(absl::string_view data,
                                                absl::string_view compression,
                                                std::string* scratch);

}  // namespace walfeed

#endif  // WALFEED_SERVER_REPLICATION_SEGMENT_CODEC_H_
