// Node ids are random (version 4) UUIDs, always handled in one canonical form:
// lower-case text, 8-4-4-4-12. Compared bytewise on every engine.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace syncline::core {

std::string NewNodeId();

// Returns the canonical (lower-case) form of a UUID in text, or nothing when
// the text is not a UUID.
std::optional<std::string> CanonicalNodeId(std::string_view text);

}  // namespace syncline::core
