#include "client/connections.h"

namespace syncline::client {

using core::Code;
using core::Status;

LocalDb::~LocalDb() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Status LocalDb::Open(const std::string& path, const std::string& extension, bool create) {
  int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    return Status(Code::kInvalidInput, "cannot open " + path + ": " + message);
  }
  sqlite3_busy_timeout(db_, 5000);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, nullptr);
  char* error = nullptr;
  if (sqlite3_load_extension(db_, extension.c_str(), "sqlite3_syncline_init", &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    return Status(Code::kInvalidInput, "cannot load the SQLite extension " + extension + ": " + message +
                                           " (set --extension or SYNCLINE_EXTENSION)");
  }
  return Exec("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
}

Status LocalDb::Exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) == SQLITE_OK) return Status::Ok();
  std::string message = error != nullptr ? error : sqlite3_errmsg(db_);
  sqlite3_free(error);
  return Status(Code::kInternal, message);
}

Status LocalDb::Text(const std::string& sql, const std::vector<std::optional<std::string>>& args,
                     std::optional<std::string>* out) {
  out->reset();
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
    return Status(Code::kInternal, sqlite3_errmsg(db_));
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i])
      sqlite3_bind_text64(stmt, static_cast<int>(i + 1), args[i]->data(), args[i]->size(), SQLITE_TRANSIENT,
                          SQLITE_UTF8);
  }
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    *out = std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
  }
  Status status;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    status = Status((rc & 0xff) == SQLITE_CONSTRAINT ? Code::kConstraint : Code::kInternal, sqlite3_errmsg(db_));
  sqlite3_finalize(stmt);
  return status;
}

Status LocalDb::Rows(const std::string& sql, std::vector<std::vector<std::optional<std::string>>>* rows) {
  rows->clear();
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
    return Status(Code::kInternal, sqlite3_errmsg(db_));
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    std::vector<std::optional<std::string>> row;
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
        row.emplace_back();
        continue;
      }
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
      row.emplace_back(std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, c))));
    }
    rows->push_back(std::move(row));
  }
  Status status;
  if (rc != SQLITE_DONE) status = Status(Code::kInternal, sqlite3_errmsg(db_));
  sqlite3_finalize(stmt);
  return status;
}

Server::~Server() { Close(); }

void Server::Close() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
  pending_ = false;
}

Status Server::Connect(const std::string& conninfo) {
  Close();
  conn_ = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn_);
    while (!message.empty() && message.back() == '\n')
      message.pop_back();
    Close();
    return Status(Code::kUnavailable, "cannot connect to the server: " + message);
  }
  return Status::Ok();
}

namespace {

Status ResultStatus(PGconn* conn, PGresult* result, std::string* sqlstate) {
  ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return Status::Ok();
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  if (sqlstate != nullptr) *sqlstate = state != nullptr ? state : "";
  std::string message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) != nullptr
                            ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY)
                            : PQerrorMessage(conn);
  while (!message.empty() && message.back() == '\n')
    message.pop_back();
  if (PQstatus(conn) != CONNECTION_OK) return Status(Code::kUnavailable, "lost the server connection: " + message);
  const std::string code = state != nullptr ? state : "";
  if (code == core::SqlStateOf(Code::kResync)) return Status(Code::kResync, "server: " + message);
  // "Not yet" (a read server behind the cursor, a stamp ahead of the
  // server's clock) and transaction rollbacks (a serialization failure, a
  // deadlock, a pull a standby cancelled for a recovery conflict) are
  // worth another try.
  if (code == core::SqlStateOf(Code::kNotYet)) return Status(Code::kNotYet, "server: " + message);
  if (code.compare(0, 2, "40") == 0) return Status(Code::kConflict, "server: " + message);
  return Status(code.compare(0, 2, "23") == 0 ? Code::kConstraint : Code::kInternal, "server: " + message);
}

}  // namespace

Status Server::Text(const std::string& sql, const std::vector<std::optional<std::string>>& args,
                    std::optional<std::string>* out, std::string* sqlstate) {
  out->reset();
  Status status = Send(sql, args);
  if (!status.ok()) return status;
  return Receive(out, sqlstate);
}

Status Server::Send(const std::string& sql, const std::vector<std::optional<std::string>>& args) {
  if (!connected()) return Status(Code::kUnavailable, "not connected to the server");
  if (pending_) return Status(Code::kInternal, "a query is already on its way to the server");
  std::vector<const char*> values;
  for (const auto& arg : args)
    values.push_back(arg ? arg->c_str() : nullptr);
  if (PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                        0) == 0) {
    std::string message = PQerrorMessage(conn_);
    while (!message.empty() && message.back() == '\n')
      message.pop_back();
    return Status(PQstatus(conn_) != CONNECTION_OK ? Code::kUnavailable : Code::kInternal, "server: " + message);
  }
  pending_ = true;
  return Status::Ok();
}

Status Server::Receive(std::optional<std::string>* out, std::string* sqlstate) {
  out->reset();
  if (!pending_) return Status(Code::kInternal, "no query is on its way to the server");
  pending_ = false;
  PGresult* result = PQgetResult(conn_);
  if (result == nullptr) return Status(Code::kUnavailable, "lost the server connection: no reply");
  // Read to the end of the query's results first: a server that is going
  // away shows it in the connection's status only then.
  for (PGresult* rest = PQgetResult(conn_); rest != nullptr; rest = PQgetResult(conn_))
    PQclear(rest);
  Status status = ResultStatus(conn_, result, sqlstate);
  if (status.ok() && PQntuples(result) > 0 && PQnfields(result) > 0 && !PQgetisnull(result, 0, 0))
    *out = std::string(PQgetvalue(result, 0, 0), static_cast<std::size_t>(PQgetlength(result, 0, 0)));
  PQclear(result);
  return status;
}

void Server::Discard() {
  std::optional<std::string> ignored;
  if (pending_) (void)Receive(&ignored, nullptr);
}

Status Server::Rows(const std::string& sql, std::vector<std::vector<std::optional<std::string>>>* rows) {
  rows->clear();
  if (!connected()) return Status(Code::kUnavailable, "not connected to the server");
  PGresult* result = PQexec(conn_, sql.c_str());
  Status status = ResultStatus(conn_, result, nullptr);
  if (status.ok()) {
    for (int r = 0; r < PQntuples(result); ++r) {
      std::vector<std::optional<std::string>> row;
      for (int c = 0; c < PQnfields(result); ++c) {
        if (PQgetisnull(result, r, c))
          row.emplace_back();
        else
          row.emplace_back(std::string(PQgetvalue(result, r, c), PQgetlength(result, r, c)));
      }
      rows->push_back(std::move(row));
    }
  }
  PQclear(result);
  return status;
}

}  // namespace syncline::client
