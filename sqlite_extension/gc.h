// Garbage collection of tombstones, and the resync a device runs when its
// server has collected history it had not pulled yet (docs/sqlite.md,
// "Garbage collection and resync"). The client drives both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"
#include "core/value.h"
#include "sqlite_extension/sqlite_util.h"
#include "sqlite_extension/state.h"

namespace syncline::sqlite {

// syncline_gc(options): drops the metadata tombstones whose local version is
// at most options' "through", keeps the version high-water mark, moves the
// horizon up to the greatest version collected and returns JSON
// {"collected": n, "horizon": h}.
core::Status CollectGarbage(ConnectionState& state, const std::string& options, std::string* result);

// The greatest local version garbage collection dropped (syncline_meta
// gc_horizon; 0 when none). A cursor below it cannot be served.
core::Status ReadGcHorizon(sqlite3* db, std::int64_t* horizon);

// syncline_resync_begin(acked_cursor): notes as candidates for removal every
// metadata row but this device's changes the server has not acknowledged
// (local-origin rows past the acknowledged local-pull cursor).
core::Status ResyncBegin(ConnectionState& state, const std::optional<std::string>& acked_cursor,
                         std::int64_t* candidates);

// syncline_gc_seen(answer): after the device reported its pull position
// (device_seen's answer {"bound", "position"}), collects this file's
// tombstones once the server's collection bound has passed the checkpoint
// recorded earlier, then records a new one (docs/client.md, "Garbage
// collection"); returns {"collected": n}.
core::Status GcSeen(ConnectionState& state, const std::string& answer, std::string* result);

// syncline_resync_end(): removes the candidates no page of the resync named
// (user rows without capture, and their metadata); returns JSON.
core::Status ResyncEnd(ConnectionState& state, std::string* result);

core::Status ResyncInProgress(sqlite3* db, bool* in_progress);

// What apply_push calls for each change of a resync page: the server still
// has that row, so it stays.
class ResyncCandidates {
 public:
  core::Status Prepare(sqlite3* db);
  core::Status Seen(std::int64_t tid, const core::Value& meta_key);

 private:
  Statement forget_;
};

}  // namespace syncline::sqlite
