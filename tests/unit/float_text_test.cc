// The portable float text (snprintf/strtod, for builds without
// floating-point to_chars) must match std::to_chars / from_chars exactly:
// a REAL key written by a WebAssembly build and by a native one is one key.
#include "core/float_text.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

namespace syncline::core {
namespace {

std::string Std(double value) {
  char buf[kDoubleTextSize];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, value).ptr);
}

std::string Portable(double value) {
  char buf[kDoubleTextSize];
  return std::string(buf, portable::FormatDouble(value, buf));
}

double FromBits(std::uint64_t bits) {
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

TEST(FloatText, KnownValuesInToCharsForm) {
  EXPECT_EQ(Portable(0.0), "0");
  EXPECT_EQ(Portable(-0.0), "-0");
  EXPECT_EQ(Portable(1.0), "1");
  EXPECT_EQ(Portable(0.1), "0.1");
  EXPECT_EQ(Portable(-2.5), "-2.5");
  EXPECT_EQ(Portable(1e300), "1e+300");
  EXPECT_EQ(Portable(1e-5), "1e-05");
  EXPECT_EQ(Portable(0.001), "0.001");
  EXPECT_EQ(Portable(0.0001), "1e-04");                                   // shorter than 0.0001
  EXPECT_EQ(Portable(123456789012345680000.0), "123456789012345683968");  // exact digits, shorter
  EXPECT_EQ(Portable(1.5e+22), "1.5e+22");
  EXPECT_EQ(Portable(100.0), "100");
  EXPECT_EQ(Portable(1e16), "1e+16");
  EXPECT_EQ(Portable(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
  EXPECT_EQ(Portable(std::numeric_limits<double>::min()), "2.2250738585072014e-308");
  EXPECT_EQ(Portable(std::numeric_limits<double>::denorm_min()), "5e-324");
}

// Every kind of double: random bit patterns (mostly 16-17 digits), short
// decimals (what apps store), integers, powers of two (where the rounding
// interval is lopsided) and their neighbours, and subnormals.
TEST(FloatText, PortableFormatMatchesToChars) {
  std::mt19937_64 random(20261203);
  int checked = 0;
  auto check = [&](double value) {
    if (!std::isfinite(value)) return;
    std::uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    ASSERT_EQ(Portable(value), Std(value)) << "bits " << std::hex << bits;
    ++checked;
  };
  for (int i = 0; i < 200000; ++i)
    check(FromBits(random()));
  for (int i = 0; i < 100000; ++i) {
    const double digits = static_cast<double>(random() % 1000000);
    check(digits / std::pow(10.0, static_cast<int>(random() % 12)));
    check(-digits * std::pow(10.0, static_cast<int>(random() % 30)));
  }
  for (int exponent = -1074; exponent <= 1023; ++exponent) {
    const double power = std::ldexp(1.0, exponent);
    check(power);
    check(std::nextafter(power, 0.0));
    check(std::nextafter(power, std::numeric_limits<double>::infinity()));
  }
  for (int i = 0; i < 20000; ++i)
    check(FromBits(random() % (std::uint64_t{1} << 52)));  // subnormal
  EXPECT_GT(checked, 400000);
}

TEST(FloatText, PortableParseMatchesFromChars) {
  const char* texts[] = {"0",
                         "-0",
                         "1",
                         "0.1",
                         "-2.5",
                         "1e300",
                         "1E5",
                         "5.",
                         ".5",
                         "-.5",
                         "00.1",
                         "1.e5",
                         "1e-400",
                         "1e400",
                         "+1",
                         " 1",
                         "1e",
                         "1e+",
                         "-",
                         ".",
                         "inf",
                         "nan",
                         "0x10",
                         "1_0",
                         "1e5x",
                         "4.9e-324",
                         "2.4e-324",
                         "2.5e-324",
                         "1e-320",
                         "",
                         "-e5",
                         "0e999",
                         "1.7976931348623158e308",
                         "1.7976931348623159e308",
                         "123456789012345678901234567890"};
  for (const char* text : texts) {
    double want = 0, got = 0;
    auto [end, error] = std::from_chars(text, text + std::strlen(text), want);
    const bool want_ok = error == std::errc() && end == text + std::strlen(text) && std::isfinite(want);
    const bool got_ok = portable::ParseDouble(text, &got);
    EXPECT_EQ(got_ok, want_ok) << text;
    if (want_ok && got_ok) {
      EXPECT_EQ(std::memcmp(&got, &want, sizeof got), 0) << text;
    }
  }
  std::mt19937_64 random(7);
  for (int i = 0; i < 100000; ++i) {
    const double value = FromBits(random());
    if (!std::isfinite(value)) continue;
    const std::string text = Std(value);
    double got = 0;
    ASSERT_TRUE(portable::ParseDouble(text, &got)) << text;
    ASSERT_EQ(std::memcmp(&got, &value, sizeof got), 0) << text;
  }
}

TEST(FloatText, TheBuildsFunctionsRoundTrip) {
  char buf[kDoubleTextSize];
  for (double value : {0.1, -1e-300, 3.0, 6.02214076e23}) {
    std::string text(buf, FormatDouble(value, buf));
    double back = 0;
    ASSERT_TRUE(ParseDouble(text, &back)) << text;
    EXPECT_EQ(back, value) << text;
  }
  double ignored;
  EXPECT_FALSE(ParseDouble("1e400", &ignored));
  EXPECT_FALSE(ParseDouble("NaN", &ignored));
}

}  // namespace
}  // namespace syncline::core
