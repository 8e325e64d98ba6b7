#include "server/source/value_converter.h"

#include <cmath>

#include "gtest/gtest.h"

namespace walfeed {
namespace {

using Kind = pgoutput::TupleColumn::Kind;

v1::Column Convert(uint32_t oid, const std::string& text, Kind kind = Kind::kText) {
  pgoutput::TupleColumn value;
  value.kind = kind;
  value.data = text;
  v1::Column column;
  SetColumnValue(oid, value, &column);
  return column;
}

TEST(ValueConverter, IntegersAreExactToTheLastDigit) {
  EXPECT_EQ(Convert(pg_oid::kInt8, "9223372036854775807").int_(), INT64_MAX);
  EXPECT_EQ(Convert(pg_oid::kInt8, "-9223372036854775808").int_(), INT64_MIN);
  EXPECT_EQ(Convert(pg_oid::kInt2, "-32768").int_(), -32768);
  EXPECT_EQ(Convert(pg_oid::kInt4, "2147483647").int_(), 2147483647);
}

TEST(ValueConverter, NullEmptyAndUnchangedToastAreThreeDifferentThings) {
  const v1::Column null = Convert(pg_oid::kText, "", Kind::kNull);
  const v1::Column empty = Convert(pg_oid::kText, "");
  const v1::Column toast = Convert(pg_oid::kText, "", Kind::kUnchangedToast);
  EXPECT_EQ(null.value_case(), v1::Column::kNull);
  EXPECT_EQ(empty.value_case(), v1::Column::kText);
  EXPECT_EQ(empty.text(), "");
  EXPECT_EQ(toast.value_case(), v1::Column::kUnchangedToast);
}

TEST(ValueConverter, NumericKeepsEveryDigitAndSpecialValues) {
  const std::string digits = "123456789012345678901234567890.000000000000000000001";
  EXPECT_EQ(Convert(pg_oid::kNumeric, digits).numeric(), digits);
  EXPECT_EQ(Convert(pg_oid::kNumeric, "NaN").numeric(), "NaN");
  EXPECT_EQ(Convert(pg_oid::kNumeric, "-Infinity").numeric(), "-Infinity");
}

TEST(ValueConverter, FloatsIncludingNaNAndInfinity) {
  EXPECT_EQ(Convert(pg_oid::kFloat8, "1.5").float_(), 1.5);
  EXPECT_EQ(Convert(pg_oid::kFloat8, "0.1").float_(), 0.1);
  EXPECT_TRUE(std::isnan(Convert(pg_oid::kFloat8, "NaN").float_()));
  EXPECT_EQ(Convert(pg_oid::kFloat4, "Infinity").float_(), INFINITY);
  EXPECT_EQ(Convert(pg_oid::kFloat4, "-Infinity").float_(), -INFINITY);
  EXPECT_EQ(Convert(pg_oid::kFloat8, "1.7976931348623157e+308").float_(), 1.7976931348623157e308);
}

TEST(ValueConverter, BoolByteaJsonUuid) {
  EXPECT_TRUE(Convert(pg_oid::kBool, "t").bool_());
  EXPECT_FALSE(Convert(pg_oid::kBool, "f").bool_());
  EXPECT_EQ(Convert(pg_oid::kBytea, "\\xdeadBEEF00").bytes(),
            std::string("\xde\xad\xbe\xef\x00", 5));
  EXPECT_EQ(Convert(pg_oid::kBytea, "\\x").value_case(), v1::Column::kBytes);
  EXPECT_EQ(Convert(pg_oid::kJsonb, "{\"a\": [1, 2]}").json(), "{\"a\": [1, 2]}");
  EXPECT_EQ(Convert(pg_oid::kUuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").uuid(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
}

TEST(ValueConverter, TimestampsKeepMicroseconds) {
  const v1::Column tz = Convert(pg_oid::kTimestamptz, "2024-02-29 23:59:59.123456+00");
  ASSERT_EQ(tz.value_case(), v1::Column::kTimestamp);
  EXPECT_EQ(tz.timestamp().seconds(), 1709251199);
  EXPECT_EQ(tz.timestamp().nanos(), 123456000);
  const v1::Column offset = Convert(pg_oid::kTimestamptz, "2024-03-01 05:29:59.5+05:30");
  EXPECT_EQ(offset.timestamp().seconds(), 1709251199);
  EXPECT_EQ(offset.timestamp().nanos(), 500000000);
  const v1::Column plain = Convert(pg_oid::kTimestamp, "1970-01-01 00:00:00");
  EXPECT_EQ(plain.timestamp().seconds(), 0);
  const v1::Column early = Convert(pg_oid::kTimestamp, "0001-01-01 00:00:00");
  EXPECT_EQ(early.timestamp().seconds(), -62135596800);
}

TEST(ValueConverter, ValuesATypedFieldCannotHoldTravelAsText) {
  EXPECT_EQ(Convert(pg_oid::kTimestamptz, "infinity").text(), "infinity");
  EXPECT_EQ(Convert(pg_oid::kTimestamptz, "-infinity").text(), "-infinity");
  EXPECT_EQ(Convert(pg_oid::kTimestamp, "4713-01-01 00:00:00 BC").text(), "4713-01-01 00:00:00 BC");
  EXPECT_EQ(Convert(pg_oid::kTimestamp, "10000-01-01 00:00:00").text(), "10000-01-01 00:00:00");
  EXPECT_EQ(Convert(pg_oid::kDate, "infinity").text(), "infinity");
  EXPECT_EQ(Convert(pg_oid::kDate, "2024-01-31").date(), "2024-01-31");
  EXPECT_EQ(Convert(pg_oid::kInt8, "not a number").text(), "not a number");
}

TEST(ValueConverter, UnmappedTypesTravelAsTheirTextForm) {
  constexpr uint32_t kInet = 869;
  EXPECT_EQ(Convert(kInet, "192.168.0.1/24").text(), "192.168.0.1/24");
  EXPECT_EQ(Convert(pg_oid::kVarchar, "h\xc3\xa9llo \xf0\x9f\x98\x80").text(),
            "h\xc3\xa9llo \xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace walfeed
