// Per-connection state of the SQLite extension and the metadata it keeps in
// the database. The metadata layout is described in docs/sqlite.md.
#pragma once

#include <sqlite3ext.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/column_merge.h"
#include "core/hlc.h"
#include "core/status.h"
#include "core/value.h"

namespace syncline::sqlite {

struct ColumnList;  // column_capture.cc

// One per connection that loaded the extension (shared by its functions).
// A push in progress (sync_loop.h): what syncline_push_page sent last and
// how the next page is cut.
struct PushState {
  bool active = false;
  bool has_acked = false;
  std::string acked;  // the server's acknowledgement: pages go after it
  std::int64_t page_size = 1000;
  std::int64_t limit = 1000;
  std::int64_t max_bytes = 0;   // 0: the pull's own cap
  std::size_t merged_from = 0;  // changes of a page that needed the next one
  int retries = 0;
  bool sent = false;  // a page is out, its answer due
  std::size_t changes = 0;
  std::string cursor;
  bool has_more = false;
};

// A pull in progress (sync_loop.h): its filter, and when its pages commit.
struct PullState {
  bool active = false;
  bool resync = false;
  bool resync_begun = false;
  bool legacy_schema = false;  // a 0.1 server: no "schema" option
  std::string server_node;
  std::string usual_options;    // the file's usual pulls: exclude its own changes, its scope
  std::string request_options;  // this pull's (a resync's does not exclude its own)
  std::int64_t page_size = 1000;
  std::int64_t uncommitted = 0;      // changes applied since the last commit
  std::int64_t since_commit_ms = 0;  // wall clock of the last commit
};

struct ConnectionState {
  sqlite3* db = nullptr;
  int function_refs = 0;  // freed when the last registered function goes
  int applying = 0;       // >0 while apply_push writes
  // The row apply_push is writing, which capture leaves alone (it keeps its
  // origin's version); anything else its write causes is captured.
  std::int64_t applied_tid = 0;
  const core::Value* applied_key = nullptr;
  core::Hlc clock = 0;  // last stamp issued or received here
  bool clock_loaded = false;
  std::int64_t clock_skew_ms = 0;
  std::map<std::int64_t, std::string> node_ids;  // syncline_nodes, ref -> node id, as read (refs never change)
  // column_capture.cc: the column lists of column-merge triggers, parsed.
  std::map<std::string, std::shared_ptr<ColumnList>, std::less<>> column_lists;
  std::string key_buffer;  // reused by syncline_key on every captured write  // syncline_config('clock_skew_ms'):
                           // simulated clock offset
  std::int64_t WallMs() const { return core::WallClockMs() + clock_skew_ms; }

  // Capture against the app's schema changes (ddl.cc, docs/sqlite.md,
  // "Schema changes"). The authorizer sets `schema_dirty` when this
  // connection prepares DDL, or a write to a tracked table after another
  // connection committed; the next capture or syncline call then checks.
  std::int64_t schema_version = -1;  // PRAGMA schema_version when capture was last checked
  unsigned data_version = 0;         // SQLITE_FCNTL_DATA_VERSION then
  bool schema_dirty = true;
  int own_ddl = 0;                // >0 while syncline itself changes triggers
  std::set<std::string> tracked;  // tracked table names, lower case, as of the last check
  std::set<std::string> unarmed;  // tracked tables whose capture triggers this connection dropped
  std::string dropping;           // the table of the DROP TABLE being prepared

  PushState push;
  PullState pull;
};

// Node ref 0 in syncline_rows always means this database's own node id.
inline constexpr std::int64_t kLocalNodeRef = 0;

// Creates the metadata tables and this database's node id if missing.
core::Status EnsureMetadata(sqlite3* db);
core::Status LocalNodeId(sqlite3* db, std::string* out);
core::Status ReadMeta(sqlite3* db, const char* key, std::string* out, bool* found);
core::Status WriteMeta(sqlite3* db, const char* key, const std::string& value);
std::int64_t MaxDriftMs(sqlite3* db);

// The next stamp for a local write; `floor` is the stamp of the version the
// write replaces (0 when none).
core::Hlc NextStamp(ConnectionState& state, core::Hlc floor);
// Advances the clock past a stamp received from another node.
void ReceiveStamp(ConnectionState& state, core::Hlc remote);
core::Status PersistClock(ConnectionState& state);

// A tracked table as the extension sees it now.
struct TableInfo {
  std::int64_t tid = 0;
  std::string name;                   // as stored in sqlite_schema
  std::vector<std::string> columns;   // synced columns, table order (generated columns excluded)
  std::vector<std::string> affinity;  // per column: INTEGER, REAL, NUMERIC, TEXT or BLOB
  std::vector<bool> not_null;
  std::vector<int> pk;  // indexes into columns, in primary key order
  bool strict = false;
  core::MergeMode merge = core::MergeMode::kRow;  // syncline_track's "merge" option (tracked tables only)
};

// The options syncline_track keeps for a table (syncline_tables.options):
// {"merge": "row" | "column"}; anything else is an error naming it.
core::Status ParseTrackOptions(const std::string& text, core::MergeMode* merge);
// Whether a table of this file merges by column: its sync loop then pulls
// and pushes format 2, which carries column stamps (and only then, so that
// a server that predates format 2 keeps serving the others).
core::Status HasColumnMergeTables(sqlite3* db, bool* out);

// Whether a column holds a NaN faithfully, as the text 'NaN' (kNanText in
// sqlite_util.h): a column with REAL affinity in a table that is not STRICT
// (REAL affinity leaves text that is not a number as it is). Only text a
// local write put there could look the same, and in a REAL column it means
// NaN too. Any other column may hold the text 'NaN' as itself (a PostgreSQL
// numeric NaN travels as that text), so apply_push refuses a NaN for it
// (docs/types.md, "SQLite").
bool HoldsNanAsText(const TableInfo& table, std::size_t column);
// A value read from a column as the changeset carries it: the text 'NaN' in
// a REAL column is the real NaN.
core::Value FromStoredForm(const TableInfo& table, std::size_t column, core::Value value);

// Reads a table's shape from the schema. `tid` 0 for an untracked table.
core::Status LoadTableShape(sqlite3* db, const std::string& name, TableInfo* out);
// Finds a tracked table by name (case-insensitive, as SQLite resolves names).
core::Status FindTrackedTable(sqlite3* db, const std::string& name, TableInfo* out, bool* found);
core::Status FindTrackedTableById(sqlite3* db, std::int64_t tid, TableInfo* out, bool* found);

}  // namespace syncline::sqlite
