// Small RAII helpers over the SQLite C API, shared by the extension's parts.
// Statements are prepared per call of a SQL function and finalized on scope
// exit: nothing outlives the call, so sqlite3_close() never finds a statement
// of ours open. (Capture, the per-row path, runs as SQL inside the triggers
// and needs no statements of its own.)
#pragma once

#include <sqlite3ext.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/value.h"

// Every file of the extension calls SQLite through the loader's routine table.
SQLITE_EXTENSION_INIT3

namespace syncline::sqlite {

// SQLite stores a real NaN as NULL. The extension writes a NaN as this text
// instead, wherever it writes one (a row's value, a key it looks up), and
// keys a row whose key is NaN as this text (EncodeMetadataKey): in SQLite a
// NaN and the text 'NaN' are one value. Only a REAL column reads the text
// back as NaN (HoldsNanAsText, FromStoredForm; docs/types.md, "SQLite").
inline constexpr std::string_view kNanText = "NaN";

class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  core::Status Prepare(sqlite3* db, std::string_view sql);
  sqlite3_stmt* get() const { return stmt_; }

  // SQLITE_ROW -> true, SQLITE_DONE -> false; any error becomes a Status.
  core::Status Step(bool* has_row);
  core::Status Run();  // steps to completion, ignoring rows
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  void BindInt(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  void BindText(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void BindNull(int index) { sqlite3_bind_null(stmt_, index); }
  // A NaN is bound as the text kNanText.
  void BindValue(int index, const core::Value& value);

  std::int64_t ColumnInt(int index) const { return sqlite3_column_int64(stmt_, index); }
  std::string ColumnText(int index) const;
  bool ColumnIsNull(int index) const { return sqlite3_column_type(stmt_, index) == SQLITE_NULL; }
  core::Value ColumnValue(int index) const;

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Runs SQL without results (may hold several statements).
core::Status Exec(sqlite3* db, const std::string& sql);

// Runs a query that yields one integer (NULL reads as 0).
core::Status QueryInt(sqlite3* db, const std::string& sql, std::int64_t* out);

// A status from the connection's last error, e.g. a failed constraint.
core::Status SqliteError(sqlite3* db, int rc);

// "name" -> "\"name\"": an identifier quoted for SQL text (doubling quotes).
std::string QuoteIdentifier(std::string_view name);
// A string literal: 'text', quotes doubled.
std::string QuoteText(std::string_view text);
// Whether two identifiers name one object: SQLite compares them without
// regard to ASCII case.
bool SameName(std::string_view a, std::string_view b);

core::Value ValueFromSqlite(sqlite3_value* value);

// A savepoint that rolls back unless committed: every multi-statement write
// of the extension runs inside one, so it applies whole or not at all, inside
// the caller's transaction or on its own.
class Savepoint {
 public:
  Savepoint(sqlite3* db, const char* name);
  ~Savepoint();
  const core::Status& status() const { return status_; }
  core::Status Release();

 private:
  sqlite3* db_;
  std::string name_;
  core::Status status_;
  bool open_ = false;
};

// A SQL function's text result.
void ResultText(sqlite3_context* ctx, const std::string& text);
// Argument readers: a wrong type is an error naming the argument (`what`).
core::Status TextArg(sqlite3_value* value, const char* what, bool nullable, std::optional<std::string>* out);
core::Status RequiredText(sqlite3_value* value, const char* what, std::string* out);
// Argument `index` when given, else "".
core::Status OptionalText(int argc, sqlite3_value** argv, int index, const char* what, std::string* out);

}  // namespace syncline::sqlite
