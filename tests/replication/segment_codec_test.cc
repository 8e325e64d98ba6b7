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
  EXPECT_LT(encoded.data.size() * 5, segment.size());
  absl::StatusOr<std::string> decoded = DecodeSegment(encoded.data, encoded.compression);
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
    EXPECT_EQ(encoded.data, segment);
  }
  const EncodedSegment plain = EncodeSegment(RepetitiveSegment(), SegmentCompression::kNone);
  EXPECT_EQ(plain.compression, "");
  EXPECT_EQ(plain.data, RepetitiveSegment());
  absl::StatusOr<std::string> decoded = DecodeSegment(plain.data, "");
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, RepetitiveSegment());
}

TEST(SegmentCodec, RefusesWhatCannotBeASegment) {
  const EncodedSegment encoded = EncodeSegment(RepetitiveSegment(), SegmentCompression::kZstd);
  EXPECT_THAT(DecodeSegment(encoded.data, "gzip").status().message(),
              HasSubstr("'gzip', an encoding this walfeed does not know"));
  EXPECT_THAT(DecodeSegment("not a frame", kZstd).status().message(),
              HasSubstr("not a zstd frame"));
  std::string damaged = encoded.data;
  damaged.resize(damaged.size() / 2);
  EXPECT_THAT(DecodeSegment(damaged, kZstd).status().message(), HasSubstr("damaged"));

  // A small frame that claims more than any segment holds is refused before anything is
  // allocated for it.
  const std::string huge(kMaxSegmentBytes + 1, 'x');
  std::string bomb(ZSTD_compressBound(huge.size()), '\0');
  bomb.resize(ZSTD_compress(bomb.data(), bomb.size(), huge.data(), huge.size(), 1));
  EXPECT_THAT(DecodeSegment(bomb, kZstd).status().message(),
              HasSubstr("more than a segment holds"));
}

}  // namespace
}  // namespace walfeed
