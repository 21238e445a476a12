// Tracking a table: the capture triggers, the metadata rows, the backfill.
#pragma once

#include <string>

#include "core/status.h"
#include "sqlite_extension/state.h"

namespace syncline::sqlite {

core::Status Track(ConnectionState& state, const std::string& table, const std::string& options, std::string* result);
core::Status Untrack(ConnectionState& state, const std::string& table, bool* was_tracked);

// Whether a tracked table still holds the row with this metadata key.
core::Status RowExists(sqlite3* db, std::int64_t tid, const std::string& key, bool* exists);

// SQL to select a row by its primary key, parameters ?1..?n in key order.
std::string KeyPredicate(const TableInfo& table);

}  // namespace syncline::sqlite
