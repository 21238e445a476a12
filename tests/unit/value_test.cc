// Unit tests of the value model (core/value.h): SameValue is exact equality of
// representation, which is what "the same write" means.
#include "core/value.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace {

using namespace syncline::core;
using namespace std::string_literals;

TEST(SameValueTest, IntegerAndRealDiffer) {
  EXPECT_FALSE(SameValue(Value::Integer(1), Value::Real(1.0)));
  EXPECT_FALSE(SameValue(Value::Real(1.0), Value::Integer(1)));
  EXPECT_FALSE(SameValue(Value::Integer(0), Value::Real(0.0)));
  EXPECT_TRUE(SameValue(Value::Integer(1), Value::Integer(1)));
  EXPECT_FALSE(SameValue(Value::Integer(1), Value::Integer(2)));
  EXPECT_TRUE(SameValue(Value::Integer(INT64_MIN), Value::Integer(INT64_MIN)));
  EXPECT_TRUE(SameValue(Value::Real(1.0), Value::Real(1.0)));
  EXPECT_FALSE(SameValue(Value::Real(1.0), Value::Real(std::nextafter(1.0, 2.0))));
}

TEST(SameValueTest, NanEqualsNan) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(SameValue(Value::Real(nan), Value::Real(nan)));
  EXPECT_TRUE(SameValue(Value::Real(nan), Value::Real(-nan)));
  // Any NaN payload is "NaN": the wire format has only one.
  std::uint64_t bits = 0x7ff0000000000001ULL;
  double other_nan;
  std::memcpy(&other_nan, &bits, sizeof other_nan);
  ASSERT_TRUE(std::isnan(other_nan));
  EXPECT_TRUE(SameValue(Value::Real(nan), Value::Real(other_nan)));
  EXPECT_FALSE(SameValue(Value::Real(nan), Value::Real(0.0)));
  EXPECT_FALSE(SameValue(Value::Real(0.0), Value::Real(nan)));
  EXPECT_FALSE(SameValue(Value::Real(nan), Value::Real(std::numeric_limits<double>::infinity())));
  EXPECT_FALSE(SameValue(Value::Real(nan), Value::Null()));
}

TEST(SameValueTest, SignedZerosDiffer) {
  EXPECT_FALSE(SameValue(Value::Real(0.0), Value::Real(-0.0)));
  EXPECT_FALSE(SameValue(Value::Real(-0.0), Value::Real(0.0)));
  EXPECT_TRUE(SameValue(Value::Real(-0.0), Value::Real(-0.0)));
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(SameValue(Value::Real(inf), Value::Real(inf)));
  EXPECT_FALSE(SameValue(Value::Real(inf), Value::Real(-inf)));
}

TEST(SameValueTest, TextBlobAndNull) {
  EXPECT_TRUE(SameValue(Value::Null(), Value::Null()));
  EXPECT_FALSE(SameValue(Value::Null(), Value::Integer(0)));
  EXPECT_FALSE(SameValue(Value::Null(), Value::Text("")));
  EXPECT_FALSE(SameValue(Value::Text("a"), Value::Blob("a")));
  EXPECT_FALSE(SameValue(Value::Text(""), Value::Blob("")));
  EXPECT_TRUE(SameValue(Value::Text("a\0b"s), Value::Text("a\0b"s)));
  EXPECT_FALSE(SameValue(Value::Text("a\0b"s), Value::Text("a\0c"s)));  // bytes after a NUL count
  EXPECT_FALSE(SameValue(Value::Text("a"), Value::Text("a\0"s)));
  EXPECT_FALSE(SameValue(Value::Text("a"), Value::Text("A")));
  EXPECT_TRUE(SameValue(Value::Blob("\xff\x00"s), Value::Blob("\xff\x00"s)));
  EXPECT_FALSE(SameValue(Value::Blob("\xff\x00"s), Value::Blob("\xff\x01"s)));
  EXPECT_FALSE(SameValue(Value::Text("1"), Value::Integer(1)));
}

TEST(SameValueTest, IsAnEquivalence) {
  const std::vector<Value> values = {
      Value::Null(),         Value::Integer(0),  Value::Integer(1),  Value::Real(0.0),
      Value::Real(-0.0),     Value::Real(1.0),   Value::Real(NAN),   Value::Real(-NAN),
      Value::Real(INFINITY), Value::Text(""),    Value::Text("1"),   Value::Blob(""),
      Value::Blob("1"),      Value::Text("\0"s), Value::Blob("\0"s), Value::Real(-INFINITY),
  };
  for (const Value& a : values) {
    EXPECT_TRUE(SameValue(a, a)) << TypeName(a.type);
    for (const Value& b : values) {
      EXPECT_EQ(SameValue(a, b), SameValue(b, a));
      for (const Value& c : values) {
        if (SameValue(a, b) && SameValue(b, c)) {
          EXPECT_TRUE(SameValue(a, c));
        }
      }
    }
  }
}

TEST(SameValueTest, TypeNames) {
  EXPECT_STREQ(TypeName(Value::Type::kNull), "null");
  EXPECT_STREQ(TypeName(Value::Type::kInteger), "integer");
  EXPECT_STREQ(TypeName(Value::Type::kReal), "real");
  EXPECT_STREQ(TypeName(Value::Type::kText), "text");
  EXPECT_STREQ(TypeName(Value::Type::kBlob), "blob");
}

}  // namespace
