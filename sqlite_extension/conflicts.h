// The device's conflict log (docs/sqlite.md, "Conflicts").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/changeset.h"
#include "core/merge.h"
#include "sqlite_extension/state.h"

namespace syncline::sqlite {

// Creates syncline_conflicts if missing.
core::Status EnsureConflictLog(sqlite3* db);
// Logs a version from the server this file could not store (change `index`
// of `batch`), with the change itself so that it can be applied again.
core::Status LogLocalRefusal(sqlite3* db, const core::Batch& batch, std::size_t index, const core::Refusal& refusal);
// Drops this device's copy of a row the server refused, without capturing
// it, if the row's version is still the refused one (`hlc`, made here).
core::Status Forget(ConnectionState& state, const std::string& table, const std::string& pk_json,
                    const std::string& hlc, bool* dropped);
// Copies an entry of the server's log of this device's refused changes (a
// row of syncline.conflicts as JSON) into syncline_conflicts, once, and
// drops the row's copy when the entry says so (Forget).
core::Status NoteServerConflict(ConnectionState& state, const std::string& entry_json, bool* dropped);
// Drops resolved entries older than `resolved_days` and any older than
// `kept_days`.
core::Status PruneConflicts(sqlite3* db, std::int64_t resolved_days, std::int64_t kept_days, std::int64_t* pruned);
// Writes a refused row of this device again as a new local write (the row
// as refused, or `edited_row`, a JSON object of every column) and resolves
// the entry.
core::Status ResubmitConflict(ConnectionState& state, std::int64_t id, const std::optional<std::string>& edited_row);
// Applies the logged versions again (a UNIQUE value this file held may be
// free now); counts the ones resolved.
core::Status RetryConflicts(ConnectionState& state, std::int64_t* resolved);

}  // namespace syncline::sqlite
