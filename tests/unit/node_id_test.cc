// Unit tests of node ids (core/node_id.h): fresh ids are canonical random
// UUIDs, and CanonicalNodeId lower-cases valid text and refuses the rest.
#include "core/node_id.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace {

using namespace syncline::core;

bool IsHexLower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// 8-4-4-4-12 lower-case hex, version nibble 4, variant 10xx.
bool IsCanonicalV4(const std::string& id) {
  if (id.size() != 36) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-') return false;
    } else if (!IsHexLower(id[i])) {
      return false;
    }
  }
  return id[14] == '4' && (id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
}

TEST(NodeId, NewIsCanonicalVersion4) {
  for (int i = 0; i < 200; ++i) {
    std::string id = NewNodeId();
    ASSERT_TRUE(IsCanonicalV4(id)) << id;
    ASSERT_EQ(CanonicalNodeId(id), std::optional<std::string>(id));
  }
}

TEST(NodeId, NewIsUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i)
    seen.insert(NewNodeId());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(NodeId, NewUsesEveryRandomNibble) {
  // Each of the 30 random hex positions takes many values over 1000 draws; a
  // stuck byte (e.g. a fill loop that skips a word) would show up here.
  std::set<char> values[36];
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewNodeId();
    for (std::size_t k = 0; k < id.size(); ++k)
      values[k].insert(id[k]);
  }
  for (std::size_t k = 0; k < 36; ++k) {
    if (k == 8 || k == 13 || k == 18 || k == 23) {
      EXPECT_EQ(values[k], std::set<char>{'-'}) << k;
    } else if (k == 14) {
      EXPECT_EQ(values[k], std::set<char>{'4'});
    } else if (k == 19) {
      EXPECT_EQ(values[k], (std::set<char>{'8', '9', 'a', 'b'}));
    } else {
      EXPECT_EQ(values[k].size(), 16u) << "position " << k;
    }
  }
}

TEST(NodeId, CanonicalLowerCases) {
  EXPECT_EQ(CanonicalNodeId("0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0FF"),
            std::optional<std::string>("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff"));
  EXPECT_EQ(CanonicalNodeId("AbCdEf01-2345-4789-aBcD-Ef0123456789"),
            std::optional<std::string>("abcdef01-2345-4789-abcd-ef0123456789"));
  EXPECT_EQ(CanonicalNodeId("abcdef01-2345-4789-abcd-ef0123456789"),
            std::optional<std::string>("abcdef01-2345-4789-abcd-ef0123456789"));
}

TEST(NodeId, CanonicalRejectsMalformed) {
  const std::string good = "abcdef01-2345-4789-abcd-ef0123456789";
  ASSERT_TRUE(CanonicalNodeId(good));
  EXPECT_FALSE(CanonicalNodeId(""));
  EXPECT_FALSE(CanonicalNodeId(good.substr(0, 35)));
  EXPECT_FALSE(CanonicalNodeId(good + "0"));
  EXPECT_FALSE(CanonicalNodeId(good + " "));
  EXPECT_FALSE(CanonicalNodeId(" " + good));
  EXPECT_FALSE(CanonicalNodeId("{" + good + "}"));
  EXPECT_FALSE(CanonicalNodeId("urn:uuid:" + good));
  EXPECT_FALSE(CanonicalNodeId("abcdef0123454789abcdef0123456789"));      // no dashes
  EXPECT_FALSE(CanonicalNodeId("abcdef012-345-4789-abcd-ef0123456789"));  // dash moved
  EXPECT_FALSE(CanonicalNodeId("abcdef01-2345-4789-abcd-ef012345678g"));
  EXPECT_FALSE(CanonicalNodeId("abcdef01-2345-4789-abcd-ef012345678G"));
  EXPECT_FALSE(CanonicalNodeId("abcdef01_2345_4789_abcd_ef0123456789"));
  EXPECT_FALSE(CanonicalNodeId("abcdef01-2345-4789-abcd-ef012345678-"));
  EXPECT_FALSE(CanonicalNodeId("------------------------------------"));
  EXPECT_FALSE(CanonicalNodeId(std::string("abcdef01-2345-4789-abcd-ef012345678\0", 36)));
  // Every single-character corruption of a valid id is refused.
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (char c : std::string("-gz :{}\x80\xff")) {
      if (c == good[i]) continue;
      std::string bad = good;
      bad[i] = c;
      EXPECT_FALSE(CanonicalNodeId(bad)) << bad;
    }
  }
}

}  // namespace
