#include "sqlite_extension/sqlite_util.h"

#include <cmath>

namespace syncline::sqlite {

using core::Code;
using core::Status;
using core::Value;

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Status Statement::Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_finalize(stmt_);
  stmt_ = nullptr;
  db_ = db;
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc);
  return Status::Ok();
}

Status Statement::Step(bool* has_row) {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    *has_row = true;
    return Status::Ok();
  }
  *has_row = false;
  if (rc == SQLITE_DONE) return Status::Ok();
  Status status = SqliteError(db_, rc);
  sqlite3_reset(stmt_);
  return status;
}

Status Statement::Run() {
  bool has_row = true;
  while (has_row) {
    Status status = Step(&has_row);
    if (!status.ok()) return status;
  }
  sqlite3_reset(stmt_);
  return Status::Ok();
}

void Statement::BindValue(int index, const Value& value) {
  switch (value.type) {
    case Value::Type::kNull: sqlite3_bind_null(stmt_, index); return;
    case Value::Type::kInteger: sqlite3_bind_int64(stmt_, index, value.integer); return;
    case Value::Type::kReal:
      if (std::isnan(value.real))
        sqlite3_bind_text64(stmt_, index, kNanText.data(), kNanText.size(), SQLITE_STATIC, SQLITE_UTF8);
      else
        sqlite3_bind_double(stmt_, index, value.real);
      return;
    case Value::Type::kText:
      sqlite3_bind_text64(stmt_, index, value.bytes.data(), value.bytes.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      return;
    case Value::Type::kBlob:
      sqlite3_bind_blob64(stmt_, index, value.bytes.data(), value.bytes.size(), SQLITE_TRANSIENT);
      return;
  }
}

std::string Statement::ColumnText(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  return text == nullptr ? std::string()
                         : std::string(reinterpret_cast<const char*>(text),
                                       static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index)));
}

Value Statement::ColumnValue(int index) const { return ValueFromSqlite(sqlite3_column_value(stmt_, index)); }

Value ValueFromSqlite(sqlite3_value* value) {
  switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER: return Value::Integer(sqlite3_value_int64(value));
    case SQLITE_FLOAT: return Value::Real(sqlite3_value_double(value));
    case SQLITE_TEXT: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(value));
      return Value::Text(std::string(text, static_cast<std::size_t>(sqlite3_value_bytes(value))));
    }
    case SQLITE_BLOB: {
      const auto* blob = static_cast<const char*>(sqlite3_value_blob(value));
      std::size_t size = static_cast<std::size_t>(sqlite3_value_bytes(value));
      return Value::Blob(blob == nullptr ? std::string() : std::string(blob, size));
    }
    default: return Value::Null();
  }
}

Status Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  return Status((rc & 0xff) == SQLITE_CONSTRAINT ? Code::kConstraint : Code::kInternal, message);
}

Status QueryInt(sqlite3* db, const std::string& sql, std::int64_t* out) {
  Statement stmt;
  Status status = stmt.Prepare(db, sql);
  if (!status.ok()) return status;
  bool has_row = false;
  status = stmt.Step(&has_row);
  *out = status.ok() && has_row ? stmt.ColumnInt(0) : 0;
  return status;
}

Status SqliteError(sqlite3* db, int rc) {
  return Status((rc & 0xff) == SQLITE_CONSTRAINT ? Code::kConstraint : Code::kInternal, sqlite3_errmsg(db));
}

namespace {

// `text` between `quote` characters, each one inside doubled.
std::string Quote(std::string_view text, char quote) {
  std::string quoted(1, quote);
  for (char c : text) {
    if (c == quote) quoted.push_back(quote);
    quoted.push_back(c);
  }
  quoted.push_back(quote);
  return quoted;
}

}  // namespace

std::string QuoteIdentifier(std::string_view name) { return Quote(name, '"'); }

std::string QuoteText(std::string_view text) { return Quote(text, '\''); }

bool SameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sqlite3_strnicmp(a.data(), b.data(), static_cast<int>(a.size())) == 0;
}

Savepoint::Savepoint(sqlite3* db, const char* name) : db_(db), name_(name) {
  status_ = Exec(db_, "SAVEPOINT " + name_);
  open_ = status_.ok();
}

Savepoint::~Savepoint() {
  if (!open_) return;
  // ROLLBACK TO undoes the work and keeps the savepoint; RELEASE then ends it
  // (and the transaction it began, when there was none before).
  Status ignored = Exec(db_, "ROLLBACK TO " + name_);
  ignored = Exec(db_, "RELEASE " + name_);
  (void)ignored;
}

Status Savepoint::Release() {
  Status status = Exec(db_, "RELEASE " + name_);
  // A deferred foreign key violation fails the RELEASE that would commit;
  // the destructor then rolls back.
  if (status.ok()) open_ = false;
  return status;
}

// SQL function arguments and results (sqlite_util.h).
void ResultText(sqlite3_context* ctx, const std::string& text) {
  sqlite3_result_text64(ctx, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

// Argument readers: a wrong type is an error naming the argument.
Status TextArg(sqlite3_value* value, const char* what, bool nullable, std::optional<std::string>* out) {
  int type = sqlite3_value_type(value);
  if (type == SQLITE_NULL && nullable) {
    out->reset();
    return Status::Ok();
  }
  if (type != SQLITE_TEXT)
    return Status(Code::kInvalidInput, std::string(what) + " must be text" + (nullable ? " or NULL" : ""));
  *out = std::string(reinterpret_cast<const char*>(sqlite3_value_text(value)),
                     static_cast<std::size_t>(sqlite3_value_bytes(value)));
  return Status::Ok();
}

Status RequiredText(sqlite3_value* value, const char* what, std::string* out) {
  std::optional<std::string> text;
  Status status = TextArg(value, what, false, &text);
  if (status.ok()) *out = std::move(*text);
  return status;
}

Status OptionalText(int argc, sqlite3_value** argv, int index, const char* what, std::string* out) {
  out->clear();
  if (argc <= index) return Status::Ok();
  std::optional<std::string> text;
  Status status = TextArg(argv[index], what, true, &text);
  if (status.ok() && text) *out = std::move(*text);
  return status;
}

}  // namespace syncline::sqlite
