// ASSERT_OK(expr) / EXPECT_OK(expr): `expr` (an absl::Status, an absl::StatusOr, or a
// grpc::Status) must be OK; a failure prints the expression and the status it gave, which
// ASSERT_TRUE(expr.ok()) does not. The expression is evaluated once.
#ifndef WALFEED_TESTS_SUPPORT_STATUS_ASSERTIONS_H_
#define WALFEED_TESTS_SUPPORT_STATUS_ASSERTIONS_H_

#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace walfeed::test {

template <typename T, typename = void>
struct HasErrorMessage : std::false_type {};
template <typename T>
struct HasErrorMessage<T, std::void_t<decltype(std::declval<const T&>().error_message())>>
    : std::true_type {};

inline ::testing::AssertionResult IsOk(const char* text, const absl::Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text << " is not OK: " << status;
}

template <typename T>
::testing::AssertionResult IsOk(const char* text, const absl::StatusOr<T>& value) {
  return IsOk(text, value.status());
}

// grpc::Status and the like: anything with ok() and error_code() / error_message().
template <typename T>
::testing::AssertionResult IsOk(const char* text, const T& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  ::testing::AssertionResult failure = ::testing::AssertionFailure();
  failure << text << " is not OK";
  if constexpr (HasErrorMessage<T>::value) {
    failure << ": " << static_cast<int>(status.error_code()) << " " << status.error_message();
  }
  return failure;
}

}  // namespace walfeed::test

#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::walfeed::test::IsOk, expr)
#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::walfeed::test::IsOk, expr)

#endif  // WALFEED_TESTS_SUPPORT_STATUS_ASSERTIONS_H_
