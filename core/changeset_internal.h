// What the two batch readers share (core/changeset.cc, the tree reader;
// core/changeset_streaming.cc, the streaming one), outside the codec's
// interface.
#pragma once

#include <cstdint>
#include <string_view>

namespace syncline::core {

// A "schema_version" literal: a non-negative integer that fits 64 bits.
bool SchemaVersion(std::string_view literal, std::int64_t* out);

}  // namespace syncline::core
