// The segment codec: what goes in comes out, compression only when it pays, and a message that
// cannot be a segment is refused with a sentence.
#include "server/replication/segment_codec.h"

#include <zstd.h>

#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;

std::string RepetitiveSegment() {
  std::string segment;
  for (int i = 0; i < 2000; ++i) {
    absl::StrAppend(&segment, "cursor 0/16B3748:", i, " public.orders id bigint status text ");
  }
  return segment;
}

TEST(SegmentCodec, ZstdRoundTripsAndShrinksRepetitiveSegments) {
  const std::string segment = RepetitiveSegment();
  const EncodedSegment encoded = EncodeSegment(segment, SegmentCompression::kZstd);
  EXPECT_EQ(encoded.compression, kZstd);
  EXPECT_LT(encoded.Data(segment).size() * 5, segment.size());
  std::string scratch;
  absl::StatusOr<absl::string_view> decoded =
      DecodeSegment(encoded.Data(segment), encoded.compression, &scratch);
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, segment);
}

TEST(SegmentCodec, NoneAndIncompressibleSegmentsTravelAsTheyAre) {
  std::mt19937_64 random(7);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(random());
  for (const std::string& segment : {noise, std::string()}) {
    const EncodedSegment encoded = EncodeSegment(segment, SegmentCompression::kZstd);
    EXPECT_EQ(encoded.compression, "");
    // Sent as it is: the data is the caller's segment, not a copy.
    EXPECT_EQ(encoded.Data(segment).data(), segment.data());
  }
  const std::string repetitive = RepetitiveSegment();
  const EncodedSegment plain = EncodeSegment(repetitive, SegmentCompression::kNone);
  EXPECT_EQ(plain.compression, "");
  EXPECT_EQ(plain.Data(repetitive).data(), repetitive.data());
  std::string scratch;
  absl::StatusOr<absl::string_view> decoded = DecodeSegment(repetitive, "", &scratch);
  ASSERT_OK(decoded);
  EXPECT_EQ(decoded->data(), repetitive.data());
}

TEST(SegmentCodec, RefusesWhatCannotBeASegment) {
  const std::string segment = RepetitiveSegment();
  const EncodedSegment encoded = EncodeSegment(segment, SegmentCompression::kZstd);
  std::string scratch;
  EXPECT_THAT(DecodeSegment(encoded.frame, "gzip", &scratch).status().message(),
              HasSubstr("'gzip', an encoding this walfeed does not know"));
  EXPECT_THAT(DecodeSegment("not a frame", kZstd, &scratch).status().message(),
              HasSubstr("not a zstd frame"));
  std::string damaged = encoded.frame;
  damaged.resize(damaged.size() / 2);
  EXPECT_THAT(DecodeSegment(damaged, kZstd, &scratch).status().message(), HasSubstr("damaged"));

  // A small frame that claims more than any segment holds is refused before anything is
  // allocated for it.
  const std::string huge(kMaxSegmentBytes + 1, 'x');
  std::string bomb(ZSTD_compressBound(huge.size()), '\0');
  bomb.resize(ZSTD_compress(bomb.data(), bomb.size(), huge.data(), huge.size(), 1));
  EXPECT_THAT(DecodeSegment(bomb, kZstd, &scratch).status().message(),
              HasSubstr("more than a segment holds"));
}

}  // namespace
}  // namespace walfeed
