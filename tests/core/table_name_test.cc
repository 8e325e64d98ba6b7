#include "server/core/table_name.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;

TEST(TableName, ParsesBareQuotedAndPublicDefault) {
  EXPECT_EQ(*ParseTableName("filter", "orders"), (TableName{"public", "orders"}));
  EXPECT_EQ(*ParseTableName("filter", "app.Orders"), (TableName{"app", "Orders"}));
  EXPECT_EQ(*ParseTableName("filter", "\"x.y\".z"), (TableName{"x.y", "z"}));
  EXPECT_EQ(*ParseTableName("filter", "public.\"a.b\""), (TableName{"public", "a.b"}));
  EXPECT_EQ(*ParseTableName("filter", "\"public.a\".b"), (TableName{"public.a", "b"}));
  EXPECT_EQ(*ParseTableName("filter", "\"UPPER\""), (TableName{"public", "UPPER"}));
  EXPECT_EQ(*ParseTableName("filter", "\"say \"\"hi\"\"\".\"new\nline\""),
            (TableName{"say \"hi\"", "new\nline"}));
}

TEST(TableName, RejectsAmbiguousOrBrokenNamesWithTheWayOut) {
  for (const char* bad : {"public.a.b", "", ".", "a.", ".b", "\"open", "a\"b\".c", "\"a\"x.b"}) {
    absl::StatusOr<TableName> name = ParseTableName("table filter entry", bad);
    ASSERT_FALSE(name.ok()) << bad;
    EXPECT_EQ(name.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(name.status().message(), HasSubstr("double-quoting"));
  }
}

TEST(TableName, FormatRoundTripsAndNeverConfusesTwoPairs) {
  const std::vector<TableName> names = {
      {"public", "orders"}, {"public", "a.b"},    {"public.a", "b"}, {"x", "Y"},
      {"s", "q\"uote"},     {"s p", "new\nline"}, {"ünï", "cödé"},   {"1st", "t"},
      {"public", "*"},      {"public", "a\"\".b"}};
  std::set<std::string> formatted;
  for (const TableName& name : names) {
    const std::string text = FormatTableName(name);
    absl::StatusOr<TableName> back = ParseTableName("name", text);
    ASSERT_TRUE(back.ok()) << text << ": " << back.status();
    EXPECT_EQ(*back, name) << text;
    EXPECT_TRUE(formatted.insert(text).second) << text;
    EXPECT_EQ(text.find('\n') == std::string::npos, name.table.find('\n') == std::string::npos);
  }
  EXPECT_EQ(FormatTableName({"public", "orders"}), "public.orders");
  EXPECT_EQ(FormatTableName({"x.y", "z"}), "\"x.y\".z");
  EXPECT_NE(TableKey("public.a", "b"), TableKey("public", "a.b"));
}

TEST(TableName, LogEscapingKeepsALineOneLine) {
  EXPECT_EQ(EscapeForLog("a\nevent=forged \"x\""), "a\\nevent=forged \\\"x\\\"");
}

}  // namespace
}  // namespace walfeed
