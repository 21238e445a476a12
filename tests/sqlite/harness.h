// Test harness: real SQLite file databases with the built extension loaded
// (its path comes from $SYNCLINE_EXTENSION, set by `make sqlite-test`).
#pragma once

#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace syncline::test {

inline std::string ExtensionPath() {
  const char* path = std::getenv("SYNCLINE_EXTENSION");
  return path != nullptr ? path : "build/syncline";
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "syncline-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

class Db {
 public:
  explicit Db(const std::string& path, bool load_extension = true) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("cannot open " + path);
    if (load_extension) {
      sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, nullptr);
      char* error = nullptr;
      if (sqlite3_load_extension(db_, ExtensionPath().c_str(), nullptr, &error) != SQLITE_OK) {
        std::string message = error ? error : "?";
        sqlite3_free(error);
        throw std::runtime_error("cannot load extension: " + message);
      }
    }
  }
  ~Db() { sqlite3_close(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* handle() const { return db_; }

  // Runs SQL; fails the test on error.
  void Exec(const std::string& sql) {
    std::string error = TryExec(sql);
    if (!error.empty()) ADD_FAILURE() << "SQL failed: " << sql.substr(0, 300) << "\n  error: " << error;
  }

  // Runs SQL; returns the error message, empty on success.
  std::string TryExec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) == SQLITE_OK) return "";
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    return message;
  }

  // The first column of the first row as text (NULL -> "NULL"); binds
  // `args` as text parameters ?1, ?2, ... Fails the test on error.
  std::string Text(const std::string& sql, const std::vector<std::string>& args = {}) {
    std::string result, error;
    Query(sql, args, &result, &error);
    if (!error.empty()) ADD_FAILURE() << "query failed: " << sql.substr(0, 300) << "\n  error: " << error;
    return result;
  }

  // The error a query raises, empty if it succeeds.
  std::string Error(const std::string& sql, const std::vector<std::string>& args = {}) {
    std::string result, error;
    Query(sql, args, &result, &error);
    return error;
  }

  long long Int(const std::string& sql) { return std::stoll(Text(sql)); }

  // Every row of a table in primary key order, each value through quote(),
  // which tells types apart (1 vs 1.0 vs '1' vs X'31').
  std::string Dump(const std::string& table) {
    std::string columns = Text("SELECT group_concat('quote(\"' || name || '\")', ' || ''|'' || ') FROM "
                               "pragma_table_info(?1)",
                               {table});
    std::string keys = Text("SELECT group_concat('\"' || name || '\"', ', ') FROM (SELECT name FROM "
                            "pragma_table_info(?1) WHERE pk > 0 ORDER BY pk)",
                            {table});
    return Text("SELECT coalesce(group_concat(r, char(10)), '') FROM (SELECT " + columns + " AS r FROM \"" + table +
                "\" ORDER BY " + keys + ")");
  }

  std::string NodeId() { return Text("SELECT syncline_node_id()"); }

 private:
  void Query(const std::string& sql, const std::vector<std::string>& args, std::string* result, std::string* error) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      *error = sqlite3_errmsg(db_);
      return;
    }
    for (std::size_t i = 0; i < args.size(); ++i)
      sqlite3_bind_text(stmt, static_cast<int>(i + 1), args[i].c_str(), static_cast<int>(args[i].size()),
                        SQLITE_TRANSIENT);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      *result = text ? std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt, 0)) : "NULL";
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) rc = SQLITE_DONE;  // only the first row matters
    }
    if (rc != SQLITE_DONE) *error = sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
  }

  sqlite3* db_ = nullptr;
};

// Pulls every change `from` has that `to` did not originate, page by page,
// and applies each page to `to`. Returns the number of changes applied.
// `format` 2: pages carry column-merge rows' column stamps.
// `from_server`: `to` applies the pages as a device applies its server's.
inline long long Sync(Db& from, Db& to, int page = 50, int format = 1, bool from_server = false) {
  std::string options = "{\"exclude_origin\":\"" + to.NodeId() + "\", \"format\": " + std::to_string(format) + "}";
  std::string cursor = to.Text("SELECT syncline_peer_cursor(?1, ?2)", {from.NodeId(), options});
  long long applied = 0;
  while (true) {
    std::string batch =
        cursor == "NULL"
            ? from.Text("SELECT syncline_pull_since(NULL, " + std::to_string(page) + ", ?1)", {options})
            : from.Text("SELECT syncline_pull_since(?1, " + std::to_string(page) + ", ?2)", {cursor, options});
    std::string summary =
        to.Text("SELECT syncline_apply_push(?1, ?2)", {batch, from_server ? "{\"from_server\": true}" : "{}"});
    if (summary.empty()) return applied;
    applied += std::stoll(to.Text("SELECT json_extract(?1, '$.applied')", {summary}));
    cursor = to.Text("SELECT json_extract(?1, '$.cursor')", {summary});
    if (to.Text("SELECT json_extract(?1, '$.has_more')", {batch}) != "1") return applied;
  }
}

}  // namespace syncline::test
