// The conflict rule (docs/protocol.md, "Versions and the conflict rule"):
// versions of one row are ordered by (hlc, origin node id), node ids
// compared bytewise in their canonical form. The greater version wins; equal stamps mean the same write.
#pragma once

#include <string>
#include <string_view>

#include "core/hlc.h"

namespace syncline::core {

struct Stamp {
  Hlc hlc = 0;
  std::string node;  // canonical node id
};

// <0, 0 or >0, like memcmp.
inline int CompareStamps(Hlc a_hlc, std::string_view a_node, Hlc b_hlc, std::string_view b_node) {
  if (a_hlc != b_hlc) return a_hlc < b_hlc ? -1 : 1;
  int c = a_node.compare(b_node);  // std::string_view compares bytes as unsigned char
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

inline int CompareStamps(const Stamp& a, const Stamp& b) { return CompareStamps(a.hlc, a.node, b.hlc, b.node); }
inline bool StampAbove(const Stamp& a, const Stamp& b) { return CompareStamps(a, b) > 0; }

}  // namespace syncline::core
