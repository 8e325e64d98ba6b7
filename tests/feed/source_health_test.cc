#include "server/feed/source_health.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace walfeed {
namespace {

using ::testing::HasSubstr;

TEST(SourceHealth, AFailureIsAProblemOnlyOnceItOutlastsTheGracePeriod) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  SourceStatus status;
  EXPECT_EQ(SourceProblem(status, absl::Seconds(60), now), "") << "streaming";

  status.failing_since = now - absl::Seconds(59);
  status.last_error = "replication slot \"s\" does not exist";
  EXPECT_EQ(SourceProblem(status, absl::Seconds(60), now), "") << "within the grace period";

  status.failing_since = now - absl::Milliseconds(150'700);
  const std::string problem = SourceProblem(status, absl::Seconds(60), now);
  EXPECT_THAT(problem, HasSubstr("no progress for 2m30s"));
  EXPECT_THAT(problem, HasSubstr("replication slot \"s\" does not exist"));

  status.last_error.clear();
  EXPECT_THAT(SourceProblem(status, absl::Seconds(60), now), HasSubstr("no error recorded"));
}

}  // namespace
}  // namespace walfeed
