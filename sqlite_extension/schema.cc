// The server's schema document (docs/client.md, "Following the server's
// schema"), read and checked whole before anything changes; the SQL of a
// table it describes; what the file's own schema says (its foreign keys,
// what keeps a column from being dropped); the settings of a file that
// follows the server's schema by hand.
#include "sqlite_extension/schema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/changeset.h"
#include "core/json.h"
#include "sqlite_extension/sqlite_util.h"

namespace syncline::sqlite {

using core::Code;
using core::Json;
using core::Status;
using core::Value;

namespace {

Status Invalid(const std::string& where, const std::string& what) {
  return Status(Code::kInvalidInput, "schema document: " + where + (where.empty() ? "" : ": ") + what);
}

// A member that must be a non-empty string (or may be absent when optional).
Status StringMember(const Json& object, const char* member, const std::string& where, bool optional, std::string* out) {
  const Json* value = object.Find(member);
  if (value == nullptr && optional) return Status::Ok();
  if (value == nullptr) return Invalid(where, std::string("lacks \"") + member + "\"");
  if (!value->is_string() || (!optional && value->text.empty()))
    return Invalid(where, std::string("\"") + member + "\" must be a" + (optional ? "" : " non-empty") + " string");
  *out = value->text;
  return Status::Ok();
}

Status NameList(const Json& object, const char* member, const std::string& where, std::vector<std::string>* out) {
  const Json* list = object.Find(member);
  if (list == nullptr || !list->is_array() || list->items.empty())
    return Invalid(where, std::string("\"") + member + "\" must be a non-empty list of names");
  for (const Json& name : list->items) {
    if (!name.is_string() || name.text.empty())
      return Invalid(where, std::string("\"") + member + "\" lists something that is not a name");
    out->push_back(name.text);
  }
  return Status::Ok();
}

Status ParseColumn(const Json& json, const std::string& where, SchemaColumn* out) {
  if (!json.is_object()) return Invalid(where, "a column must be an object");
  Status status = StringMember(json, "name", where, false, &out->name);
  const std::string at = where + " (\"" + out->name + "\")";
  if (status.ok()) status = StringMember(json, "type", at, true, &out->type);
  if (status.ok()) status = StringMember(json, "base_type", at, true, &out->base_type);
  if (status.ok()) status = StringMember(json, "category", at, true, &out->category);
  if (status.ok()) status = StringMember(json, "default_expression", at, true, &out->default_expression);
  if (!status.ok()) return status;
  if (out->base_type.empty()) out->base_type = out->type;
  if (const Json* not_null = json.Find("not_null")) {
    if (not_null->kind != Json::Kind::kTrue && not_null->kind != Json::Kind::kFalse)
      return Invalid(at, "\"not_null\" must be true or false");
    out->not_null = not_null->kind == Json::Kind::kTrue;
  }
  if (const Json* value = json.Find("default")) {
    status = core::DecodeValue(*value, &out->default_value);
    if (!status.ok()) return Invalid(at, "\"default\": " + status.message());
    out->has_default = out->default_value.type != Value::Type::kNull;
  }
  return Status::Ok();
}

Status ParseTable(const Json& json, const std::string& where, SchemaTable* out) {
  if (!json.is_object()) return Invalid(where, "a table must be an object");
  Status status = StringMember(json, "name", where, false, &out->name);
  if (!status.ok()) return status;
  const std::string at = where + " (\"" + out->name + "\")";
  if (out->name.compare(0, 9, "syncline_") == 0) return Invalid(at, "a table's name may not start with syncline_");
  status = NameList(json, "primary_key", at, &out->primary_key);
  if (status.ok()) status = StringMember(json, "merge", at, true, &out->merge);
  if (!status.ok()) return status;
  if (!out->merge.empty() && out->merge != "row" && out->merge != "column")
    return Invalid(at, "\"merge\" must be \"row\" or \"column\"");
  const Json* columns = json.Find("columns");
  if (columns == nullptr || !columns->is_array() || columns->items.empty())
    return Invalid(at, "\"columns\" must be a non-empty list");
  for (std::size_t i = 0; i < columns->items.size(); ++i) {
    SchemaColumn column;
    status = ParseColumn(columns->items[i], at + ": columns[" + std::to_string(i) + "]", &column);
    if (!status.ok()) return status;
    if (out->Find(column.name) != nullptr) return Invalid(at, "column \"" + column.name + "\" appears twice");
    out->columns.push_back(std::move(column));
  }
  for (const std::string& key : out->primary_key) {
    if (out->Find(key) == nullptr) return Invalid(at, "primary key column \"" + key + "\" is not among its columns");
  }
  if (const Json* keys = json.Find("foreign_keys"); keys != nullptr && !keys->is_null()) {
    if (!keys->is_array()) return Invalid(at, "\"foreign_keys\" must be a list");
    for (std::size_t i = 0; i < keys->items.size(); ++i) {
      const Json& fk = keys->items[i];
      const std::string fk_at = at + ": foreign_keys[" + std::to_string(i) + "]";
      if (!fk.is_object()) return Invalid(fk_at, "a foreign key must be an object");
      SchemaForeignKey key;
      status = StringMember(fk, "references", fk_at, false, &key.references);
      if (status.ok()) status = NameList(fk, "columns", fk_at, &key.columns);
      if (status.ok()) status = NameList(fk, "ref_columns", fk_at, &key.ref_columns);
      if (!status.ok()) return status;
      if (key.columns.size() != key.ref_columns.size())
        return Invalid(fk_at, "\"columns\" and \"ref_columns\" differ in length");
      out->foreign_keys.push_back(std::move(key));
    }
  }
  return Status::Ok();
}

Status ParseChange(const Json& json, const std::string& where, SchemaChange* out) {
  if (!json.is_object()) return Invalid(where, "a change must be an object");
  const Json* version = json.Find("version");
  Value number;
  if (version == nullptr || !version->is_number() || !core::DecodeNumber(version->text, &number).ok() ||
      number.type != Value::Type::kInteger || number.integer < 0)
    return Invalid(where, "\"version\" must be a non-negative integer");
  out->version = number.integer;
  Status status = StringMember(json, "event", where, false, &out->event);
  if (status.ok()) status = StringMember(json, "table", where, false, &out->table);
  if (!status.ok()) return status;
  const std::string at = where + " (" + out->event + " of \"" + out->table + "\")";
  // Other events need nothing but their table; events a later server may
  // add are passed over, as the tables say where they lead.
  if (out->event == "rename_table" || out->event == "rename_column") {
    status = StringMember(json, "from", at, false, &out->from);
    if (status.ok()) status = StringMember(json, "to", at, false, &out->to);
  } else if (out->event == "add_column" || out->event == "drop_column" || out->event == "alter_type") {
    status = StringMember(json, "column", at, false, &out->column);
  }
  return status;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bytes) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 0xf]);
  }
  return hex;
}

// A constant default as a SQLite literal that stores the value as apply_push
// would (docs/types.md); false for none (NULL, or text with a NUL, which a
// SQL literal cannot hold).
bool DefaultLiteral(const Value& value, std::string* out) {
  switch (value.type) {
    case Value::Type::kNull: return false;
    case Value::Type::kInteger: *out = std::to_string(value.integer); return true;
    case Value::Type::kReal:
      if (std::isnan(value.real))
        *out = "'" + std::string(kNanText) + "'";  // as BindValue writes a NaN
      else if (std::isinf(value.real))
        *out = value.real > 0 ? "9e999" : "-9e999";  // SQLite reads an overflowing literal as infinity
      else
        *out = core::RealToText(value.real);
      return true;
    case Value::Type::kText: {
      if (value.bytes.find('\0') != std::string::npos) return false;
      *out = QuoteText(value.bytes);
      return true;
    }
    case Value::Type::kBlob: *out = "X'" + Hex(value.bytes) + "'"; return true;
  }
  return false;
}

std::string QuotedList(const std::vector<std::string>& names) {
  std::string list;
  for (const std::string& name : names)
    list += (list.empty() ? "" : ", ") + QuoteIdentifier(name);
  return list;
}

Status ReadInt(sqlite3* db, const char* key, std::int64_t* out, bool* found) {
  std::string text;
  Status status = ReadMeta(db, key, &text, found);
  if (!status.ok() || !*found) return status;
  try {
    *out = std::stoll(text);
  } catch (const std::exception&) {
    return Status(Code::kInternal, std::string("syncline_meta holds \"") + text + "\" for " + key);
  }
  return Status::Ok();
}

}  // namespace

const SchemaColumn* SchemaTable::Find(std::string_view column) const {
  for (const SchemaColumn& candidate : columns) {
    if (SameName(candidate.name, column)) return &candidate;
  }
  return nullptr;
}

const SchemaTable* SchemaDocument::Find(std::string_view table) const {
  for (const SchemaTable& candidate : tables) {
    if (SameName(candidate.name, table)) return &candidate;
  }
  return nullptr;
}

Status ParseSchemaDocument(std::string_view text, SchemaDocument* out) {
  *out = SchemaDocument();
  Json json;
  Status status = core::ParseJson(text, &json);
  if (!status.ok()) return Invalid("", status.message());
  if (!json.is_object()) return Invalid("", "must be a JSON object");
  const Json* version = json.Find("version");
  if (version == nullptr) return Invalid("", "lacks \"version\" (null for a server that has none)");
  Value number;
  if (version->is_null()) {
    out->versioned = false;
  } else if (!version->is_number() || !core::DecodeNumber(version->text, &number).ok() ||
             number.type != Value::Type::kInteger || number.integer < 0) {
    return Invalid("", "\"version\" must be a non-negative integer or null");
  } else {
    out->version = number.integer;
  }
  const Json* tables = json.Find("tables");
  if (tables == nullptr || !tables->is_array()) return Invalid("", "\"tables\" must be a list");
  for (std::size_t i = 0; i < tables->items.size(); ++i) {
    SchemaTable table;
    status = ParseTable(tables->items[i], "tables[" + std::to_string(i) + "]", &table);
    if (!status.ok()) return status;
    if (out->Find(table.name) != nullptr) return Invalid("", "table \"" + table.name + "\" appears twice");
    out->tables.push_back(std::move(table));
  }
  if (const Json* changes = json.Find("changes"); changes != nullptr && !changes->is_null()) {
    if (!changes->is_array()) return Invalid("", "\"changes\" must be a list");
    for (std::size_t i = 0; i < changes->items.size(); ++i) {
      SchemaChange change;
      status = ParseChange(changes->items[i], "changes[" + std::to_string(i) + "]", &change);
      if (!status.ok()) return status;
      if (!out->changes.empty() && change.version < out->changes.back().version)
        return Invalid("changes[" + std::to_string(i) + "]", "changes must be in version order");
      out->changes.push_back(std::move(change));
    }
  }
  return Status::Ok();
}

std::string SqliteType(const SchemaColumn& column) {
  const std::string& type = column.base_type;
  if (type == "smallint" || type == "integer" || type == "bigint" || column.category == "B") return "INTEGER";
  if (type == "real" || type == "double precision") return "REAL";
  // SQLite's NUMERIC keeps 15 significant digits (a double): wider or
  // unconstrained numerics stay exact as TEXT.
  if (type == "numeric") {
    int precision = 0;
    if (std::sscanf(column.type.c_str(), "numeric(%d", &precision) == 1 && precision <= 15) return "NUMERIC";
    return "TEXT";
  }
  if (type == "bytea") return "BLOB";
  return "TEXT";
}

std::string ColumnSql(const SchemaColumn& column, bool allow_not_null, std::string* warning) {
  warning->clear();
  std::string sql = QuoteIdentifier(column.name) + " " + SqliteType(column);
  std::string literal;
  const bool has_literal = ConstantDefault(column, &literal);
  if (column.not_null && allow_not_null) sql += " NOT NULL";
  if (has_literal) sql += " DEFAULT " + literal;
  if (!column.default_expression.empty())
    *warning = "its default (" + column.default_expression +
               ") is not a constant; the column has none here and the server sends the values";
  else if (column.has_default && !has_literal)
    *warning = "its default holds a NUL character, which SQLite's SQL cannot write; the column has none here";
  if (column.not_null && !allow_not_null)
    *warning += std::string(warning->empty() ? "" : "; ") + "it is nullable here (rows already here have no value)";
  return sql;
}

std::string CreateTableSql(const SchemaTable& table, const std::string& name,
                           const std::function<bool(const SchemaColumn&)>& allow_not_null) {
  std::string sql = "CREATE TABLE " + QuoteIdentifier(name) + " (";
  std::string ignored;
  for (const SchemaColumn& column : table.columns)
    sql += ColumnSql(column, !allow_not_null || allow_not_null(column), &ignored) + ", ";
  sql += "PRIMARY KEY (" + QuotedList(table.primary_key) + ")";
  for (const SchemaForeignKey& fk : table.foreign_keys)
    sql += ", FOREIGN KEY (" + QuotedList(fk.columns) + ") REFERENCES " + QuoteIdentifier(fk.references) + " (" +
           QuotedList(fk.ref_columns) + ")";
  return sql + ")";
}

// --- the file's own schema ---------------------------------------------------

bool ContainsName(const std::vector<std::string>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return SameName(n, name); });
}

// The name of any schema object (table, index, view, trigger) that has it.
Status SchemaObject(sqlite3* db, std::string_view name, std::string* canonical, bool* exists) {
  Statement find;
  Status status = find.Prepare(db, "SELECT name FROM sqlite_schema WHERE name = ?1 COLLATE NOCASE");
  if (!status.ok()) return status;
  find.BindText(1, name);
  status = find.Step(exists);
  if (status.ok() && *exists) *canonical = find.ColumnText(0);
  return status;
}

Status ColumnTexts(sqlite3* db, const std::string& sql, const std::string& param, std::vector<std::string>* out) {
  out->clear();
  Statement stmt;
  Status status = stmt.Prepare(db, sql);
  if (!status.ok()) return status;
  stmt.BindText(1, param);
  while (true) {
    bool has_row = false;
    status = stmt.Step(&has_row);
    if (!status.ok() || !has_row) return status;
    out->push_back(stmt.ColumnText(0));
  }
}

Status LoadForeignKeys(sqlite3* db, const std::string& table, std::vector<LocalForeignKey>* out) {
  Statement list;
  Status status =
      list.Prepare(db, "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq");
  if (!status.ok()) return status;
  list.BindText(1, table);
  std::int64_t last = -1;
  while (true) {
    bool has_row = false;
    status = list.Step(&has_row);
    if (!status.ok() || !has_row) return status;
    if (list.ColumnInt(0) != last) out->push_back({list.ColumnText(1), {}, {}});
    last = list.ColumnInt(0);
    out->back().columns.push_back(list.ColumnText(2));
    if (!list.ColumnIsNull(3)) out->back().ref_columns.push_back(list.ColumnText(3));
  }
}

bool SameNames(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!SameName(a[i], b[i])) return false;
  }
  return true;
}

// Rows that break a foreign key of `table` or of the tables that reference
// it (PRAGMA foreign_key_check), counted before and after a rebuild.
Status ForeignKeyViolations(sqlite3* db, const std::string& table, std::int64_t* count) {
  std::vector<std::string> tables;
  Status status = ColumnTexts(db,
                              "SELECT DISTINCT m.name FROM sqlite_schema m, pragma_foreign_key_list(m.name) f "
                              "WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE",
                              table, &tables);
  if (!status.ok()) return status;
  if (!ContainsName(tables, table)) tables.push_back(table);
  *count = 0;
  for (const std::string& name : tables) {
    std::int64_t violations = 0;
    status = QueryInt(db, "SELECT count(*) FROM pragma_foreign_key_check(" + QuoteIdentifier(name) + ")", &violations);
    if (!status.ok()) return status;
    *count += violations;
  }
  return Status::Ok();
}

// What of the app's keeps SQLite from dropping a column: an index, a
// UNIQUE constraint or a foreign key (syncline's own triggers are gone by
// now). Empty when none of these: SQLite's message says (a CHECK, a
// trigger or view of the app's).
Status DropBlocker(sqlite3* db, const std::string& table, const std::string& column, std::string* out) {
  std::vector<std::string> users;
  Statement indexes;
  Status status = indexes.Prepare(db, "SELECT CASE l.origin WHEN 'u' THEN 'a UNIQUE constraint' ELSE 'index \"' "
                                      "|| l.name || '\"' END FROM pragma_index_list(?1) l, "
                                      "pragma_index_info(l.name) i WHERE i.name = ?2 COLLATE NOCASE");
  if (!status.ok()) return status;
  indexes.BindText(1, table);
  indexes.BindText(2, column);
  bool has_row = true;
  while ((status = indexes.Step(&has_row)).ok() && has_row)
    users.push_back(indexes.ColumnText(0));
  if (!status.ok()) return status;
  std::vector<LocalForeignKey> keys;
  status = LoadForeignKeys(db, table, &keys);
  for (const LocalForeignKey& key : keys) {
    if (ContainsName(key.columns, column)) users.push_back("a foreign key to \"" + key.references + "\"");
  }
  for (const std::string& user : users)
    *out += (out->empty() ? "" : ", ") + user;
  if (!out->empty()) *out += " of this file uses it";
  return status;
}

Status FileSchemaVersion(sqlite3* db, std::int64_t* out) {
  *out = 0;
  bool found = false;
  return ReadInt(db, kSchemaVersionKey, out, &found);
}

Status SqlFollowSchema(ConnectionState& state, sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) return Status(Code::kInvalidInput, "document must be text");
  std::string_view document(reinterpret_cast<const char*>(sqlite3_value_text(argv[0])),
                            static_cast<std::size_t>(sqlite3_value_bytes(argv[0])));
  std::string summary;
  Status status = FollowSchema(state, document, &summary);
  if (status.ok()) sqlite3_result_text64(ctx, summary.data(), summary.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return status;
}

bool ConstantDefault(const SchemaColumn& column, std::string* literal) {
  return column.has_default && DefaultLiteral(column.default_value, literal);
}

bool IsSchemaSetting(std::string_view name) {
  return name == kFollowSchemaKey || name == kSchemaVersionKey || name == kSchemaDueKey;
}

Status SchemaSetting(ConnectionState& state, sqlite3_context* ctx, const std::string& name, sqlite3_value* value) {
  sqlite3* db = state.db;
  Status status = EnsureMetadata(db);
  if (!status.ok()) return status;
  if (name == kFollowSchemaKey) {
    if (value != nullptr) {
      const char* text = reinterpret_cast<const char*>(sqlite3_value_text(value));
      std::string mode = sqlite3_value_type(value) == SQLITE_TEXT && text != nullptr ? text : "";
      if (mode != "auto" && mode != "manual")
        return Status(Code::kInvalidInput, "follow_schema must be 'auto' or 'manual'");
      status = WriteMeta(db, kFollowSchemaKey, mode);
      if (!status.ok()) return status;
    }
    std::string mode;
    bool found = false;
    status = ReadMeta(db, kFollowSchemaKey, &mode, &found);
    if (!status.ok()) return status;
    if (!found) mode = "auto";
    sqlite3_result_text64(ctx, mode.data(), mode.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    return Status::Ok();
  }
  if (name == kSchemaVersionKey && value != nullptr) {
    // An app that migrates by hand says so: the file now has this version,
    // and a migration to it or below is no longer due.
    if (sqlite3_value_type(value) != SQLITE_INTEGER || sqlite3_value_int64(value) < 0)
      return Status(Code::kInvalidInput, "schema_version must be a non-negative integer");
    const std::int64_t version = sqlite3_value_int64(value);
    status = WriteMeta(db, kSchemaVersionKey, std::to_string(version));
    if (status.ok())
      status = Exec(db, "DELETE FROM syncline_meta WHERE key = 'schema_due' AND CAST(value AS INTEGER) <= " +
                            std::to_string(version));
    if (!status.ok()) return status;
  } else if (value != nullptr) {
    return Status(Code::kInvalidInput, name + " is read only");
  }
  std::int64_t number = 0;
  bool found = false;
  status = ReadInt(db, name == kSchemaVersionKey ? kSchemaVersionKey : kSchemaDueKey, &number, &found);
  if (!status.ok()) return status;
  if (found)
    sqlite3_result_int64(ctx, number);
  else if (name == kSchemaVersionKey)
    sqlite3_result_int64(ctx, 0);
  else
    sqlite3_result_null(ctx);
  return Status::Ok();
}

}  // namespace syncline::sqlite
