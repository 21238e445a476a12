#include "sqlite_extension/state.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <limits>

#include "core/json.h"
#include "core/node_id.h"
#include "sqlite_extension/ddl.h"
#include "sqlite_extension/sqlite_util.h"

namespace syncline::sqlite {

using core::Code;
using core::Status;
using core::Value;

namespace {

// 2: a key of one UUID text column is stored as a 17-byte blob
// (EncodeMetadataKey). 3: syncline_rows.cols, the column stamps of
// column-merge tables (core/column_merge.h); a version-2 file is upgraded in
// place (the column is added, NULL: every column at its row's stamp). Older
// unreleased versions are refused with an error.
constexpr int kMetadataVersion = 3;

// Fixed, quoted-safe names (STYLE.md): every object the extension creates
// starts with "syncline_", and tables of that prefix cannot be tracked.
constexpr const char* kCreateMetadata = R"sql(
CREATE TABLE IF NOT EXISTS syncline_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS syncline_tables(
  tid INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  pk_columns TEXT NOT NULL,
  options TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS syncline_nodes(ref INTEGER PRIMARY KEY, node_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS syncline_rows(
  version INTEGER PRIMARY KEY,
  tid INTEGER NOT NULL,
  pk NOT NULL,
  clock INTEGER NOT NULL,
  hlc INTEGER NOT NULL,
  node INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  cols BLOB,
  UNIQUE (tid, pk));
CREATE TABLE IF NOT EXISTS syncline_displaced(tid INTEGER NOT NULL, pk NOT NULL, PRIMARY KEY (tid, pk)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS syncline_peers(
  node_id TEXT NOT NULL,
  filter TEXT NOT NULL,
  cursor TEXT NOT NULL,
  position TEXT NOT NULL,
  PRIMARY KEY (node_id, filter)) WITHOUT ROWID;
)sql";

std::string Affinity(const std::string& declared) {
  std::string type = declared;
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::toupper(c); });
  // SQLite's rules, in its order (https://sqlite.org/datatype3.html, 3.1).
  if (type.find("INT") != std::string::npos) return "INTEGER";
  if (type.find("CHAR") != std::string::npos || type.find("CLOB") != std::string::npos ||
      type.find("TEXT") != std::string::npos)
    return "TEXT";
  if (type.empty() || type.find("BLOB") != std::string::npos) return "BLOB";
  if (type.find("REAL") != std::string::npos || type.find("FLOA") != std::string::npos ||
      type.find("DOUB") != std::string::npos)
    return "REAL";
  return "NUMERIC";
}

}  // namespace

Status ReadMeta(sqlite3* db, const char* key, std::string* out, bool* found) {
  Statement stmt;
  Status status = stmt.Prepare(db, "SELECT value FROM syncline_meta WHERE key = ?1");
  if (!status.ok()) return status;
  stmt.BindText(1, key);
  status = stmt.Step(found);
  if (status.ok() && *found) *out = stmt.ColumnText(0);
  return status;
}

Status WriteMeta(sqlite3* db, const char* key, const std::string& value) {
  Statement stmt;
  Status status = stmt.Prepare(db, "INSERT OR REPLACE INTO syncline_meta(key, value) VALUES (?1, ?2)");
  if (!status.ok()) return status;
  stmt.BindText(1, key);
  stmt.BindText(2, value);
  return stmt.Run();
}

Status EnsureMetadata(sqlite3* db) {
  std::string version;
  bool found = false;
  {
    Statement probe;
    if (probe.Prepare(db, "SELECT value FROM syncline_meta WHERE key = 'metadata_version'").ok()) {
      Status status = probe.Step(&found);
      if (!status.ok()) return status;
      if (found) version = probe.ColumnText(0);
    }
  }
  if (found && version == "2") {
    Savepoint savepoint(db, "syncline_upgrade");
    if (!savepoint.status().ok()) return savepoint.status();
    Status status = Exec(db, "ALTER TABLE syncline_rows ADD COLUMN cols BLOB;\n"
                             "UPDATE syncline_meta SET value = '3' WHERE key = 'metadata_version'");
    if (!status.ok()) return status.WithPrefix("upgrading syncline metadata from version 2 to 3: ");
    return savepoint.Release();
  }
  if (found) {
    if (version != std::to_string(kMetadataVersion))
      return Status(Code::kInvalidInput, "this database holds syncline metadata version " + version +
                                             "; this build reads version " + std::to_string(kMetadataVersion));
    return Status::Ok();
  }
  Savepoint savepoint(db, "syncline_setup");
  if (!savepoint.status().ok()) return savepoint.status();
  Status status = Exec(db, kCreateMetadata);
  if (!status.ok()) return status;
  Statement insert;
  status = insert.Prepare(db, "INSERT OR IGNORE INTO syncline_meta(key, value) VALUES "
                              "('metadata_version', ?1), ('node_id', ?2), ('max_drift_ms', ?3), ('hlc', 0)");
  if (!status.ok()) return status;
  insert.BindText(1, std::to_string(kMetadataVersion));
  insert.BindText(2, core::NewNodeId());
  insert.BindInt(3, core::kDefaultMaxDriftMs);
  status = insert.Run();
  if (!status.ok()) return status;
  return savepoint.Release();
}

Status LocalNodeId(sqlite3* db, std::string* out) {
  bool found = false;
  Status status = ReadMeta(db, "node_id", out, &found);
  if (status.ok() && !found) return Status(Code::kInternal, "syncline metadata has no node id");
  return status;
}

std::int64_t MaxDriftMs(sqlite3* db) {
  std::string value;
  bool found = false;
  if (!ReadMeta(db, "max_drift_ms", &value, &found).ok() || !found) return core::kDefaultMaxDriftMs;
  return std::stoll(value);
}

core::Hlc NextStamp(ConnectionState& state, core::Hlc floor) {
  if (!state.clock_loaded) {
    std::string value;
    bool found = false;
    if (ReadMeta(state.db, "hlc", &value, &found).ok() && found) state.clock = std::stoull(value);
    state.clock_loaded = true;
  }
  state.clock = core::HlcNext(state.clock, floor, state.WallMs());
  return state.clock;
}

void ReceiveStamp(ConnectionState& state, core::Hlc remote) { state.clock = std::max(state.clock, remote); }

Status PersistClock(ConnectionState& state) {
  Statement stmt;
  Status status = stmt.Prepare(state.db, "INSERT INTO syncline_meta(key, value) VALUES ('hlc', ?1) "
                                         "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)");
  if (!status.ok()) return status;
  stmt.BindInt(1, static_cast<std::int64_t>(state.clock));
  return stmt.Run();
}

bool HoldsNanAsText(const TableInfo& table, std::size_t column) {
  return !table.strict && table.affinity[column] == "REAL";
}

Value FromStoredForm(const TableInfo& table, std::size_t column, Value value) {
  // (A STRICT REAL column holds no text at all.)
  if (value.type == Value::Type::kText && value.bytes == kNanText && table.affinity[column] == "REAL")
    return Value::Real(std::numeric_limits<double>::quiet_NaN());
  return value;
}

Status ParseTrackOptions(const std::string& text, core::MergeMode* merge) {
  *merge = core::MergeMode::kRow;
  if (text.empty()) return Status::Ok();
  core::Json json;
  Status status = core::ParseJson(text, &json);
  if (!status.ok()) return status.WithPrefix("options: ");
  if (!json.is_object()) return Status(Code::kInvalidInput, "options: must be a JSON object");
  for (const auto& [key, value] : json.members) {
    if (key != "merge")
      return Status(Code::kInvalidInput, "options: unknown option \"" + key + "\" (known: \"merge\")");
    if (value.is_string() && value.text == "column")
      *merge = core::MergeMode::kColumn;
    else if (!value.is_string() || value.text != "row")
      return Status(Code::kInvalidInput, "options: \"merge\" is \"row\" or \"column\", not " + core::JsonText(value));
  }
  return Status::Ok();
}

Status HasColumnMergeTables(sqlite3* db, bool* out) {
  std::int64_t count = 0;
  Status status = QueryInt(db, "SELECT count(*) FROM syncline_tables WHERE options = '{\"merge\":\"column\"}'", &count);
  *out = count > 0;
  return status;
}

Status LoadTableShape(sqlite3* db, const std::string& name, TableInfo* out) {
  *out = TableInfo{};
  Statement schema;
  Status status = schema.Prepare(db, "SELECT type, name, sql FROM sqlite_schema WHERE name = ?1 COLLATE NOCASE");
  if (!status.ok()) return status;
  schema.BindText(1, name);
  bool found = false;
  status = schema.Step(&found);
  if (!status.ok()) return status;
  if (!found) return Status(Code::kUndefinedTable, "no such table \"" + name + "\"");
  std::string type = schema.ColumnText(0);
  std::string sql = schema.ColumnText(2);
  if (type != "table") return Status(Code::kUndefinedTable, "\"" + name + "\" is a " + type + ", not a table");
  if (sql.compare(0, 14, "CREATE VIRTUAL") == 0)
    return Status(Code::kUndefinedTable, "\"" + name + "\" is a virtual table; only ordinary tables can be tracked");
  out->name = schema.ColumnText(1);

  Statement list;  // pragma_table_list exists from SQLite 3.37 on; older hosts see no STRICT tables
  if (list.Prepare(db, "SELECT strict FROM pragma_table_list WHERE schema = 'main' AND name = ?1").ok()) {
    list.BindText(1, out->name);
    if (list.Step(&found).ok() && found) out->strict = list.ColumnInt(0) != 0;
  }

  Statement columns;
  status = columns.Prepare(db, "SELECT name, type, \"notnull\", pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid");
  if (!status.ok()) return status;
  columns.BindText(1, out->name);
  std::vector<std::pair<int, int>> pk_order;  // (position in key, column index)
  while (true) {
    bool has_row = false;
    status = columns.Step(&has_row);
    if (!status.ok()) return status;
    if (!has_row) break;
    if (columns.ColumnInt(4) != 0) continue;  // generated (or hidden) columns are computed, never synced
    int index = static_cast<int>(out->columns.size());
    out->columns.push_back(columns.ColumnText(0));
    out->affinity.push_back(Affinity(columns.ColumnText(1)));
    out->not_null.push_back(columns.ColumnInt(2) != 0);
    if (int key_position = static_cast<int>(columns.ColumnInt(3)); key_position > 0)
      pk_order.emplace_back(key_position, index);
  }
  std::sort(pk_order.begin(), pk_order.end());
  for (const auto& entry : pk_order)
    out->pk.push_back(entry.second);
  return Status::Ok();
}

namespace {

Status FindTracked(sqlite3* db, const char* where, const std::function<void(Statement&)>& bind, TableInfo* out,
                   bool* found) {
  Statement stmt;
  Status status = stmt.Prepare(db, std::string("SELECT tid, name, options FROM syncline_tables WHERE ") + where);
  if (!status.ok()) return status;
  bind(stmt);
  status = stmt.Step(found);
  if (!status.ok() || !*found) return status;
  std::int64_t tid = stmt.ColumnInt(0);
  core::MergeMode merge = core::MergeMode::kRow;
  status = ParseTrackOptions(stmt.ColumnText(2), &merge);
  if (!status.ok()) return status.WithPrefix("syncline_tables.options of \"" + stmt.ColumnText(1) + "\": ");
  // Read-only: a table renamed since the last SyncSchema is found by its
  // triggers (a pull may run where nothing can be written).
  std::string current;
  status = ResolveTrackedName(db, stmt.ColumnText(1), &current);
  if (!status.ok()) return status;
  status = LoadTableShape(db, current, out);
  if (!status.ok()) return status;
  out->tid = tid;
  out->merge = merge;
  return Status::Ok();
}

}  // namespace

Status FindTrackedTable(sqlite3* db, const std::string& name, TableInfo* out, bool* found) {
  return FindTracked(
      db, "name = ?1", [&](Statement& stmt) { stmt.BindText(1, name); }, out, found);
}

Status FindTrackedTableById(sqlite3* db, std::int64_t tid, TableInfo* out, bool* found) {
  return FindTracked(
      db, "tid = ?1", [&](Statement& stmt) { stmt.BindInt(1, tid); }, out, found);
}

}  // namespace syncline::sqlite
