// Test harness for the libpq suites: connections to the throwaway cluster of
// tests/pg/with_cluster.sh (PGHOST, PGPORT, PGUSER, PGDATABASE) and a fresh
// database with the extension per test.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace syncline::test {

// Query parameters, sent as text; std::nullopt is SQL NULL.
using Params = std::vector<std::optional<std::string>>;

class Pg {
 public:
  // Connects with the PG* environment variables; `dbname`, when given,
  // replaces PGDATABASE.
  explicit Pg(const std::string& dbname = "") {
    const char* keys[] = {"dbname", "application_name", nullptr};
    const char* values[] = {dbname.empty() ? nullptr : dbname.c_str(), "syncline_pg_tests", nullptr};
    conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/0);
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string message = PQerrorMessage(conn_);
      PQfinish(conn_);
      conn_ = nullptr;
      throw std::runtime_error("cannot connect to PostgreSQL (is PGHOST set? run under tests/pg/with_cluster.sh): " +
                               message);
    }
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~Pg() { PQfinish(conn_); }
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  PGconn* handle() const { return conn_; }

  // Runs SQL (several statements when there are no parameters); fails the
  // test on error.
  void Exec(const std::string& sql, const Params& params = {}) {
    std::string error = TryExec(sql, params);
    if (!error.empty()) ADD_FAILURE() << "SQL failed: " << sql.substr(0, 300) << "\n  error: " << error;
  }

  // Runs SQL; returns the error message (empty on success) and its SQLSTATE.
  std::string TryExec(const std::string& sql, const Params& params = {}, std::string* sqlstate = nullptr) {
    PGresult* result = Run(sql, params);
    std::string error = ErrorOf(result, sqlstate);
    PQclear(result);
    return error;
  }

  // The first value of the first row ("NULL" for NULL, "" for no row); fails
  // the test on error.
  std::string Text(const std::string& sql, const Params& params = {}) {
    auto rows = Rows(sql, params);
    if (rows.empty() || rows[0].empty()) return "";
    return rows[0][0] ? *rows[0][0] : "NULL";
  }

  // Every row, every value as text (std::nullopt for NULL); fails the test on
  // error.
  std::vector<std::vector<std::optional<std::string>>> Rows(const std::string& sql, const Params& params = {}) {
    std::vector<std::vector<std::optional<std::string>>> rows;
    PGresult* result = Run(sql, params);
    std::string error = ErrorOf(result, nullptr);
    if (!error.empty()) {
      ADD_FAILURE() << "query failed: " << sql.substr(0, 300) << "\n  error: " << error;
    } else {
      for (int r = 0; r < PQntuples(result); ++r) {
        rows.emplace_back();
        for (int c = 0; c < PQnfields(result); ++c) {
          if (PQgetisnull(result, r, c))
            rows.back().push_back(std::nullopt);
          else
            rows.back().push_back(std::string(PQgetvalue(result, r, c), PQgetlength(result, r, c)));
        }
      }
    }
    PQclear(result);
    return rows;
  }

  // The error a statement raises, empty if it succeeds.
  std::string Error(const std::string& sql, const Params& params = {}) { return TryExec(sql, params); }

  std::string NodeId() { return Text("SELECT syncline.node_id()::text"); }

 private:
  PGresult* Run(const std::string& sql, const Params& params) {
    if (params.empty()) return PQexec(conn_, sql.c_str());
    std::vector<const char*> values;
    for (const auto& param : params)
      values.push_back(param ? param->c_str() : nullptr);
    return PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                        0);
  }

  std::string ErrorOf(PGresult* result, std::string* sqlstate) {
    ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return "";
    if (sqlstate != nullptr) {
      const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
      *sqlstate = state ? state : "";
    }
    const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    if (primary != nullptr) return primary;
    std::string message = PQerrorMessage(conn_);
    return message.empty() ? "unknown error" : message;
  }

  PGconn* conn_ = nullptr;
};

// A database of its own for one test, with the extension installed; created
// from the cluster's default database and dropped (connections and all) at
// the end.
class TempDatabase {
 public:
  TempDatabase() {
    static std::atomic<int> counter{0};
    name_ = "syncline_t_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    Pg admin;
    admin.Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    admin.Exec("CREATE DATABASE " + name_ + " TEMPLATE template0 ENCODING 'UTF8'");
    Pg db(name_);
    db.Exec("CREATE EXTENSION syncline");
  }
  ~TempDatabase() {
    Pg admin;
    admin.Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  TempDatabase(const TempDatabase&) = delete;
  TempDatabase& operator=(const TempDatabase&) = delete;

  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

}  // namespace syncline::test
