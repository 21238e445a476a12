// Hybrid logical clock (docs/protocol.md, "Stamps").
//
// A stamp is 64 bits: milliseconds since the Unix epoch in the high 48 bits and
// a logical counter in the low 16. Because the counter sits in the low bits,
// "one more than the last stamp" carries into the physical part on overflow,
// so the counter can never wrap while the clock runs ahead of the wall clock.
// Stamps stay below 2^63 so that every engine can store them as a signed
// 64-bit integer. The text form is 16 lower-case hex digits: fixed width, so
// bytewise order equals numeric order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace syncline::core {

using Hlc = std::uint64_t;

inline constexpr int kHlcLogicalBits = 16;
inline constexpr Hlc kHlcMax = (Hlc{1} << 63) - 1;
inline constexpr std::int64_t kDefaultMaxDriftMs = 5 * 60 * 1000;

inline std::int64_t HlcPhysicalMs(Hlc hlc) { return static_cast<std::int64_t>(hlc >> kHlcLogicalBits); }
inline Hlc HlcFromPhysicalMs(std::int64_t ms) { return static_cast<Hlc>(ms) << kHlcLogicalBits; }

std::string HlcToText(Hlc hlc);
// Accepts exactly 16 hex digits (either case) below 2^63.
std::optional<Hlc> HlcFromText(std::string_view text);

// The stamp for a local write: greater than the node's last stamp and than the
// stamp of the version it replaces, and at least the wall clock.
Hlc HlcNext(Hlc last, Hlc floor, std::int64_t wall_ms);

// True when a stamp's physical time is at most max_drift_ms ahead of wall_ms.
inline bool HlcWithinDrift(Hlc hlc, std::int64_t wall_ms, std::int64_t max_drift_ms) {
  return HlcPhysicalMs(hlc) <= wall_ms + max_drift_ms;
}

std::int64_t WallClockMs();

}  // namespace syncline::core
