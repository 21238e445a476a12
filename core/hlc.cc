#include "core/hlc.h"

#include <algorithm>
#include <chrono>

namespace syncline::core {

std::string HlcToText(Hlc hlc) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(16, '0');
  for (int i = 15; i >= 0; --i) {
    text[i] = kDigits[hlc & 0xf];
    hlc >>= 4;
  }
  return text;
}

std::optional<Hlc> HlcFromText(std::string_view text) {
  if (text.size() != 16) return std::nullopt;
  Hlc value = 0;
  for (char c : text) {
    int digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else
      return std::nullopt;
    value = (value << 4) | static_cast<Hlc>(digit);
  }
  if (value > kHlcMax) return std::nullopt;
  return value;
}

Hlc HlcNext(Hlc last, Hlc floor, std::int64_t wall_ms) {
  Hlc after = std::max(last, floor);
  // At kHlcMax the clock cannot advance; saturate rather than wrap. Remote
  // stamps that far ahead are refused by the drift bound long before.
  Hlc next = after < kHlcMax ? after + 1 : kHlcMax;
  // A wall clock past the stamp range (year 6429) saturates too.
  std::int64_t wall = std::min<std::int64_t>(std::max<std::int64_t>(wall_ms, 0), HlcPhysicalMs(kHlcMax));
  return std::max(next, HlcFromPhysicalMs(wall));
}

std::int64_t WallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace syncline::core
