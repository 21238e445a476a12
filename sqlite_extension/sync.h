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

// The position (a local version) of a cursor this database issued for pulls
// with `filter` (core::FilterFingerprint); `highest` is the highest local
// version now, past which no cursor was issued. `covered`: up to which
// version collected tombstones cannot concern the cursor's reader (its
// position, or the GC horizon it was issued under when that is higher).
core::Status IssuedPosition(const std::string& cursor, const std::string& node_id, const std::string& filter,
                            std::int64_t highest, std::int64_t* position, std::int64_t* covered = nullptr);

struct ApplyOptions {
  // The batch comes from this device's server (the client's pulls): its
  // stamps are trusted, and a version this file cannot store is logged in
  // syncline_conflicts and skipped rather than rejecting the batch.
  bool from_server = false;
  // With from_server, during a resync (gc.h): every change of the page marks
  // its row as one the server still has, whether it applies or not.
  bool resync = false;
};
core::Status ParseApplyOptions(const std::string& text, ApplyOptions* out);
core::Status ApplyPush(ConnectionState& state, const std::string& batch, const ApplyOptions& options,
                       std::string* summary);

core::Status PeerCursor(ConnectionState& state, const std::string& node_id, const std::string& options,
                        std::optional<std::string>* cursor);

}  // namespace syncline::sqlite
