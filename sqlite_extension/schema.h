// Following the server's schema: a device brings its tracked tables to the
// schema document a pull carries (docs/client.md, "Following the server's
// schema", where the document is described). schema.cc reads the document
// and the file's schema and writes the SQL of a table; schema_follow.cc
// changes the file.
#pragma once

#include <sqlite3ext.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/value.h"
#include "sqlite_extension/state.h"

namespace syncline::sqlite {

struct SchemaColumn {
  std::string name;
  std::string type;       // as the server declares it: "numeric(10,2)"
  std::string base_type;  // a domain's base type, without modifiers
  std::string category;   // PostgreSQL's type category ("B" boolean, "N" numeric, ...)
  bool not_null = false;
  bool has_default = false;  // a constant default, in default_value
  core::Value default_value;
  std::string default_expression;  // a default that is not constant (informational)
};

struct SchemaForeignKey {
  std::vector<std::string> columns;
  std::string references;
  std::vector<std::string> ref_columns;
};

struct SchemaTable {
  std::string name;
  std::vector<std::string> primary_key;
  std::vector<SchemaColumn> columns;
  std::vector<SchemaForeignKey> foreign_keys;
  std::string merge;  // "row" or "column" (docs/column-merge.md); "" when the server does not say
  const SchemaColumn* Find(std::string_view column) const;  // case-insensitive, as SQLite resolves names
};

// One event of the server's schema log. Only renames are acted on; the rest
// is reconciled against the tables, the desired end state.
struct SchemaChange {
  std::int64_t version = 0;
  std::string event;  // track, untrack, drop_table, rename_table, add_column, drop_column, rename_column, alter_type
  std::string table;  // the table's name as of the event
  std::string from, to, column;
};

struct SchemaDocument {
  // A document without a version ("version": null, what the client builds
  // from a server that sends none) is followed additively: tables and
  // columns the file lacks are created, nothing is renamed, dropped,
  // untracked or rebuilt, and no version is recorded.
  bool versioned = true;
  std::int64_t version = 0;
  std::vector<SchemaTable> tables;
  std::vector<SchemaChange> changes;  // oldest first
  const SchemaTable* Find(std::string_view table) const;
};

// Reads and checks a whole document; an error names what is wrong.
core::Status ParseSchemaDocument(std::string_view text, SchemaDocument* out);

// The SQLite column type a server column maps to (docs/types.md): INTEGER,
// REAL, NUMERIC, TEXT or BLOB; each is also its own affinity.
std::string SqliteType(const SchemaColumn& column);

// A column's constant default as a SQLite literal that stores the value as
// apply_push would (docs/types.md); false when it has none SQL can write.
bool ConstantDefault(const SchemaColumn& column, std::string* literal);

// The definition of a column in CREATE TABLE or ADD COLUMN: its type, its
// constant default as a literal and, where `allow_not_null`, NOT NULL.
// `warning` says what the column lacks that the server's has, if anything.
std::string ColumnSql(const SchemaColumn& column, bool allow_not_null, std::string* warning);

// CREATE TABLE `name` for a table of the document: columns, primary key,
// foreign keys. `allow_not_null(column)` says whether a column may be NOT
// NULL (a rebuild keeps the rows it copies valid); empty means always.
std::string CreateTableSql(const SchemaTable& table, const std::string& name,
                           const std::function<bool(const SchemaColumn&)>& allow_not_null = {});

// syncline_follow_schema(document): brings the file to the document in one
// savepoint and returns a JSON summary of what it did (docs/client.md).
core::Status FollowSchema(ConnectionState& state, std::string_view document, std::string* summary);
core::Status SqlFollowSchema(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);

// The schema settings of syncline_config (kept in syncline_meta):
//   follow_schema   'auto' (the default) or 'manual': this file's app
//                   migrates the schema itself; syncline only records that a
//                   migration is due
//   schema_version  the server's schema version this file has (0: none);
//                   an app that migrates by hand sets it when done
//   schema_due      read only: the version a manual file should migrate to
//                   (NULL when none)
bool IsSchemaSetting(std::string_view name);
core::Status SchemaSetting(ConnectionState& state, sqlite3_context* ctx, const std::string& name, sqlite3_value* value);

// --- reading the file's own schema (schema.cc), for schema_follow.cc ---

bool ContainsName(const std::vector<std::string>& names, std::string_view name);
bool SameNames(const std::vector<std::string>& a, const std::vector<std::string>& b);
// The name of any schema object (table, index, view, trigger) called so.
core::Status SchemaObject(sqlite3* db, std::string_view name, std::string* canonical, bool* exists);
// The first column of every row of `sql`, with `param` bound to ?1.
core::Status ColumnTexts(sqlite3* db, const std::string& sql, const std::string& param, std::vector<std::string>* out);

struct LocalForeignKey {
  std::string references;
  std::vector<std::string> columns, ref_columns;  // ref_columns empty: the parent's primary key
};
core::Status LoadForeignKeys(sqlite3* db, const std::string& table, std::vector<LocalForeignKey>* out);
// Rows that break a foreign key of `table` or of the tables that reference
// it (PRAGMA foreign_key_check).
core::Status ForeignKeyViolations(sqlite3* db, const std::string& table, std::int64_t* count);
// What of the app's keeps SQLite from dropping a column (an index, a UNIQUE
// constraint, a foreign key), as a phrase; empty when none of these.
core::Status DropBlocker(sqlite3* db, const std::string& table, const std::string& column, std::string* out);

// Meta keys (syncline_meta).
inline constexpr const char* kSchemaVersionKey = "schema_version";
inline constexpr const char* kSchemaDueKey = "schema_due";
inline constexpr const char* kFollowSchemaKey = "follow_schema";

// The file's schema version, 0 when it has none.
core::Status FileSchemaVersion(sqlite3* db, std::int64_t* out);

}  // namespace syncline::sqlite
