#include "server/replication/segment_codec.h"

#include <zstd.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace walfeed {
namespace {

// zstd's fastest regular level: a segment compresses at several hundred MB/s, well ahead of
// ingest, and still shrinks changes' repeated names many times over.
constexpr int kZstdLevel = 1;

}  // namespace

EncodedSegment EncodeSegment(absl::string_view segment, SegmentCompression compression) {
  EncodedSegment encoded;
  if (compression == SegmentCompression::kNone || segment.empty()) return encoded;
  encoded.frame.resize(ZSTD_compressBound(segment.size()));
  const size_t written = ZSTD_compress(encoded.frame.data(), encoded.frame.size(), segment.data(),
                                       segment.size(), kZstdLevel);
  if (ZSTD_isError(written) || written >= segment.size()) {
    encoded.frame.clear();
    return encoded;
  }
  encoded.frame.resize(written);
  encoded.compression = kZstd;
  return encoded;
}

absl::StatusOr<absl::string_view> DecodeSegment(absl::string_view data,
                                                absl::string_view compression,
                                                std::string* scratch) {
  if (compression.empty()) return data;
  if (compression != kZstd) {
    return absl::InvalidArgumentError(
        absl::StrCat("the message's ", kCompressionHeader, " header says '", compression,
                     "', an encoding this walfeed does not know (it reads zstd)"));
  }
  const unsigned long long size = ZSTD_getFrameContentSize(data.data(), data.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    return absl::DataLossError("the message's data is not a zstd frame that states its size");
  }
  if (size > kMaxSegmentBytes) {
    return absl::DataLossError(absl::StrCat("the message's zstd frame would expand to ", size,
                                            " bytes, more than a segment holds (", kMaxSegmentBytes,
                                            ")"));
  }
  scratch->resize(static_cast<size_t>(size));
  const size_t read = ZSTD_decompress(scratch->data(), scratch->size(), data.data(), data.size());
  if (ZSTD_isError(read) || read != scratch->size()) {
    return absl::DataLossError(absl::StrCat("the message's zstd frame is damaged: ",
                                            ZSTD_isError(read) ? ZSTD_getErrorName(read)
                                                               : "it holds fewer bytes than "
                                                                 "it says"));
  }
  return absl::string_view(*scratch);
}

}  // namespace walfeed
