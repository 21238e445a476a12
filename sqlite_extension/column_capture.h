// Capture for column-merge tables (core/column_merge.h, docs/sqlite.md,
// "Column-level merge").
#pragma once

#include <sqlite3ext.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"
#include "sqlite_extension/state.h"

namespace syncline::sqlite {

// syncline_column_stamps(cols, hlc, node, deleted, tid, column_list,
// OLD.c1, NEW.c1, ...), called by a column-merge table's UPDATE trigger: the new
// syncline_rows.cols, the changed columns at the stamp syncline_stamp just
// issued.
core::Status SqlColumnStamps(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);

// The node id a syncline_rows.node ref stands for (0: this database's),
// cached in the connection.
core::Status NodeIdOfRef(ConnectionState& state, std::int64_t ref, std::string* out);

// After column `from` of table `tid` was renamed `to` (or dropped: no `to`),
// its rows' column stamps follow (core::RenameColumnStamps).
core::Status RenameColumnInMetadata(sqlite3* db, std::int64_t tid, const std::string& from,
                                    const std::optional<std::string>& to);

}  // namespace syncline::sqlite
