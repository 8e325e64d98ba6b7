// Row filters (SubscribeRequest.where) against a real walfeed and PostgreSQL, with PostgreSQL as
// the oracle: the feed of a condition, applied to an empty state (a row marked left_filter
// removed), equals SELECT ... WHERE that condition, for rows moving in, out and staying out,
// with and without REPLICA IDENTITY FULL; bad conditions are INVALID_ARGUMENT with a position.
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/postgres_environment.h"
#include "tests/support/buf_curl.h"
#include "tests/support/change_helpers.h"
#include "tests/support/status_assertions.h"

namespace walfeed::test {
namespace {

using ::testing::HasSubstr;

constexpr char kCondition[] = "status = 'shipped' AND amount > 100";

class RowFilters : public WalfeedTest {
 protected:
  // The feed of `where` up to a marker committed now, from the start.
  absl::StatusOr<std::vector<v1::Change>> Filtered(const std::string& where) {
    v1::SubscribeRequest request;
    request.set_where(where);
    request.add_tables("public.orders");
    Sql(MarkerSql(absl::StrCat("m", ++markers_)));
    // The marker has no table: read the unfiltered feed to it, then the filtered one to the head.
    EXPECT_OK(ReadUntilMarker(*walfeed_->NewStub(), {}, absl::StrCat("m", markers_)));
    request.set_stop_at_head(true);
    return ReadToHead(*walfeed_->NewStub(), request);
  }

  // Applies a filtered feed as a consumer keeping the condition's view: id -> amount.
  static std::map<int64_t, std::string> Apply(const std::vector<v1::Change>& changes) {
    std::map<int64_t, std::string> rows;
    for (const v1::Change& change : changes) {
      const v1::Column* id = FindColumn(change.key(), "id");
      if (id == nullptr) continue;
      if (change.op() == v1::Change::DELETE || change.left_filter()) {
        rows.erase(id->int_());
      } else {
        rows[id->int_()] = FindColumn(change.after(), "amount")->numeric();
      }
    }
    return rows;
  }

  std::map<int64_t, std::string> Expected() {
    std::map<int64_t, std::string> rows;
    for (const auto& row :
         Query(absl::StrCat("SELECT id, amount FROM orders WHERE ", kCondition))) {
      rows[std::stoll(row[0])] = row[1];
    }
    return rows;
  }

  // Random inserts, updates moving rows in and out, and deletes, one transaction each.
  void Churn(int seed, int statements) {
    std::mt19937 random(seed);
    const char* statuses[] = {"new", "shipped", "cancelled"};
    for (int i = 0; i < statements; ++i) {
      const int id = 1 + static_cast<int>(random() % 40);
      const char* status = statuses[random() % 3];
      const int amount = static_cast<int>(random() % 200);
      switch (random() % 4) {
        case 0:
        case 1:
          Sql(absl::StrCat("INSERT INTO orders VALUES (", id, ", '", status, "', ", amount,
                           ") ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, amount = "
                           "EXCLUDED.amount"));
          break;
        case 2:
          Sql(absl::StrCat("UPDATE orders SET status = '", status, "' WHERE id = ", id));
          break;
        default:
          Sql(absl::StrCat("DELETE FROM orders WHERE id = ", id));
      }
    }
  }

  int markers_ = 0;
};

TEST_F(RowFilters, TheFilteredFeedRebuildsWhatSelectWhereSays) {
  Sql("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2))");
  Sql("INSERT INTO orders SELECT g, CASE WHEN g % 2 = 0 THEN 'shipped' ELSE 'new' END, g * 10 "
      "FROM generate_series(1, 20) g");
  StartWalfeed();
  Churn(7, 150);
  absl::StatusOr<std::vector<v1::Change>> changes = Filtered(kCondition);
  ASSERT_OK(changes);
  EXPECT_EQ(Apply(*changes), Expected());
  int left = 0;
  for (const v1::Change& change : *changes) left += change.left_filter();
  EXPECT_GT(left, 0) << "updates moved rows out of the condition";

  // With the old rows (REPLICA IDENTITY FULL), an update of a row that never matched is not
  // sent at all, and the view is still exact.
  Sql("ALTER TABLE orders REPLICA IDENTITY FULL");
  const size_t before = changes->size();
  Sql("UPDATE orders SET amount = amount + 1 WHERE status = 'new'");
  changes = Filtered(kCondition);
  ASSERT_OK(changes);
  EXPECT_EQ(changes->size(), before) << "the rows that stayed out were not sent";
  Churn(11, 100);
  changes = Filtered(kCondition);
  ASSERT_OK(changes);
  EXPECT_EQ(Apply(*changes), Expected());
}

TEST_F(RowFilters, BadConditionsAreInvalidArgumentWithTheirPosition) {
  Sql("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2))");
  Sql("INSERT INTO orders VALUES (1, 'new', 5)");
  StartWalfeed();
  absl::StatusOr<std::vector<v1::Change>> bad = Filtered("status = 'shipped' AND");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("(at character 23)"));
  bad = Filtered("stauts = 'shipped'");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("'stauts' is not a column of public.orders"));
  bad = Filtered("amount > 'lots'");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("column 'amount' holds numbers"));
}

TEST_F(RowFilters, WalfeedctlPrintsOnlyTheMatchingRows) {
  Sql("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2))");
  Sql("INSERT INTO orders VALUES (1, 'shipped', 500), (2, 'new', 700)");
  StartWalfeed();
  const RunResult run =
      RunCommand({WalfeedctlBinary(), "subscribe", "--server", walfeed_->address(),
                  "--stop-at-head", "--where", kCondition, "--format", "text"},
                 absl::Seconds(60));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("amount=500.00"));
  EXPECT_THAT(run.output, ::testing::Not(HasSubstr("700")));
  const RunResult bad = RunCommand({WalfeedctlBinary(), "subscribe", "--server",
                                    walfeed_->address(), "--stop-at-head", "--where", "amount >"},
                                   absl::Seconds(60));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("(at character 9)"));
}

TEST_F(RowFilters, BufCurlReadsAFilteredFeed) {
  Sql("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2))");
  Sql("INSERT INTO orders VALUES (1, 'shipped', 500), (2, 'new', 700), (3, 'shipped', 5)");
  StartWalfeed();
  const RunResult read =
      BufCurl(walfeed_->address(), "walfeed.v1.ChangeFeed/Subscribe",
              absl::StrCat(R"({"stopAtHead":true,"where":")", kCondition, "\"}"));
  ASSERT_EQ(read.exit_code, 0) << read.output;
  EXPECT_THAT(read.output, HasSubstr(R"("numeric": "500.00")"));
  EXPECT_THAT(read.output, ::testing::Not(HasSubstr("700.00")));
  EXPECT_THAT(read.output, ::testing::Not(HasSubstr(R"("numeric": "5.00")")));
}

}  // namespace
}  // namespace walfeed::test
