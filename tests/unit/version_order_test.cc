// Unit tests of the conflict rule's version order (core/version_order.h): a
// total order on (hlc, node), ties in hlc broken by node id bytewise. The
// merge built on it (the greater version wins) is tested through the shipped
// merge, core::Merge, in merge_test.cc.
#include "core/version_order.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace syncline::core;

int Sign(int v) { return (v > 0) - (v < 0); }

bool SameStamp(const Stamp& a, const Stamp& b) { return a.hlc == b.hlc && a.node == b.node; }

// Stamps drawn from small pools so that equal hlcs (ties) and equal stamps
// are frequent; nodes include ids that differ only in late bytes.
std::vector<Stamp> RandomStamps(std::mt19937_64& rng, std::size_t count) {
  static const char* const kNodes[] = {
      "00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000001",
      "0f000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff",
      "a0000000-0000-4000-8000-000000000000", "9fffffff-ffff-4fff-bfff-ffffffffffff",
  };
  std::vector<Stamp> stamps;
  for (std::size_t i = 0; i < count; ++i) {
    Hlc hlc = HlcFromPhysicalMs(1700000000000 + static_cast<std::int64_t>(rng() % 3)) | (rng() % 3);
    if (rng() % 10 == 0) hlc = (rng() % 2) ? kHlcMax : 0;
    stamps.push_back(Stamp{hlc, kNodes[rng() % 6]});
  }
  return stamps;
}

TEST(VersionOrder, HlcDecidesFirst) {
  const std::string low = "00000000-0000-4000-8000-000000000000";
  const std::string high = "ffffffff-ffff-4fff-bfff-ffffffffffff";
  EXPECT_LT(CompareStamps(5, high, 6, low), 0);
  EXPECT_GT(CompareStamps(6, low, 5, high), 0);
  EXPECT_LT(CompareStamps(0, high, kHlcMax, low), 0);
  // The full 64-bit width counts, not a truncated part.
  EXPECT_LT(CompareStamps(HlcFromPhysicalMs(1), high, HlcFromPhysicalMs(2), low), 0);
  EXPECT_LT(CompareStamps(Hlc{1} << 62, high, (Hlc{1} << 62) + 1, low), 0);
}

TEST(VersionOrder, TiesBrokenByNodeIdBytewise) {
  EXPECT_LT(CompareStamps(7, "00000000-0000-4000-8000-000000000000", 7, "00000000-0000-4000-8000-000000000001"), 0);
  EXPECT_GT(CompareStamps(7, "b0000000-0000-4000-8000-000000000000", 7, "a0000000-0000-4000-8000-000000000000"), 0);
  // Digits sort before letters in ASCII: '9' < 'a'.
  EXPECT_LT(CompareStamps(7, "9fffffff-ffff-4fff-bfff-ffffffffffff", 7, "a0000000-0000-4000-8000-000000000000"), 0);
  EXPECT_EQ(CompareStamps(7, "a0000000-0000-4000-8000-000000000000", 7, "a0000000-0000-4000-8000-000000000000"), 0);
  // Bytes compare as unsigned, like memcmp on every engine.
  EXPECT_GT(CompareStamps(7, "\x80", 7, "a"), 0);
  EXPECT_LT(CompareStamps(7, "a", 7, "\xff"), 0);
  // A proper prefix sorts first.
  EXPECT_LT(CompareStamps(7, "a", 7, "ab"), 0);
}

TEST(VersionOrder, StampOverloadAgreesWithRawOverload) {
  std::mt19937_64 rng(11);
  std::vector<Stamp> stamps = RandomStamps(rng, 200);
  for (const Stamp& a : stamps) {
    for (const Stamp& b : stamps) {
      ASSERT_EQ(CompareStamps(a, b), CompareStamps(a.hlc, a.node, b.hlc, b.node));
    }
  }
}

TEST(VersionOrder, TotalAndAntisymmetric) {
  std::mt19937_64 rng(12);
  std::vector<Stamp> stamps = RandomStamps(rng, 300);
  for (const Stamp& a : stamps) {
    for (const Stamp& b : stamps) {
      int ab = CompareStamps(a, b);
      ASSERT_TRUE(ab == -1 || ab == 0 || ab == 1) << ab;
      ASSERT_EQ(Sign(ab), -Sign(CompareStamps(b, a)));
      // Equal exactly when the same stamp: the order is total on stamps.
      ASSERT_EQ(ab == 0, SameStamp(a, b));
      // And it is lexicographic on (hlc, node).
      ASSERT_EQ(ab < 0, a.hlc < b.hlc || (a.hlc == b.hlc && a.node < b.node));
    }
  }
}

TEST(VersionOrder, Transitive) {
  std::mt19937_64 rng(13);
  std::vector<Stamp> stamps = RandomStamps(rng, 60);
  for (const Stamp& a : stamps) {
    for (const Stamp& b : stamps) {
      for (const Stamp& c : stamps) {
        int ab = CompareStamps(a, b), bc = CompareStamps(b, c), ac = CompareStamps(a, c);
        if (ab <= 0 && bc <= 0) {
          ASSERT_LE(ac, 0);
        }
        if (ab < 0 && bc <= 0) {
          ASSERT_LT(ac, 0);
        }
        if (ab == 0 && bc == 0) {
          ASSERT_EQ(ac, 0);
        }
      }
    }
  }
}

TEST(VersionOrder, SortingIsConsistent) {
  // std::sort with an inconsistent comparator gives non-sorted output (or UB);
  // a sorted result checked pairwise is another view of a strict weak order.
  std::mt19937_64 rng(14);
  std::vector<Stamp> stamps = RandomStamps(rng, 2000);
  std::sort(stamps.begin(), stamps.end(), [](const Stamp& a, const Stamp& b) { return CompareStamps(a, b) < 0; });
  for (std::size_t i = 1; i < stamps.size(); ++i)
    ASSERT_LE(CompareStamps(stamps[i - 1], stamps[i]), 0) << i;
}

}  // namespace
