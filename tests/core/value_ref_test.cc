// Value references: the text a client passes to ReadValue, parsed strictly.
#include "server/core/value_ref.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/error_reason.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

TEST(ValueRef, FormatsAndParsesBack) {
  const ValueRef ref{Position{0x16B3748, 3}, ValuePart::kAfter, 2};
  EXPECT_EQ(FormatValueRef(ref), "0/16B3748:3/after/2");
  absl::StatusOr<ValueRef> parsed = ParseValueRef("0/16B3748:3/after/2");
  ASSERT_OK(parsed);
  EXPECT_EQ(*parsed, ref);
  for (const char* text : {"1/0:0/key/0", "0/1:1/before/1599", "AB/CD:7/message/0"}) {
    absl::StatusOr<ValueRef> again = ParseValueRef(text);
    ASSERT_TRUE(again.ok()) << text;
    EXPECT_EQ(*ParseValueRef(FormatValueRef(*again)), *again) << text;
  }
}

TEST(ValueRef, RejectsAnythingElseWithAReason) {
  for (const char* text :
       {"", "0/16B3748:3", "0/16B3748:3/after", "0/16B3748:3/after/", "0/16B3748:3/middle/1",
        "0/16B3748:3/after/-1", "0/16B3748:3/after/01", "0/16B3748:3/after/65536",
        "0/16B3748:3/after/1/2", "0/16B3748:3/message/1", "x/y:3/after/1", "0/16B3748/after/1"}) {
    absl::StatusOr<ValueRef> parsed = ParseValueRef(text);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(ReasonOf(parsed.status()), reason::kRefMalformed) << text;
    EXPECT_THAT(parsed.status().message(), ::testing::HasSubstr("LargeValue.ref")) << text;
  }
}

}  // namespace
}  // namespace walfeed
