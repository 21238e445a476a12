// The two ends the client moves changes between: the local SQLite file
// (with the syncline extension loaded) and the server, over libpq.
#pragma once

#include <libpq-fe.h>
#include <sqlite3.h>

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace syncline::client {

// The client's own bookkeeping, in the client file beside syncline's.
inline constexpr const char* kClientStateTable =
    "CREATE TABLE IF NOT EXISTS syncline_client(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID";

// The cursor of this file's last push the server acknowledged, as the
// extension records it (syncline_push_acked); a file last synced by an older
// client has it in syncline_client.
inline constexpr const char* kAckedPushQuery =
    "SELECT coalesce(syncline_push_acked(), (SELECT value FROM syncline_client WHERE key = 'acked_push'))";

class LocalDb {
 public:
  LocalDb() = default;
  ~LocalDb();
  LocalDb(const LocalDb&) = delete;
  LocalDb& operator=(const LocalDb&) = delete;

  // Opens (creating it if `create`) and loads the extension.
  core::Status Open(const std::string& path, const std::string& extension, bool create);
  core::Status Exec(const std::string& sql);
  // The first column of the first row (nullopt for no row or NULL).
  core::Status Text(const std::string& sql, const std::vector<std::optional<std::string>>& args,
                    std::optional<std::string>* out);
  // Every row, every column as text (nullopt for NULL).
  core::Status Rows(const std::string& sql, std::vector<std::vector<std::optional<std::string>>>* rows);
  sqlite3* handle() const { return db_; }
  bool in_transaction() const { return db_ != nullptr && sqlite3_get_autocommit(db_) == 0; }

 private:
  sqlite3* db_ = nullptr;
};

class Server {
 public:
  Server() = default;
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // conninfo in libpq's forms; empty means the PG* environment variables.
  core::Status Connect(const std::string& conninfo);
  bool connected() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }
  // One value (nullopt for NULL / no row). Errors carry the server's message;
  // a lost connection is kUnavailable. `sqlstate` receives the error's code.
  core::Status Text(const std::string& sql, const std::vector<std::optional<std::string>>& args,
                    std::optional<std::string>* out, std::string* sqlstate = nullptr);
  // Text in two halves: Send returns once the query is on its way, so the
  // server works on it while the client does something else; Receive waits
  // for its reply. One query at a time; Discard drops an unread reply.
  core::Status Send(const std::string& sql, const std::vector<std::optional<std::string>>& args);
  core::Status Receive(std::optional<std::string>* out, std::string* sqlstate = nullptr);
  void Discard();
  // All rows of one column each... (column-major is enough for our queries).
  core::Status Rows(const std::string& sql, std::vector<std::vector<std::optional<std::string>>>* rows);
  PGconn* handle() const { return conn_; }
  void Close();

 private:
  PGconn* conn_ = nullptr;
  bool pending_ = false;  // a query sent, its reply not yet received
};

}  // namespace syncline::client
