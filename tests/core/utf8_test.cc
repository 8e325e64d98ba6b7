// What may go into a proto3 string field, and how a name that may not travels.
#include "server/core/utf8.h"

#include "gtest/gtest.h"

namespace walfeed {
namespace {

TEST(Utf8, WellFormedSequencesOnly) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // cut short
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(Utf8, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(ToValidUtf8("ok"), "ok");
  EXPECT_EQ(ToValidUtf8("a\xff"
                        "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(ToValidUtf8("\xc3\x28"), "\xef\xbf\xbd(") << "one per invalid byte, the rest kept";
  EXPECT_EQ(ToValidUtf8("\xc3\xa9\xfe"), "\xc3\xa9\xef\xbf\xbd");
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8("\x80\x81\xf0\x9f\x98")));
}

TEST(Utf8, ANameGetsARawFormOnlyWhenItIsNotUtf8) {
  std::string text, raw;
  SetName("orders", &text, &raw);
  EXPECT_EQ(text, "orders");
  EXPECT_TRUE(raw.empty());
  SetName("t\xfe", &text, &raw);
  EXPECT_EQ(text, "t\xef\xbf\xbd");
  EXPECT_EQ(raw, "t\xfe");
}

}  // namespace
}  // namespace walfeed
