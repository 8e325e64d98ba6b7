#include "server/source/table_filter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;

TEST(GlobMatch, StarAndQuestionMark) {
  EXPECT_TRUE(GlobMatch("public.*", "public.orders"));
  EXPECT_TRUE(GlobMatch("*.audit_*", "shop.audit_2024"));
  EXPECT_TRUE(GlobMatch("public.t?", "public.t1"));
  EXPECT_FALSE(GlobMatch("public.t?", "public.t12"));
  EXPECT_FALSE(GlobMatch("public.*", "shop.orders"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY"));
}

TEST(TableFilter, IncludeThenExclude) {
  absl::StatusOr<TableFilter> filter =
      TableFilter::Create({"public.*", "shop.orders"}, {"public.secret*"}, {});
  ASSERT_OK(filter);
  EXPECT_TRUE(filter->IncludesTable("public", "users"));
  EXPECT_TRUE(filter->IncludesTable("shop", "orders"));
  EXPECT_FALSE(filter->IncludesTable("shop", "items"));
  EXPECT_FALSE(filter->IncludesTable("public", "secrets"));
}

TEST(TableFilter, BareNamesMeanPublicAndNoIncludeMeansEverything) {
  absl::StatusOr<TableFilter> filter = TableFilter::Create({}, {"logs"}, {"users.ssn"});
  ASSERT_OK(filter);
  EXPECT_TRUE(filter->IncludesTable("shop", "anything"));
  EXPECT_FALSE(filter->IncludesTable("public", "logs"));
  EXPECT_TRUE(filter->ExcludesColumn("public", "users", "ssn"));
  EXPECT_FALSE(filter->ExcludesColumn("public", "users", "name"));
  EXPECT_FALSE(filter->ExcludesColumn("shop", "users", "ssn"));
}

TEST(TableFilter, MalformedEntriesAreRejectedByName) {
  EXPECT_THAT(TableFilter::Create({"a.b.c"}, {}, {}).status().message(), HasSubstr("'a.b.c'"));
  EXPECT_THAT(TableFilter::Create({}, {".x"}, {}).status().message(),
              HasSubstr("--exclude-tables"));
  EXPECT_THAT(TableFilter::Create({}, {}, {"ssn"}).status().message(), HasSubstr("'ssn'"));
  EXPECT_THAT(TableFilter::Create({}, {}, {"public.*.ssn"}).status().message(),
              HasSubstr("without wildcards"));
}

TEST(TableFilter, QuotedPartsHoldDotsAndCaseAndNeverShiftTheSchema) {
  absl::StatusOr<TableFilter> filter =
      TableFilter::Create({"\"x.y\".z", "\"UPPER\"", "public.\"a.b\""}, {}, {});
  ASSERT_OK(filter);
  EXPECT_TRUE(filter->IncludesTable("x.y", "z"));
  EXPECT_FALSE(filter->IncludesTable("x", "y.z"));
  EXPECT_TRUE(filter->IncludesTable("public", "UPPER"));
  EXPECT_FALSE(filter->IncludesTable("public", "upper"));
  EXPECT_TRUE(filter->IncludesTable("public", "a.b"));
  EXPECT_FALSE(filter->IncludesTable("public.a", "b"));
}

TEST(TableFilter, WildcardsMatchWithinOnePartAndAreLiteralWhenQuoted) {
  absl::StatusOr<TableFilter> filter = TableFilter::Create({"*.orders", "public.\"t*\""}, {}, {});
  ASSERT_OK(filter);
  EXPECT_TRUE(filter->IncludesTable("a.b", "orders"));
  EXPECT_FALSE(filter->IncludesTable("a", "b.orders"));
  EXPECT_TRUE(filter->IncludesTable("public", "t*"));
  EXPECT_FALSE(filter->IncludesTable("public", "t1"));
}

TEST(TableFilter, ExcludedColumnWithADotInItsNameCanBeNamed) {
  absl::StatusOr<TableFilter> filter = TableFilter::Create({}, {}, {"public.t.\"a.b\""});
  ASSERT_OK(filter);
  EXPECT_TRUE(filter->ExcludesColumn("public", "t", "a.b"));
  EXPECT_FALSE(filter->ExcludesColumn("public", "t.a", "b"));
  ASSERT_EQ(filter->ExcludedColumns().size(), 1u);
  EXPECT_EQ(filter->ExcludedColumns()[0], (std::vector<std::string>{"public", "t", "a.b"}));
}

}  // namespace
}  // namespace walfeed
