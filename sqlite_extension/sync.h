// Moving changes: pull_since reads them out, apply_push merges them in.
// The batch format and the conflict rule are specified in docs/protocol.md.
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "sqlite_extension/state.h"

namespace syncline::sqlite {

core::Status PullSince(ConnectionState& state, const std::optional<std::string>& cursor, std::int64_t limit,
                       const std::string& options, std::string* batch);

struct ApplyOptions {
  // The batch comes from this device's server (the client's pulls): its
  // stamps are trusted, and a version this file cannot store is logged in
  // syncline_conflicts and skipped rather than rejecting the batch.
  bool from_server = false;
};
core::Status ParseApplyOptions(const std::string& text, ApplyOptions* out);
core::Status ApplyPush(ConnectionState& state, const std::string& batch, const ApplyOptions& options,
                       std::string* summary);

core::Status PeerCursor(ConnectionState& state, const std::string& node_id, const std::string& options,
                        std::optional<std::string>* cursor);

}  // namespace syncline::sqlite
