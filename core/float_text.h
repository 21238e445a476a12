// Doubles as text, the same in every build (docs/types.md, "Reals"). A REAL
// key travels as JSON text, so two builds that wrote one double two ways
// would make two rows of it.
//
// FormatDouble writes the shortest decimal that reads back as the same
// double (the closest to it when several have that length), in the shorter
// of the fixed and the scientific form, fixed on a tie: std::to_chars'
// plain form ("0.1", "1e+300", "1.2345678901234568e+20"). ParseDouble reads
// [-]digits[.digits][(e|E)[+|-]digits] (".5" and "5." too), correctly
// rounded, and refuses anything else and anything out of range.
//
// Builds whose C++ library has floating-point to_chars / from_chars use
// them; the others (emscripten's libc++) use the `portable` versions, built
// on the C library's correctly rounded printf("%.*e") and strtod, which the
// unit tests hold to the same output as the first on every build that has
// both.
#pragma once

#include <cstddef>
#include <string_view>

namespace syncline::core {

// Room FormatDouble needs: "-2.2250738585072014e-308" is 24 characters.
inline constexpr std::size_t kDoubleTextSize = 32;

// A finite value into buf (kDoubleTextSize bytes); returns the end.
char* FormatDouble(double value, char* buf);
// False for text outside the grammar above, and for values that overflow.
bool ParseDouble(std::string_view text, double* out);

namespace portable {
char* FormatDouble(double value, char* buf);
bool ParseDouble(std::string_view text, double* out);
}  // namespace portable

}  // namespace syncline::core
