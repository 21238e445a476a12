// Building blocks of the simulators (tests/sim/sim_test.cc,
// tests/sim/constraints_test.cc): the simulated tables, canonical text for
// values, keys and rows, the nodes of both engines behind one interface
// (local SQL, pull_since, apply_push, peer_cursor, and reads of the user's
// rows and of syncline's metadata), and a run's seeds and step logs.
#pragma once

#include <libpq-fe.h>
#include <sqlite3.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/changeset.h"
#include "core/hlc.h"
#include "core/json.h"
#include "core/value.h"
#include "tests/pg/pg_harness.h"
#include "tests/sqlite/harness.h"

namespace syncline::sim {

using core::Value;

// --- a run: its size, its seeds, each scenario's step log -----------------------

inline std::int64_t EnvInt(const char* name, std::int64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  return std::strtoll(text, nullptr, 0);
}

inline std::uint64_t SplitMix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The scenarios' seeds: SYNCLINE_SIM_SEED replays one scenario; otherwise
// `scenarios` seeds derived from SYNCLINE_SIM_BASE_SEED (default random).
// Says on stdout what it runs, so that a run can be replayed.
inline std::vector<std::uint64_t> ScenarioSeeds(std::int64_t scenarios, int steps) {
  const char* replay = std::getenv("SYNCLINE_SIM_SEED");
  if (replay != nullptr && *replay != '\0') {
    std::uint64_t seed = std::strtoull(replay, nullptr, 0);
    std::cout << "[ sim      ] replaying seed " << seed << ", " << steps << " steps" << std::endl;
    return {seed};
  }
  std::uint64_t base = static_cast<std::uint64_t>(EnvInt("SYNCLINE_SIM_BASE_SEED", 0));
  if (base == 0) base = std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32);
  std::vector<std::uint64_t> seeds;
  for (std::int64_t i = 0; i < scenarios; ++i)
    seeds.push_back(SplitMix(base + static_cast<std::uint64_t>(i)));
  std::cout << "[ sim      ] " << seeds.size() << " scenarios of " << steps << " steps, base seed " << base
            << " (SYNCLINE_SIM_BASE_SEED replays the run)" << std::endl;
  return seeds;
}

// A scenario's randomness, all drawn from its seed.
class Random {
 public:
  explicit Random(std::uint64_t seed) : rng_(seed) {}

  std::int64_t Uniform(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_);
  }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename T, std::size_t N> const T& Pick(const T (&items)[N]) { return items[Uniform(0, N - 1)]; }
  template <typename T> const T& Pick(const std::vector<T>& items) {
    return items[Uniform(0, static_cast<std::int64_t>(items.size()) - 1)];
  }
  std::uint64_t Bits() { return rng_(); }

 private:
  std::mt19937_64 rng_;
};

inline std::string Short(const std::string& text, std::size_t max = 400) {
  return text.size() <= max ? text : text.substr(0, max) + "...(" + std::to_string(text.size()) + " bytes)";
}

// One scenario's steps, each line stamped with its step and the time since
// the scenario began; the tail goes into a failure's message, the whole log
// to a file.
class StepLog {
 public:
  StepLog(std::string name, std::uint64_t seed)
      : path_("/tmp/" + name + "-" + std::to_string(seed) + ".log"), seed_(seed) {}

  void Add(int step, const std::string& line) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
    lines_.push_back("[" + std::to_string(step) + " +" + std::to_string(ms.count()) + "ms] " + line);
  }

  std::string Tail(std::size_t count) const {
    std::string tail;
    for (std::size_t i = lines_.size() > count ? lines_.size() - count : 0; i < lines_.size(); ++i)
      tail += "  " + Short(lines_[i], 600) + "\n";
    return tail;
  }

  void Save() const {
    std::ofstream out(path_);
    out << "seed " << seed_ << "\n";
    for (const std::string& line : lines_)
      out << line << "\n";
  }

  const std::string& path() const { return path_; }

  // What a failed scenario reports: how to replay it, the step, the last
  // `tail` lines and where the whole log is.
  std::string Failure(int steps, int step, const std::string& message, std::size_t tail) const {
    return "seed " + std::to_string(seed_) + " (replay: SYNCLINE_SIM_SEED=" + std::to_string(seed_) +
           " SYNCLINE_SIM_STEPS=" + std::to_string(steps) + "), step " + std::to_string(step) + ": " + message +
           "\nlast steps:\n" + Tail(tail) + "full log: " + path_;
  }

 private:
  std::string path_;
  std::uint64_t seed_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::vector<std::string> lines_;
};

enum class ColType { kInteger, kText, kReal };

struct Column {
  std::string name;
  ColType type;
};

struct TableSpec {
  std::string name;
  std::vector<Column> keys;    // primary key columns, in key order
  std::vector<Column> values;  // the other columns
  std::string sqlite_ddl;
  std::string pg_ddl;
};

// The two tables every node holds.
inline const std::vector<TableSpec>& Tables() {
  static const std::vector<TableSpec> tables = {
      {"t1",
       {{"k", ColType::kText}},
       {{"a", ColType::kInteger}, {"b", ColType::kText}, {"c", ColType::kReal}},
       "CREATE TABLE t1(k TEXT PRIMARY KEY, a INTEGER, b TEXT, c REAL)",
       "CREATE TABLE t1(k text PRIMARY KEY, a bigint, b text, c double precision)"},
      {"t2",
       {{"k1", ColType::kInteger}, {"k2", ColType::kText}},
       {{"v", ColType::kText}},
       "CREATE TABLE t2(k1 INTEGER, k2 TEXT, v TEXT, PRIMARY KEY(k1, k2))",
       "CREATE TABLE t2(k1 integer, k2 text, v text, PRIMARY KEY(k1, k2))"},
  };
  return tables;
}

inline const TableSpec* FindTable(const std::string& name) {
  for (const TableSpec& spec : Tables())
    if (spec.name == name) return &spec;
  return nullptr;
}

inline std::string ShortestDouble(double v) {
  char buf[40];
  auto result = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, result.ptr);
}

// A value as the changeset writes it: 1, 1.0, "t", null. Tells every type
// apart, so two texts are equal exactly when the values are the same.
inline std::string ValueText(const Value& value) {
  if ((value.type == Value::Type::kText || value.type == Value::Type::kBlob) && !core::IsValidUtf8(value.bytes))
    return "<invalid UTF-8>";
  std::string out;
  core::JsonWriter writer(&out);
  core::WriteValue(writer, value);
  return out;
}

// A row's identity as the metadata stores it: ["k3"], [2,"x"].
inline std::string KeyText(const std::vector<Value>& key) {
  std::string out;
  core::Status status = core::EncodeKey(key, &out);
  return status.ok() ? out : "<" + status.message() + ">";
}

struct Row {
  std::vector<Value> key;
  std::vector<Value> values;  // in TableSpec::values order
};

inline std::string ValuesText(const std::vector<Value>& values) {
  std::string out = "(";
  for (std::size_t i = 0; i < values.size(); ++i)
    out += (i > 0 ? ", " : "") + ValueText(values[i]);
  return out + ")";
}

// Key text -> row; a std::map, so dumps come out in one order everywhere.
using TableState = std::map<std::string, Row>;

inline std::string Dump(const TableState& table) {
  std::string out;
  for (const auto& [key, row] : table)
    out += key + " " + ValuesText(row.values) + "\n";
  return out;
}

// A row's metadata: its current version's stamp, origin and tombstone flag.
struct Meta {
  core::Hlc hlc = 0;
  std::string node;  // canonical node id (never 0: the local ref is resolved)
  bool deleted = false;
};

inline std::string MetaText(const Meta& meta) {
  return core::HlcToText(meta.hlc) + "/" + meta.node.substr(0, 8) + (meta.deleted ? " deleted" : "");
}

using MetaState = std::map<std::string, Meta>;  // key text -> metadata

inline std::string Dump(const MetaState& meta) {
  std::string out;
  for (const auto& [key, m] : meta)
    out += key + " " + MetaText(m) + "\n";
  return out;
}

struct Result {
  std::string error;                     // empty on success
  std::vector<std::vector<Value>> rows;  // PostgreSQL: every non-NULL value as text
};

// One database of either engine.
class Node {
 public:
  explicit Node(std::string label) : label_(std::move(label)) {}
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& label() const { return label_; }
  const std::string& id() const { return id_; }
  virtual bool is_pg() const = 0;

  // Runs one statement; values are bound as parameters.
  virtual Result Query(const std::string& sql, const std::vector<Value>& params = {}) = 0;
  std::string Exec(const std::string& sql, const std::vector<Value>& params = {}) { return Query(sql, params).error; }
  // Parameter i (from 1) of a statement, typed where the engine needs it.
  virtual std::string Param(int i, ColType type) const = 0;

  // pull_since; without `options` the two-argument form. Returns the batch.
  virtual std::optional<std::string> Pull(const std::optional<std::string>& cursor, int limit,
                                          const std::optional<std::string>& options, std::string* error) = 0;
  // apply_push; returns the summary.
  virtual std::optional<std::string> Apply(const std::string& batch, std::string* error) = 0;
  // peer_cursor; without `options` the one-argument form.
  virtual std::optional<std::string> PeerCursor(const std::string& node, const std::optional<std::string>& options,
                                                std::string* error) = 0;
  virtual void Reconnect() = 0;

  // The user's rows of a table, key text -> row.
  TableState ReadTable(const TableSpec& spec, std::string* error) {
    std::string columns;
    for (const Column& column : spec.keys)
      columns += (columns.empty() ? "" : ", ") + Select(column);
    for (const Column& column : spec.values)
      columns += ", " + Select(column);
    Result result = Query("SELECT " + columns + " FROM " + spec.name);
    TableState table;
    if (!result.error.empty()) {
      *error = result.error;
      return table;
    }
    for (auto& values : result.rows) {
      Row row;
      std::size_t c = 0;
      for (const Column& column : spec.keys)
        row.key.push_back(Typed(values[c++], column.type));
      for (const Column& column : spec.values)
        row.values.push_back(Typed(values[c++], column.type));
      table[KeyText(row.key)] = row;
    }
    return table;
  }

  // syncline's metadata of a table, key text -> (hlc, node, deleted).
  MetaState ReadMeta(const TableSpec& spec, std::string* error) {
    Result result = Query(MetaSql(), {Value::Text(spec.name)});
    MetaState meta;
    if (!result.error.empty()) {
      *error = result.error;
      return meta;
    }
    for (auto& values : result.rows) {
      Meta m;
      m.hlc = static_cast<core::Hlc>(Int(values[1]));
      m.node = Int(values[2]) == 0 ? id_ : values[3].bytes;
      m.deleted = Int(values[4]) != 0;
      meta[values[0].bytes] = m;
    }
    return meta;
  }

 protected:
  virtual std::string Select(const Column& column) const = 0;
  // Columns: pk, hlc, node ref, node id (NULL for ref 0), deleted (0/1).
  virtual std::string MetaSql() const = 0;
  // PostgreSQL returns text: read it as the column's type.
  virtual Value Typed(const Value& value, ColType type) const = 0;

  static std::int64_t Int(const Value& value) {
    if (value.type == Value::Type::kInteger) return value.integer;
    if (value.type == Value::Type::kText) return std::strtoll(value.bytes.c_str(), nullptr, 10);
    return 0;
  }

  std::string label_;
  std::string id_;
};

// A SQLite client file with the extension loaded.
class SqliteNode : public Node {
 public:
  // kNew: a new file that gets the simulator's tables (Tables()), tracked.
  // kCloned: a file the sync client cloned, taken as it is (its tables, its
  // journal mode: the client keeps it in WAL mode).
  enum class File { kNew, kCloned };

  SqliteNode(std::string label, std::string path, File file = File::kNew)
      : Node(std::move(label)), path_(std::move(path)), cloned_(file == File::kCloned) {
    Open();
    for (const TableSpec& spec : cloned_ ? std::vector<TableSpec>() : Tables()) {
      Check(Exec(spec.sqlite_ddl));
      Check(Query("SELECT syncline_track(?1)", {Value::Text(spec.name)}).error);
    }
    Result result = Query("SELECT syncline_node_id()");
    if (!result.error.empty() || result.rows.empty()) throw std::runtime_error("syncline_node_id: " + result.error);
    id_ = result.rows[0][0].bytes;
  }

  bool is_pg() const override { return false; }

  void Reconnect() override {
    db_.reset();
    Open();
  }

  // This connection's simulated clock offset (syncline_config('clock_skew_ms')).
  std::string SetSkew(std::int64_t ms) {
    return Query("SELECT syncline_config('clock_skew_ms', ?1)", {Value::Integer(ms)}).error;
  }

  Result Query(const std::string& sql, const std::vector<Value>& params = {}) override {
    Result result;
    sqlite3* db = db_->handle();
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      result.error = sqlite3_errmsg(db);
      return result;
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Value& p = params[i];
      int at = static_cast<int>(i + 1);
      switch (p.type) {
        case Value::Type::kNull: sqlite3_bind_null(stmt, at); break;
        case Value::Type::kInteger: sqlite3_bind_int64(stmt, at, p.integer); break;
        case Value::Type::kReal: sqlite3_bind_double(stmt, at, p.real); break;
        case Value::Type::kText:
          sqlite3_bind_text(stmt, at, p.bytes.data(), static_cast<int>(p.bytes.size()), SQLITE_TRANSIENT);
          break;
        case Value::Type::kBlob:
          sqlite3_bind_blob(stmt, at, p.bytes.data(), static_cast<int>(p.bytes.size()), SQLITE_TRANSIENT);
          break;
      }
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::vector<Value> row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_NULL: row.push_back(Value::Null()); break;
          case SQLITE_INTEGER: row.push_back(Value::Integer(sqlite3_column_int64(stmt, c))); break;
          case SQLITE_FLOAT: row.push_back(Value::Real(sqlite3_column_double(stmt, c))); break;
          case SQLITE_TEXT:
            row.push_back(Value::Text(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)),
                                                  sqlite3_column_bytes(stmt, c))));
            break;
          default:
            row.push_back(Value::Blob(
                std::string(static_cast<const char*>(sqlite3_column_blob(stmt, c)), sqlite3_column_bytes(stmt, c))));
        }
      }
      result.rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) result.error = sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
    return result;
  }

  std::string Param(int i, ColType) const override { return "?" + std::to_string(i); }

  std::optional<std::string> Pull(const std::optional<std::string>& cursor, int limit,
                                  const std::optional<std::string>& options, std::string* error) override {
    std::vector<Value> params = {cursor ? Value::Text(*cursor) : Value::Null(), Value::Integer(limit)};
    if (options) params.push_back(Value::Text(*options));
    return One(options ? "SELECT syncline_pull_since(?1, ?2, ?3)" : "SELECT syncline_pull_since(?1, ?2)", params,
               error);
  }

  std::optional<std::string> Apply(const std::string& batch, std::string* error) override {
    return One("SELECT syncline_apply_push(?1)", {Value::Text(batch)}, error);
  }

  std::optional<std::string> PeerCursor(const std::string& node, const std::optional<std::string>& options,
                                        std::string* error) override {
    std::vector<Value> params = {Value::Text(node)};
    if (options) params.push_back(Value::Text(*options));
    std::string failure;
    auto cursor =
        One(options ? "SELECT syncline_peer_cursor(?1, ?2)" : "SELECT syncline_peer_cursor(?1)", params, &failure);
    if (!failure.empty()) *error = failure;
    return cursor;
  }

 protected:
  std::string Select(const Column& column) const override { return column.name; }
  // A UUID key is kept as a 17-byte blob (docs/sqlite.md, "metadata key"):
  // a case tag (1: lower, 2: upper), then the 16 bytes. It is read back as
  // the protocol's key text, as the server keeps it.
  std::string MetaSql() const override {
    return "SELECT CASE WHEN h IS NULL THEN pk ELSE '[\"' || (CASE substr(h, 1, 2) WHEN '01' THEN lower(u) ELSE u "
           "END) || '\"]' END, hlc, node, node_id, deleted FROM (SELECT *, substr(h, 3, 8) || '-' || substr(h, 11, 4) "
           "|| '-' || substr(h, 15, 4) || '-' || substr(h, 19, 4) || '-' || substr(h, 23, 12) AS u FROM (SELECT "
           "r.pk, r.hlc, r.node, n.node_id, r.deleted, CASE typeof(r.pk) WHEN 'blob' THEN hex(r.pk) END AS h FROM "
           "syncline_rows r LEFT JOIN syncline_nodes n ON n.ref = r.node WHERE r.tid = (SELECT tid FROM "
           "syncline_tables WHERE name = ?1)))";
  }
  Value Typed(const Value& value, ColType) const override { return value; }

 private:
  void Open() {
    db_ = std::make_unique<test::Db>(path_);
    if (cloned_) return;
    // Durability is not under test; speed is welcome.
    Check(Exec("PRAGMA synchronous = OFF"));
    Check(Exec("PRAGMA journal_mode = MEMORY"));
  }
  static void Check(const std::string& error) {
    if (!error.empty()) throw std::runtime_error("client set-up: " + error);
  }
  // The first value of one row; nullopt for NULL or on error.
  std::optional<std::string> One(const std::string& sql, const std::vector<Value>& params, std::string* error) {
    Result result = Query(sql, params);
    if (!result.error.empty()) {
      *error = result.error;
      return std::nullopt;
    }
    if (result.rows.empty() || result.rows[0][0].type == Value::Type::kNull) return std::nullopt;
    return result.rows[0][0].bytes;
  }

  std::string path_;
  bool cloned_ = false;
  std::unique_ptr<test::Db> db_;
};

// The PostgreSQL server: one database of the throwaway cluster.
class PgNode : public Node {
 public:
  PgNode(std::string label, std::string dbname) : Node(std::move(label)), dbname_(std::move(dbname)) {
    Reconnect();
    Result result = Query("SELECT syncline.node_id()::text");
    if (!result.error.empty() || result.rows.empty()) throw std::runtime_error("syncline.node_id: " + result.error);
    id_ = result.rows[0][0].bytes;
  }

  bool is_pg() const override { return true; }

  void Reconnect() override {
    pg_.reset();
    pg_ = std::make_unique<test::Pg>(dbname_);
    // A second session may hold row locks across steps: wait briefly, then
    // fail the statement rather than hang the (single-threaded) simulation.
    std::string error = ExecScript("SET lock_timeout = '20ms'");
    if (!error.empty()) throw std::runtime_error("SET lock_timeout: " + error);
  }

  // Several statements, no parameters.
  std::string ExecScript(const std::string& sql) {
    PGresult* result = PQexec(pg_->handle(), sql.c_str());
    std::string error = Error(result);
    PQclear(result);
    return error;
  }

  Result Query(const std::string& sql, const std::vector<Value>& params = {}) override {
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Value& p = params[i];
      switch (p.type) {
        case Value::Type::kNull: continue;
        case Value::Type::kInteger: texts[i] = std::to_string(p.integer); break;
        case Value::Type::kReal: texts[i] = ShortestDouble(p.real); break;
        default: texts[i] = p.bytes;
      }
      values[i] = texts[i].c_str();
    }
    Result out;
    PGresult* result = PQexecParams(pg_->handle(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                    nullptr, nullptr, 0);
    out.error = Error(result);
    if (out.error.empty()) {
      for (int r = 0; r < PQntuples(result); ++r) {
        std::vector<Value> row;
        for (int c = 0; c < PQnfields(result); ++c)
          row.push_back(PQgetisnull(result, r, c)
                            ? Value::Null()
                            : Value::Text(std::string(PQgetvalue(result, r, c), PQgetlength(result, r, c))));
        out.rows.push_back(std::move(row));
      }
    }
    PQclear(result);
    return out;
  }

  std::string Param(int i, ColType type) const override {
    const char* cast = type == ColType::kInteger ? "::bigint" : type == ColType::kReal ? "::float8" : "::text";
    return "$" + std::to_string(i) + cast;
  }

  std::optional<std::string> Pull(const std::optional<std::string>& cursor, int limit,
                                  const std::optional<std::string>& options, std::string* error) override {
    std::vector<Value> params = {cursor ? Value::Text(*cursor) : Value::Null(), Value::Integer(limit)};
    if (options) params.push_back(Value::Text(*options));
    return One(options ? "SELECT syncline.pull_since($1::text, $2::int, $3::jsonb)::text"
                       : "SELECT syncline.pull_since($1::text, $2::int)::text",
               params, error);
  }

  std::optional<std::string> Apply(const std::string& batch, std::string* error) override {
    return One("SELECT syncline.apply_push($1::text)::text", {Value::Text(batch)}, error);
  }

  std::optional<std::string> PeerCursor(const std::string& node, const std::optional<std::string>& options,
                                        std::string* error) override {
    std::vector<Value> params = {Value::Text(node)};
    if (options) params.push_back(Value::Text(*options));
    return One(options ? "SELECT syncline.peer_cursor($1::uuid, $2::jsonb)" : "SELECT syncline.peer_cursor($1::uuid)",
               params, error);
  }

 protected:
  std::string Select(const Column& column) const override { return column.name + "::text"; }
  std::string MetaSql() const override {
    return "SELECT r.pk, r.hlc, r.node, n.node_id, r.deleted::int FROM syncline.rows r JOIN syncline.tables t USING "
           "(tid) LEFT JOIN syncline.nodes n ON n.ref = r.node WHERE t.table_name = $1";
  }
  Value Typed(const Value& value, ColType type) const override {
    if (value.type != Value::Type::kText) return value;
    switch (type) {
      case ColType::kInteger: return Value::Integer(std::strtoll(value.bytes.c_str(), nullptr, 10));
      case ColType::kReal: return Value::Real(std::strtod(value.bytes.c_str(), nullptr));
      default: return value;
    }
  }

 private:
  std::string Error(PGresult* result) {
    ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return "";
    const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    std::string message = primary != nullptr ? primary : PQerrorMessage(pg_->handle());
    return message.empty() ? "unknown error" : message;
  }
  std::optional<std::string> One(const std::string& sql, const std::vector<Value>& params, std::string* error) {
    Result result = Query(sql, params);
    if (!result.error.empty()) {
      *error = result.error;
      return std::nullopt;
    }
    if (result.rows.empty() || result.rows[0][0].type == Value::Type::kNull) return std::nullopt;
    return result.rows[0][0].bytes;
  }

  std::string dbname_;
  std::unique_ptr<test::Pg> pg_;
};

// Runs one scenario per seed, `run(seed, server database, a temporary
// directory)`, true when it passed: on a fresh server database (with the
// extension) every `per_database` scenarios, whose tables `reset_sql` drops
// and creates anew before each. Stops after 5 failed scenarios; returns the
// number that failed.
inline int RunScenarios(const std::vector<std::uint64_t>& seeds, std::size_t per_database, const std::string& reset_sql,
                        const std::function<bool(std::uint64_t, const std::string&, const test::TempDir&)>& run) {
  std::unique_ptr<test::TempDatabase> database;
  int failures = 0;
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    if (i % per_database == 0) {
      database.reset();
      database = std::make_unique<test::TempDatabase>();
    }
    SCOPED_TRACE("seed " + std::to_string(seeds[i]));
    {
      PgNode setup("setup", database->name());
      std::string error = setup.ExecScript(reset_sql);
      if (!error.empty()) {
        ADD_FAILURE() << "resetting the server's tables: " << error;
        return failures + 1;
      }
    }
    test::TempDir dir;
    if (!run(seeds[i], database->name(), dir) && ++failures >= 5) {
      ADD_FAILURE() << "stopping after 5 failed scenarios";
      break;
    }
  }
  return failures;
}

// A server pull delivers only what transactions older than every running
// one wrote (docs/postgres.md, "Gap-free pulls"), so a transaction that
// holds an xid (autovacuum's ANALYZE, say) can hold the final syncs back.
// Waits until no other backend holds one (at most 30 s); returns an error,
// empty on success, and sets `waited_for` to the last one it waited for.
inline std::string WaitForQuietServer(PgNode& server, std::string* waited_for) {
  waited_for->clear();
  for (int attempt = 0; attempt < 3000; ++attempt) {
    Result result =
        server.Query("SELECT backend_type || ' ' || coalesce(state, '') || ' xid ' || backend_xid::text || ': ' || "
                     "left(query, 80) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()");
    if (!result.error.empty()) return "pg_stat_activity: " + result.error;
    if (result.rows.empty()) return "";
    *waited_for = result.rows[0][0].bytes;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return "a transaction on the server holds pulls back for 30 s: " + *waited_for;
}

}  // namespace syncline::sim
