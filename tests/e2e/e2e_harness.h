// End-to-end harness: the real `syncline` CLI (a child process) against the
// throwaway cluster of tests/pg/with_cluster.sh and real SQLite client files.
//
//   SYNCLINE_CLI        the CLI binary (default build/bin/syncline)
//   SYNCLINE_EXTENSION  the SQLite extension, for the CLI and for the test's
//                       own client connections
//   SYNCLINE_PG_CTL     pg_ctl with the cluster's options, to stop and
//                       restart the server (offline clients)
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/node_id.h"
#include "tests/pg/pg_harness.h"
#include "tests/sqlite/harness.h"

extern char** environ;

namespace syncline::test {

// --- child processes ---------------------------------------------------------

inline std::string CliPath() {
  const char* path = std::getenv("SYNCLINE_CLI");
  return path != nullptr && *path != '\0' ? path : "build/bin/syncline";
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Where child processes write their stdout and stderr: one directory for the
// test binary, one pair of files per process.
inline std::string OutputFile(const std::string& suffix) {
  static TempDir dir;
  static std::atomic<int> counter{0};
  return dir.File("proc" + std::to_string(counter++) + suffix);
}

struct ProcessResult {
  int exit_code = -1;  // the exit status, or -1 when killed by a signal
  int signal = 0;      // the signal that ended it, 0 if it exited
  bool timed_out = false;
  std::string out, err;

  std::string Describe() const {
    std::string text = signal != 0 ? "killed by signal " + std::to_string(signal) : "exit " + std::to_string(exit_code);
    if (timed_out) text += " (timed out)";
    return text + "\n--- stdout:\n" + out + "--- stderr:\n" + err;
  }
};

// A child process with its stdout and stderr in files. The destructor kills
// one still running, so a failed test leaves no stray client behind.
class Process {
 public:
  // argv[0] is looked up in PATH when it has no slash.
  explicit Process(const std::vector<std::string>& argv)
      : out_path_(OutputFile(".out")), err_path_(OutputFile(".err")) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (const std::string& arg : argv)
      args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    int rc = posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      ADD_FAILURE() << "cannot start " << argv[0] << ": " << std::strerror(rc);
    }
  }
  ~Process() {
    if (Running()) {
      kill(pid_, SIGKILL);
      Wait(10);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }

  bool Running() {
    if (pid_ <= 0 || done_) return false;
    int status = 0;
    pid_t rc = waitpid(pid_, &status, WNOHANG);
    if (rc == pid_) Reap(status);
    return !done_;
  }

  void Signal(int sig) {
    if (Running()) kill(pid_, sig);
  }

  // Waits at most `timeout_s` (then kills it) and returns how it ended.
  ProcessResult Wait(double timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    bool timed_out = false;
    while (Running()) {
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        kill(pid_, SIGKILL);
        int status = 0;
        if (waitpid(pid_, &status, 0) == pid_) Reap(status);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    result_.timed_out = timed_out;
    result_.out = ReadWholeFile(out_path_);
    result_.err = ReadWholeFile(err_path_);
    return result_;
  }

  // What it wrote to stderr so far.
  std::string Stderr() const { return ReadWholeFile(err_path_); }

 private:
  void Reap(int status) {
    done_ = true;
    if (WIFEXITED(status)) result_.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result_.signal = WTERMSIG(status);
  }

  pid_t pid_ = -1;
  bool done_ = false;
  std::string out_path_, err_path_;
  ProcessResult result_;
};

inline ProcessResult RunProcess(const std::vector<std::string>& argv, double timeout_s = 120) {
  Process process(argv);
  return process.Wait(timeout_s);
}

// `syncline ARGS...`, waited for.
inline ProcessResult RunCli(std::vector<std::string> args, double timeout_s = 120) {
  args.insert(args.begin(), CliPath());
  return RunProcess(args, timeout_s);
}

// --- the server's life -------------------------------------------------------

inline bool HavePgCtl() { return std::getenv("SYNCLINE_PG_CTL") != nullptr; }

// `$SYNCLINE_PG_CTL <action>` through the shell (the variable holds quoted
// options, hence the eval).
inline bool PgCtl(const std::string& action) {
  if (!HavePgCtl()) return false;
  std::string command = "eval \"$SYNCLINE_PG_CTL " + action + "\" >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

// Stops the server; restarts it when asked or, at the latest, when the
// guard goes out of scope, so that a failing test leaves the cluster up.
class ServerOutage {
 public:
  ServerOutage() { down_ = PgCtl("stop -m fast -w"); }
  ~ServerOutage() { End(); }
  ServerOutage(const ServerOutage&) = delete;
  ServerOutage& operator=(const ServerOutage&) = delete;

  bool down() const { return down_; }
  bool End() {
    if (!down_) return true;
    down_ = !PgCtl("start -w");
    return !down_;
  }

 private:
  bool down_ = false;
};

// --- values and rows ---------------------------------------------------------

using Row = std::vector<std::optional<std::string>>;

// A fresh row id: a version 4 UUID, lower case (the canonical form).
inline std::string NewUuid() { return core::NewNodeId(); }

inline void Sleep(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Polls `condition` every 50 ms for at most `seconds`.
inline bool WaitFor(const std::function<bool()>& condition, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    Sleep(50);
  }
}

inline std::string ShortestDouble(double v) {
  char buf[40];
  auto result = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, result.ptr);
}

// A decimal's text without insignificant zeros ("12.50" -> "12.5", "3.0" ->
// "3"): PostgreSQL's numeric(10,2) keeps scale, SQLite's NUMERIC affinity
// stores 2.00 as the integer 2 and 1.98 as a real.
inline std::string Decimal(std::string text) {
  if (text.empty() || text.find_first_not_of("-0123456789.") != std::string::npos) return text;
  if (text.find('.') != std::string::npos) {
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') text.pop_back();
  }
  if (text == "-0") text = "0";
  return text;
}

// One row as one line: values quoted SQL-style, NULL bare.
inline std::string Line(const Row& row) {
  std::string line;
  for (std::size_t i = 0; i < row.size(); ++i) {
    if (i > 0) line += ", ";
    if (!row[i]) {
      line += "NULL";
      continue;
    }
    line += '\'';
    for (char c : *row[i]) {
      if (c == '\'') line += '\'';
      line += c;
    }
    line += '\'';
  }
  return line;
}

inline std::string Lines(const std::vector<Row>& rows) {
  std::string text;
  for (const Row& row : rows)
    text += Line(row) + "\n";
  return text;
}

// For failure messages: the first line where two dumps differ.
inline std::string FirstDifference(const std::string& expected, const std::string& actual) {
  std::istringstream a(expected), b(actual);
  std::string la, lb;
  for (int line = 1;; ++line) {
    bool more_a = static_cast<bool>(std::getline(a, la)), more_b = static_cast<bool>(std::getline(b, lb));
    if (!more_a && !more_b) return "no difference";
    if (!more_a || !more_b || la != lb)
      return "line " + std::to_string(line) + ":\n  expected: " + (more_a ? la : "(end)") +
             "\n  actual:   " + (more_b ? lb : "(end)");
  }
}

// EXPECT_PRED_FORMAT2(SameRows, expected, actual): dumps compared whole, the
// failure naming only the first differing line (gtest's diff of two large
// dumps takes minutes).
inline ::testing::AssertionResult SameRows(const char* expected_expr, const char* actual_expr,
                                           const std::string& expected, const std::string& actual) {
  if (expected == actual) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expected_expr << " and " << actual_expr << " differ ("
                                       << std::count(expected.begin(), expected.end(), '\n') << " vs "
                                       << std::count(actual.begin(), actual.end(), '\n') << " lines) at "
                                       << FirstDifference(expected, actual);
}

// Every row of a SQLite query, values as text: integers in decimal, reals in
// their shortest round-trip form, NULL as nullopt.
inline std::vector<Row> SqliteRows(Db& db, const std::string& sql) {
  std::vector<Row> rows;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "query failed: " << sql.substr(0, 300) << "\n  error: " << sqlite3_errmsg(db.handle());
    return rows;
  }
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    Row row;
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_NULL: row.push_back(std::nullopt); break;
        case SQLITE_INTEGER: row.push_back(std::to_string(sqlite3_column_int64(stmt, c))); break;
        case SQLITE_FLOAT: row.push_back(ShortestDouble(sqlite3_column_double(stmt, c))); break;
        default:
          row.push_back(
              std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)), sqlite3_column_bytes(stmt, c)));
      }
    }
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) ADD_FAILURE() << "query failed: " << sql.substr(0, 300) << ": " << sqlite3_errmsg(db.handle());
  sqlite3_finalize(stmt);
  return rows;
}

// A client file opened the way an app opens it: the extension loaded,
// foreign keys on, waiting for the CLI's locks rather than failing.
inline std::unique_ptr<Db> OpenClient(const std::string& path) {
  auto db = std::make_unique<Db>(path);
  sqlite3_busy_timeout(db->handle(), 10000);
  db->Exec("PRAGMA foreign_keys = ON");
  return db;
}

// --- a test's own database and clients -----------------------------------------

// A fresh server database (with the extension) per test, a connection to it
// whose text output is the changeset's canonical one (UTC, ISO dates), and a
// directory for client files.
class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = std::make_unique<TempDatabase>();
    Reconnect();
  }
  void TearDown() override { pg_.reset(); }

  Pg& server() { return *pg_; }
  void Reconnect() {
    pg_.reset();
    pg_ = std::make_unique<Pg>(database_->name());
    pg_->Exec("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'");
  }
  std::string DbName() const { return database_->name(); }
  std::string Conninfo() const { return "dbname=" + database_->name(); }
  std::string ClientFile(const std::string& name) const { return dir_.File(name); }

  // `syncline COMMAND --db FILE --server dbname=<this test's> [EXTRA...]`
  ProcessResult Cli(const std::string& command, const std::string& file, const std::vector<std::string>& extra = {},
                    double timeout_s = 120) {
    std::vector<std::string> args = {command, "--db", file, "--server", Conninfo()};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args, timeout_s);
  }
  std::vector<std::string> CliArgs(const std::string& command, const std::string& file,
                                   const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {CliPath(), command, "--db", file, "--server", Conninfo()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // `syncline clone`, and the file opened the way an app opens it.
  std::unique_ptr<Db> CloneDevice(const std::string& file) {
    ProcessResult result = Cli("clone", file);
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    return OpenClient(file);
  }
  void Sync(const std::string& file) {
    ProcessResult result = Cli("sync", file);
    ASSERT_EQ(result.exit_code, 0) << result.Describe();
  }

  // The `status` report as key -> value ("pending local" -> "3 changes").
  std::map<std::string, std::string> StatusReport(const std::string& file) {
    std::map<std::string, std::string> fields;
    ProcessResult result = RunCli({"status", "--db", file});
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    std::istringstream lines(result.out);
    std::string line;
    while (std::getline(lines, line)) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      fields[line.substr(0, colon)] = value;
    }
    return fields;
  }

  std::unique_ptr<TempDatabase> database_;
  std::unique_ptr<Pg> pg_;
  TempDir dir_;
};

}  // namespace syncline::test
