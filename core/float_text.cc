#include "core/float_text.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

// libstdc++ has had floating-point to_chars since GCC 11; emscripten's
// libc++ (3.1.6) declares neither it nor from_chars for doubles.
#if defined(__GLIBCXX__) && __cpp_lib_to_chars >= 201611L
#define SYNCLINE_STD_FLOAT_CHARCONV 1
#endif

namespace syncline::core {

namespace portable {

namespace {

// A decimal: digits d1 d2 ... dn (no trailing zeros beyond the first) times
// 10^(exponent - n + 1), i.e. d1.d2...dn e exponent.
struct Decimal {
  std::string digits;
  int exponent = 0;
};

// The closest decimal of n significant digits, correctly rounded by the C
// library ("%.*e": "d.ddde+XX").
Decimal Rounded(double magnitude, int n) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*e", n - 1, magnitude);
  Decimal decimal;
  const char* p = text;
  for (; *p != 'e'; ++p)
    if (*p != '.') decimal.digits.push_back(*p);
  decimal.exponent = std::atoi(p + 1);
  return decimal;
}

double Read(const Decimal& decimal) {
  std::string text =
      decimal.digits.substr(0, 1) + "." + decimal.digits.substr(1) + "e" + std::to_string(decimal.exponent);
  return std::strtod(text.c_str(), nullptr);
}

// The n-digit decimal one unit away from `decimal` (up or down), keeping n
// digits: 9.99 up is 1.00e+1, 1.00 down is 9.99e-1.
Decimal Step(Decimal decimal, bool up) {
  std::string& d = decimal.digits;
  int i = static_cast<int>(d.size()) - 1;
  if (up) {
    for (; i >= 0 && d[i] == '9'; --i)
      d[i] = '0';
    if (i >= 0) {
      ++d[i];
    } else {
      d.insert(d.begin(), '1');
      d.pop_back();
      ++decimal.exponent;
    }
  } else {
    for (; i >= 0 && d[i] == '0'; --i)
      d[i] = '9';
    --d[i];  // d[0] is never '0'
    if (d[0] == '0') {
      d.erase(d.begin());
      d.push_back('9');
      --decimal.exponent;
    }
  }
  return decimal;
}

// The n-digit decimal that reads back as `magnitude` and is closest to it,
// if there is one. The correctly rounded one is the closest; when it does
// not read back, its neighbour on the other side of the value still may,
// but only where the value's rounding interval is lopsided: at a power of
// two, the gap to the next double below is half the gap above.
bool ShortestOfLength(double magnitude, int n, Decimal* out) {
  Decimal closest = Rounded(magnitude, n);
  double read = Read(closest);
  if (read == magnitude) {
    *out = closest;
    return true;
  }
  int exponent = 0;
  if (std::frexp(magnitude, &exponent) != 0.5) return false;
  Decimal other = Step(closest, read < magnitude);
  if (Read(other) != magnitude) return false;
  *out = other;
  return true;
}

// std::to_chars' plain form of ±digits × 10^exponent: fixed or scientific,
// whichever is shorter, fixed on a tie. An integer in fixed form has the
// value's exact digits, as printf("%.0f") writes them (2^72 is
// 4722366482869645213696, not 4722366482869645200000): same length.
char* Spell(bool negative, const Decimal& decimal, double magnitude, char* buf) {
  const std::string& d = decimal.digits;
  const int n = static_cast<int>(d.size());
  const int e = decimal.exponent;
  std::string fixed;
  if (e >= n - 1) {
    char exact[320];
    std::snprintf(exact, sizeof exact, "%.0f", magnitude);
    fixed = exact;
  } else if (e >= 0) {
    fixed = d.substr(0, e + 1) + "." + d.substr(e + 1);
  } else {
    fixed = "0." + std::string(-e - 1, '0') + d;
  }
  char exponent[16];
  std::snprintf(exponent, sizeof exponent, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
  std::string scientific = d.substr(0, 1) + (n > 1 ? "." + d.substr(1) : "") + exponent;
  const std::string& text = scientific.size() < fixed.size() ? scientific : fixed;
  char* p = buf;
  if (negative) *p++ = '-';
  std::memcpy(p, text.data(), text.size());
  return p + text.size();
}

}  // namespace

char* FormatDouble(double value, char* buf) {
  const bool negative = std::signbit(value);
  const double magnitude = std::fabs(value);
  if (magnitude == 0) return Spell(negative, Decimal{"0", 0}, 0.0, buf);
  // The shortest length that reads back: once some n-digit decimal does,
  // so does one of every greater length (append zeros), so search.
  int low = 1, high = 17;
  Decimal best = Rounded(magnitude, 17);
  while (low < high) {
    const int mid = (low + high) / 2;
    Decimal found;
    if (ShortestOfLength(magnitude, mid, &found)) {
      best = found;
      high = mid;
    } else {
      low = mid + 1;
    }
  }
  while (best.digits.size() > 1 && best.digits.back() == '0')
    best.digits.pop_back();
  return Spell(negative, best, magnitude, buf);
}

bool ParseDouble(std::string_view text, double* out) {
  std::size_t i = 0;
  if (i < text.size() && text[i] == '-') ++i;
  bool nonzero = false;
  std::size_t digits = 0;
  auto take_digits = [&] {
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits)
      nonzero = nonzero || text[i] != '0';
  };
  take_digits();
  if (i < text.size() && text[i] == '.') {
    ++i;
    take_digits();
  }
  if (digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    const std::size_t start = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    }
    if (i == start) return false;
  }
  if (i != text.size()) return false;
  const std::string copy(text);
  const double value = std::strtod(copy.c_str(), nullptr);
  // Out of range both ways, as from_chars: too large, or too small for any
  // double but zero.
  if (!std::isfinite(value) || (value == 0 && nonzero)) return false;
  *out = value;
  return true;
}

}  // namespace portable

#ifdef SYNCLINE_STD_FLOAT_CHARCONV

char* FormatDouble(double value, char* buf) { return std::to_chars(buf, buf + kDoubleTextSize, value).ptr; }

bool ParseDouble(std::string_view text, double* out) {
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return false;
  *out = value;
  return true;
}

#else

char* FormatDouble(double value, char* buf) { return portable::FormatDouble(value, buf); }
bool ParseDouble(std::string_view text, double* out) { return portable::ParseDouble(text, out); }

#endif

}  // namespace syncline::core
