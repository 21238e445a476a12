// syncline_follow_schema: the DDL that brings a file to the server's schema
// (docs/client.md, "Following the server's schema"). The document's
// renames are followed in order, so that renamed tables and columns keep
// their data; everything else is reconciled against its tables, so that a
// device that missed several migrations lands on the current schema in one
// step. A migration is no local write: capture is off for the tables it
// changes (their syncline triggers are dropped first) and tracking them
// again afterwards keeps their tid and metadata.
#include <algorithm>

#include "core/json.h"
#include "sqlite_extension/column_capture.h"
#include "sqlite_extension/ddl.h"
#include "sqlite_extension/schema.h"
#include "sqlite_extension/sqlite_util.h"
#include "sqlite_extension/tracking.h"

namespace syncline::sqlite {

using core::Code;
using core::Status;

namespace {

std::string Quoted(std::string_view name) { return "\"" + std::string(name) + "\""; }

// Foreign key enforcement and legacy_alter_table, as the app set them,
// restored after each step that changes them. sqlite3_db_config changes
// them inside a transaction too, where PRAGMA foreign_keys cannot (a pull
// applies its pages in one).
class ConnectionFlags {
 public:
  explicit ConnectionFlags(sqlite3* db) : db_(db) {
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FKEY, -1, &foreign_keys_);
    sqlite3_db_config(db, SQLITE_DBCONFIG_LEGACY_ALTER_TABLE, -1, &legacy_alter_);
  }
  ~ConnectionFlags() { Restore(); }
  ConnectionFlags(const ConnectionFlags&) = delete;
  ConnectionFlags& operator=(const ConnectionFlags&) = delete;

  void Set(bool foreign_keys, bool legacy_alter) {
    sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_FKEY, foreign_keys ? 1 : 0, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_LEGACY_ALTER_TABLE, legacy_alter ? 1 : 0, nullptr);
  }
  void Restore() { Set(foreign_keys_ != 0, legacy_alter_ != 0); }
  bool foreign_keys() const { return foreign_keys_ != 0; }

 private:
  sqlite3* db_;
  int foreign_keys_ = 0;
  int legacy_alter_ = 0;
};

// A name like `base` that no column of `table` has.
std::string FreeColumnName(const TableInfo& table, const std::string& base) {
  std::string name = base;
  for (int n = 2; ContainsName(table.columns, name); ++n)
    name = base + "_" + std::to_string(n);
  return name;
}

class Follower {
 public:
  Follower(ConnectionState& state, const SchemaDocument& doc, std::int64_t from)
      : state_(state), db_(state.db), doc_(doc), from_(from), flags_(state.db) {}

  Status Run() {
    Status status = LoadTracked();
    for (std::size_t i = 0; status.ok() && doc_.versioned && i < doc_.changes.size(); ++i) {
      const SchemaChange& change = doc_.changes[i];
      if (change.version <= from_) continue;  // this file has it
      if (change.event == "rename_table") status = RenameTable(change);
      if (change.event == "rename_column") status = RenameColumn(change);
    }
    if (status.ok() && doc_.versioned) status = UntrackGone();
    for (std::size_t i = 0; status.ok() && i < doc_.tables.size(); ++i)
      status = Reconcile(doc_.tables[i]);
    if (status.ok()) status = Retrack();
    return status;
  }

  void WriteSummary(core::JsonWriter& out) const {
    auto names = [&](const char* key, const std::vector<std::string>& list) {
      out.Key(key);
      out.BeginArray();
      for (const std::string& name : list)
        out.String(name);
      out.EndArray();
    };
    auto objects = [&](const char* key, const std::vector<std::vector<std::pair<const char*, std::string>>>& list) {
      out.Key(key);
      out.BeginArray();
      for (const auto& object : list) {
        out.BeginObject();
        for (const auto& [field, value] : object) {
          out.Key(field);
          out.String(value);
        }
        out.EndObject();
      }
      out.EndArray();
    };
    out.Key("created");
    out.BeginArray();
    for (const auto& created : created_)
      out.String(created.first);
    out.EndArray();
    objects("renamed", renamed_);
    objects("added", added_);
    objects("dropped", dropped_);
    names("rebuilt", rebuilt_);
    names("untracked", untracked_);
    objects("set_aside", set_aside_);
    objects("warnings", warnings_);
    objects("merge", merge_changed_);
  }

 private:
  using Entry = std::vector<std::pair<const char*, std::string>>;
  struct Tracked {
    std::int64_t tid = 0;
    std::string name;
    bool touched = false;  // its syncline triggers are gone until Retrack
    bool column_merge = false;
    std::string merge;  // a merge mode the server changed it to ("row" or "column"), set by Retrack
  };

  Status LoadTracked() {
    Statement list;
    Status status = list.Prepare(
        db_, "SELECT tid, name, coalesce(options ->> 'merge' = 'column', 0) FROM syncline_tables ORDER BY tid");
    while (status.ok()) {
      bool has_row = false;
      status = list.Step(&has_row);
      if (!has_row) break;
      tracked_.push_back({list.ColumnInt(0), list.ColumnText(1), false, list.ColumnInt(2) != 0, ""});
    }
    return status;
  }

  Tracked* FindTracked(std::string_view name) {
    for (Tracked& table : tracked_) {
      if (SameName(table.name, name)) return &table;
    }
    return nullptr;
  }

  // Capture stays off for a table this migration changes: its syncline
  // triggers go before the first change (they also name its columns, which
  // would keep SQLite from dropping or renaming them) and come back with
  // Retrack.
  Status Touch(Tracked& table) {
    if (table.touched) return Status::Ok();
    std::vector<std::string> triggers;
    Status status =
        ColumnTexts(db_,
                    "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE "
                    "AND name LIKE 'syncline\\_%' ESCAPE '\\'",
                    table.name, &triggers);
    for (std::size_t i = 0; status.ok() && i < triggers.size(); ++i)
      status = Exec(db_, "DROP TRIGGER " + QuoteIdentifier(triggers[i]));
    table.touched = status.ok();
    return status;
  }

  // Moves a table out of a name the server's tables need, keeping its rows:
  // untracked, as "<name>_untracked". References to the name (foreign keys,
  // triggers) stay with the name, for the table that takes it.
  Status SetAside(const std::string& name) {
    std::string aside = name + "_untracked", ignored;
    bool taken = true;
    for (int n = 2; taken; ++n) {
      Status status = SchemaObject(db_, aside, &ignored, &taken);
      if (!status.ok()) return status;
      if (taken) aside = name + "_untracked_" + std::to_string(n);
    }
    if (Tracked* table = FindTracked(name)) {
      bool was_tracked = false;
      Status status = Untrack(state_, table->name, &was_tracked);
      if (!status.ok()) return status;
      tracked_.erase(tracked_.begin() + (table - tracked_.data()));
    }
    flags_.Set(false, true);
    Status status = Exec(db_, "ALTER TABLE " + QuoteIdentifier(name) + " RENAME TO " + QuoteIdentifier(aside));
    flags_.Restore();
    if (!status.ok()) return status.WithPrefix("table " + Quoted(name) + ": setting it aside: ");
    set_aside_.push_back({{"table", name}, {"as", aside}});
    return Status::Ok();
  }

  Status RenameTable(const SchemaChange& change) {
    Tracked* table = FindTracked(change.from);
    if (table == nullptr || SameName(change.from, change.to)) return Status::Ok();  // not here, or done
    std::string occupant;
    bool exists = false;
    Status status = SchemaObject(db_, change.to, &occupant, &exists);
    if (status.ok() && exists) status = SetAside(occupant);
    if (!status.ok()) return status;
    table = FindTracked(change.from);
    status = Touch(*table);
    if (!status.ok()) return status;
    // Not legacy: the rename reaches foreign keys, triggers and views that
    // name the table, as PostgreSQL's does.
    flags_.Set(flags_.foreign_keys(), false);
    status = Exec(db_, "ALTER TABLE " + QuoteIdentifier(table->name) + " RENAME TO " + QuoteIdentifier(change.to));
    flags_.Restore();
    if (status.ok()) {
      Statement rename;
      status = rename.Prepare(db_, "UPDATE syncline_tables SET name = ?1 WHERE tid = ?2");
      rename.BindText(1, change.to);
      rename.BindInt(2, table->tid);
      if (status.ok()) status = rename.Run();
    }
    if (!status.ok())
      return status.WithPrefix("renaming table " + Quoted(change.from) + " to " + Quoted(change.to) + ": ");
    renamed_.push_back({{"from", table->name}, {"to", change.to}});
    table->name = change.to;
    return Status::Ok();
  }

  Status RenameColumn(const SchemaChange& change) {
    Tracked* table = FindTracked(change.table);
    if (table == nullptr) return Status::Ok();
    TableInfo info;
    Status status = LoadTableShape(db_, table->name, &info);
    if (!status.ok()) return status;
    if (!ContainsName(info.columns, change.from) || SameName(change.from, change.to)) return Status::Ok();
    status = Touch(*table);
    const std::string quoted = QuoteIdentifier(table->name);
    // A column the server dropped before it reused the name: out of the way
    // now, dropped with the other columns the server lacks.
    if (status.ok() && ContainsName(info.columns, change.to))
      status = Exec(db_, "ALTER TABLE " + quoted + " RENAME COLUMN " + QuoteIdentifier(change.to) + " TO " +
                             QuoteIdentifier(FreeColumnName(info, change.to + "_old")));
    if (status.ok())
      status = Exec(db_, "ALTER TABLE " + quoted + " RENAME COLUMN " + QuoteIdentifier(change.from) + " TO " +
                             QuoteIdentifier(change.to));
    if (!status.ok())
      return status.WithPrefix("table " + Quoted(table->name) + ": renaming column " + Quoted(change.from) + " to " +
                               Quoted(change.to) + ": ");
    // A column-merge table's column keeps its own stamp under its new name.
    if (table->column_merge) status = RenameColumnInMetadata(db_, table->tid, change.from, change.to);
    if (!status.ok()) return status;
    renamed_.push_back({{"table", table->name}, {"from", change.from}, {"to", change.to}});
    return Status::Ok();
  }

  // Tables the server no longer tracks stay, with their rows, untracked.
  Status UntrackGone() {
    for (std::size_t i = 0; i < tracked_.size();) {
      if (doc_.Find(tracked_[i].name) != nullptr) {
        ++i;
        continue;
      }
      bool was_tracked = false;
      Status status = Untrack(state_, tracked_[i].name, &was_tracked);
      if (!status.ok()) return status.WithPrefix("untracking " + Quoted(tracked_[i].name) + ": ");
      untracked_.push_back(tracked_[i].name);
      tracked_.erase(tracked_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    return Status::Ok();
  }

  Status Reconcile(const SchemaTable& desired) {
    std::string local;
    bool exists = false;
    Status status = SchemaObject(db_, desired.name, &local, &exists);
    if (!status.ok()) return status;
    Tracked* table = exists ? FindTracked(local) : nullptr;
    if (exists && table == nullptr) {
      // The app's own table, or one this file kept when the server stopped
      // tracking it: its rows are not the server's, whose arrive by pull.
      // (Without a version, as the client has always done: left alone.)
      if (!doc_.versioned) return Status::Ok();
      status = SetAside(local);
      if (!status.ok()) return status;
      exists = false;
    }
    if (!exists) {
      status = Exec(db_, CreateTableSql(desired, desired.name));
      if (!status.ok()) return status.WithPrefix("creating table " + Quoted(desired.name) + ": ");
      created_.push_back({desired.name, desired.merge});
      return Status::Ok();
    }
    // The server merges it another way (docs/column-merge.md): so does this file.
    if (doc_.versioned && !desired.merge.empty() && (desired.merge == "column") != table->column_merge)
      table->merge = desired.merge;
    TableInfo info;
    status = LoadTableShape(db_, table->name, &info);
    if (!status.ok()) return status;
    std::vector<std::string> key;
    for (int index : info.pk)
      key.push_back(info.columns[index]);
    if (!SameNames(key, desired.primary_key)) {
      if (!doc_.versioned) return Status::Ok();
      return Status(Code::kInvalidInput, "table " + Quoted(table->name) + ": the server's primary key differs from " +
                                             "this file's; rows cannot move to another key here")
          .WithHint("Clone this device anew.");
    }
    bool rebuild = false;
    for (std::size_t i = 0; doc_.versioned && i < info.columns.size(); ++i) {
      const SchemaColumn* column = desired.Find(info.columns[i]);
      // A type whose affinity differs, or NOT NULL the server dropped (its
      // NULLs would be refused here); a NOT NULL the server added is left
      // out, as rows here may lack values.
      if (column != nullptr && (SqliteType(*column) != info.affinity[i] || (info.not_null[i] && !column->not_null)))
        rebuild = true;
    }
    if (doc_.versioned && !rebuild) {
      status = ForeignKeyDropped(*table, &rebuild);
      if (!status.ok()) return status;
    }
    if (rebuild) return Rebuild(*table, info, desired);
    for (std::size_t i = 0; status.ok() && i < desired.columns.size(); ++i) {
      if (!ContainsName(info.columns, desired.columns[i].name)) status = AddColumn(*table, desired, desired.columns[i]);
    }
    for (std::size_t i = 0; status.ok() && doc_.versioned && i < info.columns.size(); ++i) {
      if (desired.Find(info.columns[i]) == nullptr) status = DropColumn(*table, info.columns[i]);
    }
    return status;
  }

  // A foreign key between tracked tables that the server no longer has
  // would refuse rows the server sends: only a rebuild removes it. (Keys to
  // the app's own tables are the app's.)
  Status ForeignKeyDropped(const Tracked& table, bool* dropped) {
    const SchemaTable* desired = doc_.Find(table.name);
    std::vector<LocalForeignKey> keys;
    Status status = LoadForeignKeys(db_, table.name, &keys);
    for (const LocalForeignKey& key : keys) {
      if (doc_.Find(key.references) == nullptr) continue;
      bool kept = false;
      for (const SchemaForeignKey& fk : desired->foreign_keys)
        kept = kept || (SameName(fk.references, key.references) && SameNames(fk.columns, key.columns) &&
                        (key.ref_columns.empty() || SameNames(fk.ref_columns, key.ref_columns)));
      *dropped = *dropped || !kept;
    }
    return status;
  }

  Status AddColumn(Tracked& table, const SchemaTable& desired, const SchemaColumn& column) {
    Status status = Touch(table);
    if (!status.ok()) return status;
    // ADD COLUMN takes NOT NULL only with a default for the rows already here.
    std::string literal, warning;
    const bool has_default = ConstantDefault(column, &literal);
    std::string sql = ColumnSql(column, has_default, &warning);
    // A foreign key of this column alone comes with it (SQLite adds one only
    // to a column whose default is NULL); others need a rebuild, and a
    // missing key refuses nothing.
    for (const SchemaForeignKey& fk : desired.foreign_keys) {
      if (!has_default && fk.columns.size() == 1 && SameName(fk.columns[0], column.name))
        sql += " REFERENCES " + QuoteIdentifier(fk.references) + " (" + QuoteIdentifier(fk.ref_columns[0]) + ")";
    }
    status = Exec(db_, "ALTER TABLE " + QuoteIdentifier(table.name) + " ADD COLUMN " + sql);
    if (!status.ok())
      return status.WithPrefix("table " + Quoted(table.name) + ": adding column " + Quoted(column.name) + ": ");
    added_.push_back({{"table", table.name}, {"column", column.name}});
    if (!warning.empty()) warnings_.push_back({{"table", table.name}, {"column", column.name}, {"note", warning}});
    return Status::Ok();
  }

  Status DropColumn(Tracked& table, const std::string& column) {
    Status status = Touch(table);
    if (!status.ok()) return status;
    status = Exec(db_, "ALTER TABLE " + QuoteIdentifier(table.name) + " DROP COLUMN " + QuoteIdentifier(column));
    if (!status.ok()) {
      std::string blocker;
      Status found = DropBlocker(db_, table.name, column, &blocker);
      return Status(Code::kInvalidInput, "table " + Quoted(table.name) + ": cannot drop column " + Quoted(column) +
                                             ", which the server no longer has: " +
                                             (found.ok() && !blocker.empty() ? blocker : status.message()))
          .WithHint("Drop or change what uses the column, or migrate this file by hand "
                    "(syncline_config('follow_schema', 'manual')).");
    }
    // Its stamp goes with it: a column added later under its name starts anew.
    if (table.column_merge) status = RenameColumnInMetadata(db_, table.tid, column, std::nullopt);
    if (!status.ok()) return status;
    dropped_.push_back({{"table", table.name}, {"column", column}});
    return Status::Ok();
  }

  Status Rebuild(Tracked& table, const TableInfo& info, const SchemaTable& desired);

  // Tracking again makes the triggers anew for the table's current shape
  // and keeps its tid and metadata: every row here has its metadata row, so
  // the backfill writes nothing and nothing is left to push.
  Status Retrack() {
    std::string ignored;
    for (const Tracked& table : tracked_) {
      if (!table.touched && table.merge.empty()) continue;
      Status status = Track(state_, table.name, MergeOptions(table.merge), &ignored);
      if (!status.ok()) return status.WithPrefix("tracking " + Quoted(table.name) + " again: ");
      if (!table.merge.empty()) merge_changed_.push_back({{"table", table.name}, {"merge", table.merge}});
    }
    for (const auto& [name, merge] : created_) {
      Status status = Track(state_, name, MergeOptions(merge), &ignored);
      if (!status.ok()) return status.WithPrefix("tracking " + Quoted(name) + ": ");
    }
    return Status::Ok();
  }

  // syncline_track's options for a merge mode ("": the table keeps its own).
  static std::string MergeOptions(const std::string& merge) {
    return merge.empty() ? "" : "{\"merge\":\"" + merge + "\"}";
  }

  ConnectionState& state_;
  sqlite3* db_;
  const SchemaDocument& doc_;
  const std::int64_t from_;
  ConnectionFlags flags_;
  std::vector<Tracked> tracked_;
  std::vector<std::pair<std::string, std::string>> created_;  // name, merge mode
  std::vector<std::string> rebuilt_, untracked_;
  std::vector<Entry> renamed_, added_, dropped_, set_aside_, warnings_, merge_changed_;
};

// SQLite's way to change a column's type or constraints
// (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table
// Schema Changes"): a new table in the server's shape, the rows copied, the
// old table dropped and the new one renamed to its name, the app's indexes
// and triggers made again. Foreign key enforcement is off meanwhile (or
// DROP TABLE would delete the rows, cascading to their children), and the
// rename is a legacy one, so that the references to the name stay as they
// are; a foreign key check then says whether the rows still match.
Status Follower::Rebuild(Tracked& table, const TableInfo& info, const SchemaTable& desired) {
  Status status = Touch(table);
  if (!status.ok()) return status;
  std::int64_t generated = 0;
  status = QueryInt(db_, "SELECT count(*) FROM pragma_table_xinfo(" + QuoteIdentifier(table.name) + ") WHERE hidden",
                    &generated);
  if (!status.ok()) return status;
  if (generated > 0)
    return Status(Code::kInvalidInput, "table " + Quoted(table.name) + ": cannot rebuild it for the server's " +
                                           "schema, it has generated columns")
        .WithHint("Migrate this file by hand (syncline_config('follow_schema', 'manual')).");
  std::vector<std::pair<std::string, std::string>> objects;  // the app's indexes and triggers: name, sql
  {
    Statement list;
    status = list.Prepare(db_, "SELECT name, sql FROM sqlite_schema WHERE tbl_name = ?1 COLLATE NOCASE "
                               "AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name");
    list.BindText(1, table.name);
    bool has_row = true;
    while (status.ok() && (status = list.Step(&has_row)).ok() && has_row)
      objects.emplace_back(list.ColumnText(0), list.ColumnText(1));
    if (!status.ok()) return status;
  }
  std::int64_t violations_before = 0;
  if (flags_.foreign_keys()) status = ForeignKeyViolations(db_, table.name, &violations_before);
  if (!status.ok()) return status;

  // A column the rows here have keeps NOT NULL only if it had it (rows may
  // lack values); a new one takes it with a default, as ADD COLUMN would.
  auto allow_not_null = [&](const SchemaColumn& column) {
    for (std::size_t i = 0; i < info.columns.size(); ++i) {
      if (SameName(info.columns[i], column.name)) return static_cast<bool>(info.not_null[i]);
    }
    std::string literal;
    return ConstantDefault(column, &literal);
  };
  std::string common;
  for (const std::string& column : info.columns) {
    if (desired.Find(column) != nullptr) common += (common.empty() ? "" : ", ") + QuoteIdentifier(column);
  }
  const std::string quoted = QuoteIdentifier(table.name);
  const std::string temporary = QuoteIdentifier("syncline_rebuild_" + std::to_string(table.tid));
  flags_.Set(false, true);
  status = Exec(db_, CreateTableSql(desired, "syncline_rebuild_" + std::to_string(table.tid), allow_not_null));
  if (status.ok())
    status = Exec(db_, "INSERT INTO " + temporary + " (" + common + ") SELECT " + common + " FROM " + quoted);
  if (status.ok()) status = Exec(db_, "DROP TABLE " + quoted);
  if (status.ok()) status = Exec(db_, "ALTER TABLE " + temporary + " RENAME TO " + quoted);
  for (std::size_t i = 0; status.ok() && i < objects.size(); ++i) {
    status = Exec(db_, objects[i].second);
    if (!status.ok()) status = status.WithPrefix("making " + Quoted(objects[i].first) + " of this file again: ");
  }
  flags_.Restore();
  if (!status.ok())
    return status.WithPrefix("table " + Quoted(table.name) + ": rebuilding it for the server's schema: ");
  if (flags_.foreign_keys()) {
    std::int64_t violations_after = 0;
    status = ForeignKeyViolations(db_, table.name, &violations_after);
    if (!status.ok()) return status;
    if (violations_after > violations_before)
      return Status(Code::kConstraint, "table " + Quoted(table.name) + ": rebuilding it for the server's schema " +
                                           "breaks " + std::to_string(violations_after - violations_before) +
                                           " foreign key references (values changed type)");
  }
  for (const SchemaColumn& column : desired.columns) {
    if (!ContainsName(info.columns, column.name)) added_.push_back({{"table", table.name}, {"column", column.name}});
  }
  for (const std::string& column : info.columns) {
    if (desired.Find(column) == nullptr) dropped_.push_back({{"table", table.name}, {"column", column}});
  }
  rebuilt_.push_back(table.name);
  return Status::Ok();
}

std::string Summary(const SchemaDocument& doc, std::int64_t from, const char* outcome, const Follower* follower) {
  std::string text;
  core::JsonWriter out(&text);
  out.BeginObject();
  out.Key("version");
  if (doc.versioned)
    out.Int(doc.version);
  else
    out.Null();
  out.Key("schema_version");  // the file's before
  out.Int(from);
  if (outcome != nullptr) {
    out.Key(outcome);
    out.Bool(true);
  }
  if (follower != nullptr) follower->WriteSummary(out);
  out.EndObject();
  return text;
}

}  // namespace

Status FollowSchema(ConnectionState& state, std::string_view text, std::string* summary) {
  sqlite3* db = state.db;
  SchemaDocument doc;
  Status status = ParseSchemaDocument(text, &doc);
  if (!status.ok()) return status;
  status = EnsureMetadata(db);
  if (!status.ok()) return status;
  std::int64_t from = 0;
  status = FileSchemaVersion(db, &from);
  if (!status.ok()) return status;
  if (doc.versioned && doc.version <= from) {
    *summary = Summary(doc, from, "unchanged", nullptr);
    return Status::Ok();
  }
  std::string mode;
  bool found = false;
  status = ReadMeta(db, kFollowSchemaKey, &mode, &found);
  if (!status.ok()) return status;
  if (found && mode == "manual") {
    // The app migrates: it is told, the file is not changed.
    if (doc.versioned)
      status = Exec(db, "INSERT INTO syncline_meta(key, value) VALUES ('schema_due', " + std::to_string(doc.version) +
                            ") ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)");
    if (status.ok()) *summary = Summary(doc, from, "manual", nullptr);
    return status;
  }

  Savepoint savepoint(db, "syncline_schema");
  if (!savepoint.status().ok()) return savepoint.status();
  Follower follower(state, doc, from);
  {
    // syncline's own trigger changes: the authorizer must not take the
    // drops for an app's rebuild and refuse the writes that follow (ddl.h).
    OwnDdl own(state);
    status = follower.Run();
  }
  // Capture's view of the tracked tables (names, keys) catches up now.
  if (status.ok()) status = SyncSchema(state, /*in_statement=*/false);
  if (status.ok() && doc.versioned) {
    status = WriteMeta(db, kSchemaVersionKey, std::to_string(doc.version));
    if (status.ok())
      status = Exec(db, "DELETE FROM syncline_meta WHERE key = 'schema_due' AND CAST(value AS INTEGER) <= " +
                            std::to_string(doc.version));
  }
  if (status.ok()) status = savepoint.Release();
  if (status.ok()) *summary = Summary(doc, from, nullptr, &follower);
  return status;
}

}  // namespace syncline::sqlite
