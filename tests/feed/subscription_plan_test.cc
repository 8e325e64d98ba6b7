#include "server/feed/subscription_plan.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/error_reason.h"
#include "tests/support/status_assertions.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;

// Sorted, in FormatTableName's form, as the source lists them.
const std::vector<std::string> kTables = {"\"public.a\".b", "public.\"a.b\"", "public.a",
                                          "public.b", "shop.orders"};

absl::StatusOr<SubscriptionPlan> Plan(const v1::SubscribeRequest& request,
                                      Position head = {500, 2}) {
  return PlanSubscription(request, FeedBounds{head, {}, 0, "log-a"}, kTables, PlanLimits{});
}

TEST(SubscriptionPlan, DefaultStartsAtTheOldestChange) {
  absl::StatusOr<SubscriptionPlan> plan = Plan(v1::SubscribeRequest());
  ASSERT_OK(plan);
  EXPECT_EQ(plan->start, (Position{0, 0}));
  EXPECT_FALSE(plan->stop_at.has_value());
  EXPECT_EQ(plan->max_batch_changes, PlanLimits{}.default_batch_changes);
}

TEST(SubscriptionPlan, FromLsnIsInclusiveCursorExclusiveHeadAfterTheHead) {
  v1::SubscribeRequest request;
  request.set_from_lsn(300);
  EXPECT_EQ(Plan(request)->start, (Position{300, 0}));
  request.Clear();
  request.set_cursor("0/12C:4");
  EXPECT_EQ(Plan(request)->start, (Position{0x12C, 5}));
  request.Clear();
  request.set_from_head(true);
  EXPECT_EQ(Plan(request)->start, (Position{500, 3}));
}

TEST(SubscriptionPlan, StartAtOrBeforeThePurgePointIsOutOfRangeExceptFromZero) {
  const Position purged{0x200, 1};
  auto plan = [&](const v1::SubscribeRequest& request) {
    return PlanSubscription(request, FeedBounds{{0x500, 0}, purged, 0, "log-a"}, kTables,
                            PlanLimits{});
  };
  v1::SubscribeRequest request;
  ASSERT_TRUE(plan(request).ok()) << "from_lsn=0 is always valid";
  EXPECT_FALSE(plan(request)->holds_state);

  request.set_cursor("0/200:0");
  absl::StatusOr<SubscriptionPlan> rejected = plan(request);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(rejected.status().message(), HasSubstr("from_lsn=0"));
  EXPECT_EQ(ReasonOf(rejected.status()), reason::kCursorPurged);

  request.set_cursor("0/200:1");  // has read the purged change itself: nothing missed
  ASSERT_OK(plan(request));
  EXPECT_TRUE(plan(request)->holds_state);

  request.Clear();
  request.set_from_lsn(0x200);
  EXPECT_EQ(plan(request).status().code(), absl::StatusCode::kOutOfRange);
  request.set_from_lsn(0x201);
  EXPECT_OK(plan(request));
}

TEST(SubscriptionPlan, StartBeyondTheEndOfTheWalIsOutOfRange) {
  auto plan = [](const v1::SubscribeRequest& request, uint64_t wal_end) {
    return PlanSubscription(request, FeedBounds{{0x500, 0}, {}, wal_end, "log-a"}, kTables,
                            PlanLimits{});
  };
  v1::SubscribeRequest request;
  request.set_from_lsn(0x9000);
  absl::StatusOr<SubscriptionPlan> beyond = plan(request, 0x800);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(beyond.status().message(), HasSubstr("beyond the end of PostgreSQL's WAL (0/800)"));
  EXPECT_EQ(ReasonOf(beyond.status()), reason::kStartBeyondWal);
  EXPECT_TRUE(plan(request, 0x9000).ok()) << "up to the WAL end is fine";
  EXPECT_TRUE(plan(request, 0).ok()) << "WAL end not known yet: no check";
  request.Clear();
  request.set_cursor("5/0:0");
  EXPECT_EQ(plan(request, 0x800).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(SubscriptionPlan, StopAtHeadStopsAtTheHeadWhenTheCallBegan) {
  v1::SubscribeRequest request;
  request.set_stop_at_head(true);
  EXPECT_EQ(*Plan(request)->stop_at, (Position{500, 2}));
}

TEST(SubscriptionPlan, ConflictingStartFieldsAreInvalid) {
  v1::SubscribeRequest request;
  request.set_from_lsn(5);
  request.set_cursor("0/5:0");
  EXPECT_EQ(Plan(request).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Plan(request).status().message(), HasSubstr("at most one of"));
  request.clear_cursor();
  request.set_from_head(true);
  EXPECT_EQ(Plan(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SubscriptionPlan, MalformedAndOverlongCursorsAreInvalid) {
  v1::SubscribeRequest request;
  request.set_cursor("0/1G:3");
  EXPECT_THAT(Plan(request).status().message(), HasSubstr("'0/1G:3' is malformed"));
  request.set_cursor(std::string(100000, '9'));
  EXPECT_EQ(Plan(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SubscriptionPlan, TableFilterAcceptsQualifiedAndBareNames) {
  v1::SubscribeRequest request;
  request.add_tables("a");
  request.add_tables("shop.orders");
  absl::StatusOr<SubscriptionPlan> plan = Plan(request);
  ASSERT_OK(plan);
  v1::Change change;
  change.set_schema("public");
  change.set_table("a");
  EXPECT_TRUE(plan->Accepts(change));
  change.set_table("b");
  EXPECT_FALSE(plan->Accepts(change));
  change.set_schema("shop");
  change.set_table("orders");
  EXPECT_TRUE(plan->Accepts(change));
}

TEST(SubscriptionPlan, DottedNamesAreUnambiguousAndUnquotedThreePartNamesRejected) {
  v1::SubscribeRequest request;
  request.add_tables("public.a.b");
  absl::Status status = Plan(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("double-quoting"));

  request.Clear();
  request.add_tables("public.\"a.b\"");
  absl::StatusOr<SubscriptionPlan> plan = Plan(request);
  ASSERT_OK(plan);
  EXPECT_TRUE(plan->Accepts(v1::Change::INSERT, "public", "a.b"));
  EXPECT_FALSE(plan->Accepts(v1::Change::INSERT, "public.a", "b"));

  request.Clear();
  request.add_tables("\"public.a\".b");
  plan = Plan(request);
  ASSERT_OK(plan);
  EXPECT_TRUE(plan->Accepts(v1::Change::INSERT, "public.a", "b"));
  EXPECT_FALSE(plan->Accepts(v1::Change::INSERT, "public", "a.b"));
}

TEST(SubscriptionPlan, TheLastPossibleCursorIsOutOfRangeNotAWrapToTheStart) {
  v1::SubscribeRequest request;
  request.set_cursor("FFFFFFFF/FFFFFFFF:4294967295");
  absl::StatusOr<SubscriptionPlan> plan = Plan(request);
  ASSERT_FALSE(plan.ok()) << "started at " << FormatCursor(plan->start);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kOutOfRange);
}

TEST(SubscriptionPlan, ACursorOfAnotherLogIsRefusedWithBothIds) {
  v1::SubscribeRequest request;
  request.set_cursor("0/100:0");
  request.set_log_id("log-a");
  EXPECT_TRUE(Plan(request).ok()) << "this log's id";
  request.clear_log_id();
  EXPECT_TRUE(Plan(request).ok()) << "no id: a consumer from before log ids";

  request.set_log_id("log-b");
  absl::StatusOr<SubscriptionPlan> plan = Plan(request);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(plan.status()), reason::kLogMismatch);
  EXPECT_THAT(plan.status().message(), HasSubstr("from_lsn=0"));
  const std::map<std::string, std::string> details = DetailsOf(plan.status());
  EXPECT_EQ(details.at("requested_log_id"), "log-b");
  EXPECT_EQ(details.at("log_id"), "log-a");

  // Whatever the start: a from_lsn of another log names other changes just the same.
  request.clear_cursor();
  request.set_from_lsn(0x100);
  EXPECT_EQ(ReasonOf(Plan(request).status()), reason::kLogMismatch);
  // Bytes that are not text come back as text.
  request.set_log_id("\xff\xfe");
  EXPECT_EQ(DetailsOf(Plan(request).status()).at("requested_log_id"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(SubscriptionPlan, UnknownTableIsNotFoundAndListsThePublishedOnes) {
  v1::SubscribeRequest request;
  request.add_tables("public.nope");
  absl::Status status = Plan(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("'public.nope'"));
  EXPECT_THAT(status.message(), HasSubstr("public.\"a.b\", public.a, public.b, shop.orders"));
}

TEST(SubscriptionPlan, AReplicaKnowsNoPublicationAndTakesAnyWellFormedTable) {
  v1::SubscribeRequest request;
  request.add_tables("public.nope");
  PlanLimits replica;
  replica.tables_known = false;
  absl::StatusOr<SubscriptionPlan> plan =
      PlanSubscription(request, FeedBounds{{500, 2}, {}, 0, "log-a"}, {}, replica);
  ASSERT_OK(plan);
  v1::Change change;
  change.set_schema("public");
  change.set_table("nope");
  EXPECT_TRUE(plan->Accepts(change));
  change.set_table("other");
  EXPECT_FALSE(plan->Accepts(change));
  request.set_tables(0, "");
  EXPECT_EQ(
      PlanSubscription(request, FeedBounds{{500, 2}, {}, 0, "log-a"}, {}, replica).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(SubscriptionPlan, OperationFilter) {
  v1::SubscribeRequest request;
  request.add_ops(v1::Change::DELETE);
  absl::StatusOr<SubscriptionPlan> plan = Plan(request);
  v1::Change change;
  change.set_op(v1::Change::DELETE);
  EXPECT_TRUE(plan->Accepts(change));
  change.set_op(v1::Change::INSERT);
  EXPECT_FALSE(plan->Accepts(change));
  request.add_ops(static_cast<v1::Change::Op>(42));
  EXPECT_THAT(Plan(request).status().message(), HasSubstr("42 is not an operation"));
}

TEST(SubscriptionPlan, HugeFilterListsAndBatchSizesAreBounded) {
  v1::SubscribeRequest request;
  for (int i = 0; i < 10001; ++i) request.add_tables("a");
  EXPECT_EQ(Plan(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.Clear();
  request.set_max_batch_changes(4000000000u);
  EXPECT_EQ(Plan(request)->max_batch_changes, PlanLimits{}.max_batch_changes);
}

}  // namespace
}  // namespace walfeed
