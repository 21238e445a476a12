// Keeping capture in step with the app's own schema changes on tracked
// tables (docs/sqlite.md, "Schema changes").
#pragma once

#include <string>

#include "core/status.h"
#include "sqlite_extension/state.h"

namespace syncline::sqlite {

// While syncline changes its own triggers the authorizer must not take the
// drops for an app's.
class OwnDdl {
 public:
  explicit OwnDdl(ConnectionState& state) : state_(state) { ++state_.own_ddl; }
  ~OwnDdl() { --state_.own_ddl; }
  OwnDdl(const OwnDdl&) = delete;
  OwnDdl& operator=(const OwnDdl&) = delete;

 private:
  ConnectionState& state_;
};

// When the schema changed since the last check (PRAGMA schema_version),
// brings every tracked table's capture in line with it: follows a renamed
// table, records renamed key columns, regenerates the triggers whose text
// differs from what the table needs now (a UNIQUE index added or dropped, a
// table rebuilt without its triggers), and blocks writes to a table whose
// primary key changed. `in_statement`: called from inside a writing
// statement (the capture triggers), where no savepoint can be opened.
core::Status SyncSchema(ConnectionState& state, bool in_statement);

// The table a tracked table's stored name refers to now: the table of that
// name, else the table its capture triggers moved to with ALTER TABLE
// RENAME. kUndefinedTable when neither exists.
core::Status ResolveTrackedName(sqlite3* db, const std::string& stored, std::string* current);

// The connection's authorizer (sqlite3_set_authorizer). It runs when a
// statement is prepared, never per row, and runs no SQL (SQLite forbids it
// there): it notes schema changes and refuses writes to a tracked table
// whose capture triggers this connection dropped.
int AuthorizeForCapture(void* state, int code, const char* arg1, const char* arg2, const char* database,
                        const char* context);

}  // namespace syncline::sqlite
