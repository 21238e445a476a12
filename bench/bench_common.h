// What the benchmark drivers share (bench/sqlite_bench.cc, bench/sqlite_gc.cc):
// the JSON result lines bench/report.py reads, the 5-column rows, a SQLite
// connection with the extension loaded, the command line.
#ifndef SYNCLINE_BENCH_BENCH_COMMON_H_
#define SYNCLINE_BENCH_BENCH_COMMON_H_

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace syncline_bench {

using Clock = std::chrono::steady_clock;

[[noreturn]] inline void Die(const std::string& message) { throw std::runtime_error(message); }

inline double Seconds(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

inline std::string Num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

inline std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

inline std::string JsonArray(const std::vector<double>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i)
    out += (i ? "," : "") + Num(v[i]);
  return out + "]";
}

using Peers = std::map<std::string, std::vector<double>>;

// One metric: value (tracked / syncline) against baseline (plain), medians;
// the peers' samples (same workload, same run, interleaved) go along raw;
// `detail`, a JSON object's text, goes along as is (for the report's own
// tables).
inline void Report(const std::string& name, const std::string& unit, const std::vector<double>& samples,
                   const std::vector<double>& baseline_samples, const Peers& peers = {},
                   const std::string& detail = "") {
  double value = Median(samples), baseline = Median(baseline_samples);
  std::cout << "{\"name\":" << JsonString(name) << ",\"value\":" << Num(value) << ",\"unit\":" << JsonString(unit)
            << ",\"baseline\":" << Num(baseline) << ",\"ratio\":" << Num(baseline != 0 ? value / baseline : 0)
            << ",\"runs\":" << samples.size() << ",\"samples\":" << JsonArray(samples)
            << ",\"baseline_samples\":" << JsonArray(baseline_samples);
  if (!peers.empty()) {
    std::cout << ",\"peers\":{";
    const char* sep = "";
    for (const auto& [peer, peer_samples] : peers) {
      std::cout << sep << JsonString(peer) << ":" << JsonArray(peer_samples);
      sep = ",";
    }
    std::cout << "}";
  }
  if (!detail.empty()) std::cout << ",\"detail\":" << detail;
  std::cout << "}" << std::endl;
}

inline void Progress(const std::string& line) { std::cerr << "  " << line << std::endl; }

// ---------------------------------------------------------------- the rows

// The 5-column row: text uuid key, integer, text, real, blob (32 bytes).
struct Row {
  std::string id;
  std::int64_t n;
  std::string s;
  double r;
  std::string b;
};

inline std::uint64_t SplitMix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline std::vector<Row> MakeRows(int count) {
  std::vector<Row> rows(count);
  std::uint64_t state = 42;
  for (int i = 0; i < count; ++i) {
    std::uint64_t hi = SplitMix(state), lo = SplitMix(state);
    hi = (hi & ~0xf000ULL) | 0x4000ULL;                  // version 4
    lo = (lo & ~(0xc000ULL << 48)) | (0x8000ULL << 48);  // variant 10
    char id[40];
    std::snprintf(id, sizeof id, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                  static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                  static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffULL));
    Row& row = rows[i];
    row.id = id;
    row.n = i + 1;
    row.s = "text value for row " + std::to_string(i + 1) + ", lorem ipsum";
    row.r = (i + 1) * 0.5 + 0.25;
    row.b.resize(32);
    for (int k = 0; k < 32; k += 8) {
      std::uint64_t x = SplitMix(state);
      std::memcpy(&row.b[k], &x, 8);
    }
  }
  return rows;
}

// ---------------------------------------------------------------- SQLite

class Db {
 public:
  Db(const std::string& path, const std::string& ext, bool fresh) {
    if (fresh)
      for (const char* suffix : {"", "-wal", "-shm"})
        unlink((path + suffix).c_str());
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) Die("open " + path + ": " + sqlite3_errmsg(db_));
    if (!ext.empty()) {
      sqlite3_enable_load_extension(db_, 1);
      char* err = nullptr;
      if (sqlite3_load_extension(db_, ext.c_str(), nullptr, &err) != SQLITE_OK) {
        std::string message = err ? err : "?";
        sqlite3_free(err);
        Die("load " + ext + ": " + message);
      }
    }
    Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  }
  ~Db() { sqlite3_close_v2(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string message = err ? err : "?";
      sqlite3_free(err);
      Die("sqlite: " + sql.substr(0, 80) + ": " + message);
    }
  }
  std::int64_t Int(const std::string& sql) {
    sqlite3_stmt* stmt = Prepare(sql);
    if (sqlite3_step(stmt) != SQLITE_ROW) Die("sqlite: no row from " + sql);
    std::int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
  }
  sqlite3_stmt* Prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
      Die("prepare " + sql + ": " + sqlite3_errmsg(db_));
    return stmt;
  }
  void Step(sqlite3_stmt* stmt, int want) {
    int rc = sqlite3_step(stmt);
    if (rc != want) Die(std::string("step: ") + sqlite3_errmsg(db_));
  }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

struct Stmt {
  explicit Stmt(sqlite3_stmt* s) : s(s) {}
  ~Stmt() { sqlite3_finalize(s); }
  sqlite3_stmt* s;
};

inline constexpr char kSqliteTable[] = "CREATE TABLE items(id TEXT PRIMARY KEY, n INTEGER, s TEXT, r REAL, b BLOB)";

inline void CreateItems(Db& db, bool tracked) {
  db.Exec(kSqliteTable);
  if (tracked) db.Exec("SELECT syncline_track('items')");
}

inline void BindRow(sqlite3_stmt* stmt, const Row& row) {
  sqlite3_bind_text(stmt, 1, row.id.data(), static_cast<int>(row.id.size()), SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, row.n);
  sqlite3_bind_text(stmt, 3, row.s.data(), static_cast<int>(row.s.size()), SQLITE_STATIC);
  sqlite3_bind_double(stmt, 4, row.r);
  sqlite3_bind_blob(stmt, 5, row.b.data(), static_cast<int>(row.b.size()), SQLITE_STATIC);
}

// Inserts rows [begin, end) with one prepared statement, `per_txn` rows a
// transaction.
inline void InsertRows(Db& db, const std::vector<Row>& rows, std::size_t per_txn) {
  Stmt insert(db.Prepare("INSERT INTO items(id, n, s, r, b) VALUES (?1, ?2, ?3, ?4, ?5)"));
  for (std::size_t i = 0; i < rows.size(); i += per_txn) {
    db.Exec("BEGIN");
    for (std::size_t k = i; k < std::min(rows.size(), i + per_txn); ++k) {
      BindRow(insert.s, rows[k]);
      db.Step(insert.s, SQLITE_DONE);
      sqlite3_reset(insert.s);
    }
    db.Exec("COMMIT");
  }
}

inline std::int64_t FileSize(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) Die("stat " + path);
  return st.st_size;
}

struct Args {
  std::map<std::string, std::string> values;
  std::string Get(const std::string& key, const std::string& fallback = "") const {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second;
  }
  std::string Need(const std::string& key) const {
    auto it = values.find(key);
    if (it == values.end()) Die("missing --" + key);
    return it->second;
  }
  int Int(const std::string& key, int fallback) const { return std::stoi(Get(key, std::to_string(fallback))); }
};

// bench/sqlite_gc.cc: mode sqlite-gc, metadata per live row before and after
// garbage collection.
void RunSqliteGc(const Args& args);
void RunSqliteColumn(const Args& args);  // sqlite_column.cc

}  // namespace syncline_bench

#endif  // SYNCLINE_BENCH_BENCH_COMMON_H_
