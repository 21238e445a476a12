#include "sqlite_extension/ddl.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <vector>

#include "core/json.h"
#include "sqlite_extension/sqlite_util.h"
#include "sqlite_extension/tracking.h"

namespace syncline::sqlite {

using core::Code;
using core::Status;

namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

struct Tracked {
  std::int64_t tid = 0;
  std::string name;
  std::vector<std::string> pk;  // as recorded when tracked (or last checked)
  core::MergeMode merge = core::MergeMode::kRow;
};

Status LoadTracked(sqlite3* db, std::vector<Tracked>* out) {
  Statement rows;
  Status status = rows.Prepare(db, "SELECT tid, name, pk_columns, options FROM syncline_tables ORDER BY tid");
  if (!status.ok()) return status;
  while (true) {
    bool has_row = false;
    status = rows.Step(&has_row);
    if (!status.ok()) return status;
    if (!has_row) return Status::Ok();
    Tracked tracked;
    tracked.tid = rows.ColumnInt(0);
    tracked.name = rows.ColumnText(1);
    core::Json pk;
    if (core::ParseJson(rows.ColumnText(2), &pk).ok() && pk.is_array())
      for (const core::Json& column : pk.items)
        tracked.pk.push_back(column.text);
    status = ParseTrackOptions(rows.ColumnText(3), &tracked.merge);
    if (!status.ok()) return status.WithPrefix("table \"" + tracked.name + "\": ");
    out->push_back(std::move(tracked));
  }
}

// A key column renamed (ALTER TABLE RENAME COLUMN, or a rebuild that renames
// it) keeps naming the same values, so the stored keys stay valid. A key that
// gained, lost or swapped columns does not: its rows' metadata keys would
// name other rows.
bool KeyChanged(const std::vector<std::string>& recorded, const TableInfo& table) {
  if (recorded.empty()) return false;  // unreadable record: nothing to compare
  if (recorded.size() != table.pk.size()) return true;
  for (std::size_t i = 0; i < recorded.size(); ++i) {
    if (SameName(recorded[i], table.columns[table.pk[i]])) continue;
    for (const std::string& column : table.columns)
      if (SameName(column, recorded[i])) return true;  // the old key column is still there, not in the key
  }
  return false;
}

std::string ColumnList(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names)
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

// The triggers that are on `table` now and named like syncline's.
Status ExistingTriggers(sqlite3* db, const std::string& table, std::map<std::string, std::string>* out) {
  Statement triggers;
  Status status = triggers.Prepare(db, "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 "
                                       "COLLATE NOCASE AND name LIKE 'syncline\\_%' ESCAPE '\\'");
  if (!status.ok()) return status;
  triggers.BindText(1, table);
  while (true) {
    bool has_row = false;
    status = triggers.Step(&has_row);
    if (!status.ok() || !has_row) return status;
    (*out)[triggers.ColumnText(0)] = triggers.ColumnText(1);
  }
}

struct Plan {
  std::string ddl;                                     // drops and creates of triggers
  std::string blocked;                                 // why a table's writes are refused, if one is
  std::vector<std::int64_t> reconcile;                 // tables whose REPLACE guard changed
  std::vector<std::pair<Tracked, TableInfo>> renamed;  // syncline_tables rows to update
};

Status PlanTable(sqlite3* db, const Tracked& tracked, Plan* plan) {
  std::string current;
  Status status = ResolveTrackedName(db, tracked.name, &current);
  if (status.code() == Code::kUndefinedTable) return Status::Ok();  // dropped: pull names it when it fails
  if (!status.ok()) return status;
  TableInfo table;
  status = LoadTableShape(db, current, &table);
  if (!status.ok()) return status;
  table.tid = tracked.tid;
  table.merge = tracked.merge;

  std::vector<CaptureTrigger> desired;
  bool key_changed = KeyChanged(tracked.pk, table);
  UniqueKeys unique;
  if (!key_changed) {
    status = LoadUniqueKeys(db, table, &unique);
    if (!status.ok()) return status;
  }
  std::vector<std::string> key_names;
  for (int index : table.pk)
    key_names.push_back(table.columns[index]);
  if (key_changed) {
    plan->blocked = "table \"" + table.name + "\" now has primary key (" + ColumnList(key_names) +
                    ") but its sync metadata is keyed by (" + ColumnList(tracked.pk) +
                    "); restore the key, or untrack and track the table again (syncline_untrack, syncline_track)";
    desired = BlockingTriggers(table.name, "syncline: " + plan->blocked);
  } else if (!unique.expression_index.empty()) {
    desired = BlockingTriggers(table.name, "syncline: table \"" + table.name +
                                               "\" has a UNIQUE index on an expression (\"" + unique.expression_index +
                                               "\") whose REPLACE deletions cannot be captured; make it a plain index "
                                               "or a UNIQUE constraint on columns");
  } else {
    desired = CreateTriggers(table, unique);
  }

  std::map<std::string, std::string> existing;
  status = ExistingTriggers(db, table.name, &existing);
  if (!status.ok()) return status;
  bool same = existing.size() == desired.size();
  for (const CaptureTrigger& trigger : desired) {
    auto found = existing.find(trigger.name);
    same = same && found != existing.end() && found->second == trigger.sql;
  }
  if (!same) {
    for (const auto& [name, sql] : existing)
      plan->ddl += "DROP TRIGGER " + QuoteIdentifier(name) + ";\n";
    plan->ddl += CreateSql(desired);
    // REPLACE may have removed rows through a UNIQUE index the old guard did
    // not cover, before the new guard existed.
    if (!unique.keys.empty()) plan->reconcile.push_back(table.tid);
  }
  if (!key_changed && (table.name != tracked.name || key_names != tracked.pk))
    plan->renamed.push_back({tracked, table});
  return Status::Ok();
}

Status ApplyPlan(sqlite3* db, const Plan& plan) {
  Status status = Exec(db, plan.ddl);
  if (!status.ok()) return status;
  for (const auto& [tracked, table] : plan.renamed) {
    Statement update;
    status = update.Prepare(db, "UPDATE syncline_tables SET name = ?1, pk_columns = ?2 WHERE tid = ?3");
    if (!status.ok()) return status;
    update.BindText(1, table.name);
    update.BindText(2, PkColumnsJson(table));
    update.BindInt(3, tracked.tid);
    status = update.Run();
    if (!status.ok()) return status;
  }
  for (std::int64_t tid : plan.reconcile) {
    status = Exec(db, TombstoneMissingSql(tid));
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

unsigned DataVersion(sqlite3* db) {
  unsigned version = 0;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, &version);
  return version;
}

}  // namespace

Status ResolveTrackedName(sqlite3* db, const std::string& stored, std::string* current) {
  Statement find;
  // The table of that name first; else where its triggers went: ALTER TABLE
  // RENAME moves a table's triggers with it and keeps their names.
  Status status = find.Prepare(db, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE "
                                   "UNION ALL SELECT tbl_name FROM sqlite_schema WHERE type = 'trigger' AND name IN "
                                   "(?2, ?3) LIMIT 1");
  if (!status.ok()) return status;
  find.BindText(1, stored);
  find.BindText(2, CaptureTriggerName("insert", stored));
  find.BindText(3, CaptureTriggerName("delete", stored));
  bool found = false;
  status = find.Step(&found);
  if (!status.ok()) return status;
  if (!found) return Status(Code::kUndefinedTable, "no such table \"" + stored + "\"");
  *current = find.ColumnText(0);
  return Status::Ok();
}

Status SyncSchema(ConnectionState& state, bool in_statement) {
  sqlite3* db = state.db;
  std::int64_t version = 0;
  Status status = QueryInt(db, "PRAGMA schema_version", &version);
  if (!status.ok()) return status;
  state.data_version = DataVersion(db);
  if (version == state.schema_version) {
    state.schema_dirty = false;
    state.unarmed.clear();  // a drop prepared but not run
    return Status::Ok();
  }
  std::int64_t has_metadata = 0;
  status = QueryInt(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'syncline_tables'", &has_metadata);
  if (!status.ok()) return status;
  std::vector<Tracked> tables;
  if (has_metadata != 0) {
    status = LoadTracked(db, &tables);
    if (!status.ok()) return status;
  }
  Plan plan;
  for (const Tracked& tracked : tables) {
    status = PlanTable(db, tracked, &plan);
    if (!status.ok()) return status.WithPrefix("table \"" + tracked.name + "\": ");
  }
  // Inside a write, triggers restored by the app may still key rows by the
  // old key: the write fails (and with it these changes) until a syncline
  // call outside a write installs the blocking triggers.
  if (in_statement && !plan.blocked.empty()) return Status(Code::kInvalidInput, plan.blocked);
  if (!plan.ddl.empty() || !plan.renamed.empty()) {
    OwnDdl own(state);
    if (in_statement) {
      // Inside a writing statement no savepoint opens; the statement's own
      // rollback undoes these changes if it fails.
      status = ApplyPlan(db, plan);
    } else {
      Savepoint savepoint(db, "syncline_schema");
      status = savepoint.status();
      if (status.ok()) status = ApplyPlan(db, plan);
      if (status.ok()) status = savepoint.Release();
    }
    if (!status.ok()) return status;
    status = QueryInt(db, "PRAGMA schema_version", &version);
    if (!status.ok()) return status;
  }
  state.tracked.clear();
  for (const Tracked& tracked : tables)
    state.tracked.insert(Lower(tracked.name));
  for (const auto& entry : plan.renamed)
    state.tracked.insert(Lower(entry.second.name));
  state.unarmed.clear();
  state.schema_version = version;
  state.schema_dirty = false;
  return Status::Ok();
}

int AuthorizeForCapture(void* data, int code, const char* arg1, const char* arg2, const char* database, const char*) {
  auto* state = static_cast<ConnectionState*>(data);
  try {
    switch (code) {
      case SQLITE_INSERT:
      case SQLITE_UPDATE:
      case SQLITE_DELETE: {  // arg1: the table
        if (arg1 == nullptr || state->tracked.empty()) return SQLITE_OK;
        if (database != nullptr && std::strcmp(database, "main") != 0) return SQLITE_OK;
        std::string name = Lower(arg1);
        if (state->tracked.count(name) == 0) return SQLITE_OK;
        // DROP TABLE asks for SQLITE_DROP_TABLE, then SQLITE_DELETE of the
        // same table: that delete is the drop's own.
        if (code == SQLITE_DELETE && name == state->dropping) {
          state->dropping.clear();
          return SQLITE_OK;
        }
        // This connection dropped its capture triggers (a rebuild, a DROP
        // TRIGGER): the write would go uncaptured. A syncline call re-arms.
        if (state->unarmed.count(name) != 0) return SQLITE_DENY;
        // Another connection committed since the last check: it may have
        // changed the schema, which the first captured row then checks.
        if (DataVersion(state->db) != state->data_version) state->schema_dirty = true;
        return SQLITE_OK;
      }
      case SQLITE_DROP_TABLE:    // arg1: the table
      case SQLITE_DROP_TRIGGER:  // arg1: the trigger, arg2: its table
        state->schema_dirty = true;
        if (arg1 == nullptr) return SQLITE_OK;
        if (code == SQLITE_DROP_TABLE) state->dropping = Lower(arg1);
        if (state->own_ddl > 0) return SQLITE_OK;
        if (code == SQLITE_DROP_TABLE && state->tracked.count(Lower(arg1)) != 0) state->unarmed.insert(Lower(arg1));
        if (code == SQLITE_DROP_TRIGGER && std::strncmp(arg1, "syncline_", 9) == 0 && arg2 != nullptr &&
            state->tracked.count(Lower(arg2)) != 0)
          state->unarmed.insert(Lower(arg2));
        return SQLITE_OK;
      case SQLITE_CREATE_TRIGGER:  // arg1: the trigger, arg2: its table
        // An app that restores the capture triggers it saved before a
        // rebuild (step 8 of SQLite's procedure) writes again; the first
        // captured row checks them (schema_dirty).
        state->schema_dirty = true;
        if (state->own_ddl == 0 && arg1 != nullptr && arg2 != nullptr && std::strncmp(arg1, "syncline_", 9) == 0)
          state->unarmed.erase(Lower(arg2));
        return SQLITE_OK;
      case SQLITE_ALTER_TABLE:
      case SQLITE_CREATE_TABLE:
      case SQLITE_CREATE_INDEX:
      case SQLITE_DROP_INDEX: state->schema_dirty = true; return SQLITE_OK;
      default: return SQLITE_OK;
    }
  } catch (...) {
    return SQLITE_DENY;  // out of memory: refuse rather than let a write go uncaptured
  }
}

}  // namespace syncline::sqlite
