// RowFilter (server/feed/row_filter.h): the language, its errors with positions, typing by the
// column's value, SQL's three-valued logic, and the verdict per operation (an UPDATE leaving the
// condition is delivered marked).
#include "server/feed/row_filter.h"

#include "gtest/gtest.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

using Verdict = RowFilter::Verdict;

v1::Column Int(const std::string& name, int64_t value) {
  v1::Column column;
  column.set_name(name);
  column.set_int_(value);
  return column;
}
v1::Column Text(const std::string& name, const std::string& value) {
  v1::Column column;
  column.set_name(name);
  column.set_text(value);
  return column;
}
v1::Column Null(const std::string& name) {
  v1::Column column;
  column.set_name(name);
  column.set_null(true);
  return column;
}

// An order row: id, status, amount (numeric), region (nullable), paid (bool), placed_at.
v1::Change Order(v1::Change::Op op, int64_t id, const std::string& status,
                 const std::string& amount, const char* region = nullptr) {
  v1::Change change;
  change.set_op(op);
  *change.add_key() = Int("id", id);
  auto* image = op == v1::Change::DELETE ? change.mutable_key() : change.mutable_after();
  if (op != v1::Change::DELETE) *image->Add() = Int("id", id);
  if (op == v1::Change::DELETE) return change;
  *image->Add() = Text("status", status);
  v1::Column* numeric = image->Add();
  numeric->set_name("amount");
  numeric->set_numeric(amount);
  *image->Add() = region ? Text("region", region) : Null("region");
  v1::Column* paid = image->Add();
  paid->set_name("paid");
  paid->set_bool_(status == "shipped");
  v1::Column* placed = image->Add();
  placed->set_name("placed_at");
  placed->mutable_timestamp()->set_seconds(1767225600 + id * 3600);  // 2026-01-01 + id hours
  return change;
}

Verdict JudgeOrFail(const std::string& where, const v1::Change& change) {
  absl::StatusOr<RowFilter> filter = RowFilter::Parse(where);
  EXPECT_OK(filter);
  if (!filter.ok()) return Verdict::kSkip;
  absl::StatusOr<Verdict> verdict = filter->Judge(change);
  EXPECT_OK(verdict);
  return verdict.value_or(Verdict::kSkip);
}

TEST(RowFilter, ComparesByTheColumnsType) {
  const v1::Change big = Order(v1::Change::INSERT, 1, "shipped", "250.50", "eu");
  const v1::Change small = Order(v1::Change::INSERT, 2, "new", "9.99");
  EXPECT_EQ(JudgeOrFail("status = 'shipped' AND amount > 100", big), Verdict::kDeliver);
  EXPECT_EQ(JudgeOrFail("status = 'shipped' AND amount > 100", small), Verdict::kSkip);
  EXPECT_EQ(JudgeOrFail("amount >= 9.99 and amount < 10", small), Verdict::kDeliver);
  EXPECT_EQ(JudgeOrFail("amount > 1e2", big), Verdict::kDeliver) << "numeric, not text order";
  EXPECT_EQ(JudgeOrFail("id IN (1, 3, 5)", big), Verdict::kDeliver);
  EXPECT_EQ(JudgeOrFail("id NOT IN (1, 3, 5)", big), Verdict::kSkip);
  EXPECT_EQ(JudgeOrFail("paid = TRUE", big), Verdict::kDeliver);
  EXPECT_EQ(JudgeOrFail("placed_at > '2026-01-01 00:30:00+00'", big), Verdict::kDeliver);
  EXPECT_EQ(JudgeOrFail("placed_at < '2026-01-01T01:30:00Z'", small), Verdict::kSkip);
  EXPECT_EQ(JudgeOrFail("placed_at = '2026-01-01 03:00:00+01:00'", small), Verdict::kDeliver)
      << "2026-01-01 02:00 UTC, in another zone";
  EXPECT_EQ(JudgeOrFail("\"status\" <> 'new' OR (NOT id = 2)", small), Verdict::kSkip);
  EXPECT_EQ(JudgeOrFail("STATUS != 'x'", small), Verdict::kDeliver) << "bare names fold to lower";
  EXPECT_FALSE(RowFilter::Parse("\"STATUS\" != 'x'")->Judge(small).ok())
      << "quoted names are exact: there is no column STATUS";
}

TEST(RowFilter, NullsAreUnknownAsInSql) {
  const v1::Change no_region = Order(v1::Change::INSERT, 1, "new", "1");
  EXPECT_EQ(JudgeOrFail("region IS NULL", no_region), Verdict::kDeliver);
  EXPECT_EQ(JudgeOrFail("region IS NOT NULL", no_region), Verdict::kSkip);
  EXPECT_EQ(JudgeOrFail("region = 'eu'", no_region), Verdict::kSkip);
  EXPECT_EQ(JudgeOrFail("NOT region = 'eu'", no_region), Verdict::kSkip) << "NOT unknown";
  EXPECT_EQ(JudgeOrFail("region = 'eu' OR id = 1", no_region), Verdict::kDeliver);
  EXPECT_EQ(JudgeOrFail("region NOT IN ('eu')", no_region), Verdict::kSkip);
}

TEST(RowFilter, AnUpdateLeavingTheConditionIsDeliveredMarked) {
  v1::Change update = Order(v1::Change::UPDATE, 1, "cancelled", "250");
  EXPECT_EQ(JudgeOrFail("status = 'shipped'", update), Verdict::kLeft)
      << "without the old row, it may have matched";
  // With the old row (REPLICA IDENTITY FULL): it left only if it was in.
  const v1::Change old_shipped = Order(v1::Change::INSERT, 1, "shipped", "250");
  *update.mutable_before() = old_shipped.after();
  EXPECT_EQ(JudgeOrFail("status = 'shipped'", update), Verdict::kLeft);
  const v1::Change old_new = Order(v1::Change::INSERT, 1, "new", "250");
  *update.mutable_before() = old_new.after();
  EXPECT_EQ(JudgeOrFail("status = 'shipped'", update), Verdict::kSkip) << "never in the view";
  // Moving in is an ordinary delivery.
  EXPECT_EQ(JudgeOrFail("status = 'cancelled'", update), Verdict::kDeliver);
  // A value it does not carry (unchanged TOAST): cannot tell, delivered as it is.
  v1::Change toast = Order(v1::Change::UPDATE, 1, "new", "1");
  toast.mutable_after(1)->set_unchanged_toast(true);
  EXPECT_EQ(JudgeOrFail("status = 'shipped'", toast), Verdict::kDeliver);
}

TEST(RowFilter, DeletesAndOtherOperations) {
  const v1::Change del = Order(v1::Change::DELETE, 7, "", "");
  EXPECT_EQ(JudgeOrFail("id = 7", del), Verdict::kDeliver);
  EXPECT_EQ(JudgeOrFail("id = 8", del), Verdict::kSkip);
  EXPECT_EQ(JudgeOrFail("status = 'shipped'", del), Verdict::kDeliver) << "the key cannot tell";
  v1::Change truncate;
  truncate.set_op(v1::Change::TRUNCATE);
  EXPECT_EQ(JudgeOrFail("id = 1", truncate), Verdict::kDeliver);
  v1::Change message;
  message.set_op(v1::Change::MESSAGE);
  EXPECT_EQ(JudgeOrFail("id = 1", message), Verdict::kDeliver);
}

TEST(RowFilter, AColumnTheRowDoesNotHaveIsAnError) {
  absl::StatusOr<RowFilter> filter = RowFilter::Parse("id = 1 AND staus = 'x'");
  ASSERT_OK(filter);
  v1::Change insert = Order(v1::Change::INSERT, 1, "a", "1");
  insert.set_schema("public");
  insert.set_table("orders");
  absl::StatusOr<Verdict> verdict = filter->Judge(insert);
  ASSERT_FALSE(verdict.ok());
  EXPECT_NE(verdict.status().message().find("'staus' is not a column of public.orders"),
            absl::string_view::npos)
      << verdict.status();
  EXPECT_NE(verdict.status().message().find("(at character 12)"), absl::string_view::npos);
}

TEST(RowFilter, MistakesNameTheirPosition) {
  const struct {
    const char* where;
    const char* says;
  } cases[] = {
      {"", "empty (at character 1)"},
      {"status = ", "a value is missing at the end (at character 10)"},
      {"status = 'open", "a string is not closed (at character 10)"},
      {"status == 'x'", "(at character 9)"},
      {"amount > 100 AND", "a column name is missing at the end (at character 17)"},
      {"(id = 1", "')' for the '(' at 1 (at character 8)"},
      {"id IN 1", "IN needs a list in parentheses (at character 7)"},
      {"id IS 3", "IS must be followed by NULL or NOT NULL (at character 7)"},
      {"id = NULL", "IS NOT NULL (at character 6)"},
      {"id ; 1", "';' is not understood (at character 4)"},
      {"id = 1 id = 2", "'id' was not expected here (at character 8)"},
      {"\"\" = 1", "a quoted name is empty (at character 1)"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<RowFilter> filter = RowFilter::Parse(c.where);
    ASSERT_FALSE(filter.ok()) << c.where;
    EXPECT_EQ(filter.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(filter.status().message().find(c.says), absl::string_view::npos)
        << c.where << " -> " << filter.status().message();
  }
}

TEST(RowFilter, AComparisonTheTypeDoesNotAllowIsAnErrorNamingTheColumn) {
  absl::StatusOr<RowFilter> filter = RowFilter::Parse("amount > 'lots'");
  ASSERT_OK(filter);
  absl::StatusOr<Verdict> verdict = filter->Judge(Order(v1::Change::INSERT, 1, "a", "5"));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(verdict.status().message().find("column 'amount' holds numbers"),
            absl::string_view::npos)
      << verdict.status();
  EXPECT_NE(verdict.status().message().find("(at character 10)"), absl::string_view::npos);
}

}  // namespace
}  // namespace walfeed
