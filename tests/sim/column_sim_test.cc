// Randomized column-merge convergence with a PostgreSQL hub (docs/protocol.md,
// "Column-level merge"): the server and three SQLite devices hold one table
// tracked with {"merge": "column"} over three keys. Random steps insert,
// update random columns (often to the value they hold, which must stamp
// nothing; sometimes every row at once), delete and re-insert, on a device
// (with a skewed clock) or on the server as its app would; or move pages
// between a device and the server, format 2, with random page sizes: pushes
// of the device's own writes ({"origin": "local"}, as the sync client does)
// or of everything but the server's, pulls applied as from the server (as
// the client does) or as from a peer. A model records every write as the
// writer's metadata stamped it and computes the rule independently, as
// tests/sqlite/column_sim_test.cc does: per column the greatest stamp wins,
// a delete clears the columns older than it, a row lives while a column is
// newer than its latest delete. After syncing as the client does until
// nothing moves, every node holds exactly the model's rows.
//
// SYNCLINE_SIM_SCENARIOS (default 6) scenarios of SYNCLINE_SIM_STEPS (default
// 120) steps; seeds as in sim.h (SYNCLINE_SIM_SEED replays one). A failure
// writes the scenario's step log to /tmp/syncline-column-sim-<seed>.log.
#include <array>
#include <chrono>
#include <iostream>

#include "tests/sim/sim.h"

namespace syncline::sim {
namespace {

constexpr int kServer = 0;
constexpr int kDevices = 3;
constexpr int kKeys = 3;
constexpr int kMaxPages = 1000;
const char* const kColumns[] = {"a", "b", "c"};
// Per column, the values a write picks from, as SQL literals (and as both
// engines quote them back): few, so that a write often changes nothing.
const char* const kValues[3][3] = {{"'x'", "'y'", "NULL"}, {"'u'", "'v'", "'w'"}, {"0", "1", "NULL"}};

using Stamp = std::pair<std::int64_t, std::string>;  // hlc, node id: ordered as the rule orders them
using RowText = std::array<std::string, 3>;          // a, b, c as SQL literals

std::string StampText(const Stamp& stamp) { return core::HlcToText(stamp.first) + "/" + stamp.second.substr(0, 8); }

std::int64_t IntOf(const Value& value) {
  return value.type == Value::Type::kInteger ? value.integer : std::strtoll(value.bytes.c_str(), nullptr, 10);
}

struct ColumnWrite {
  Stamp stamp;
  std::string value;  // SQL literal
};

// The rule, written out again: per column the greatest write, and the
// greatest delete, which clears the columns older than it.
struct KeyModel {
  std::optional<Stamp> deleted;
  std::map<int, ColumnWrite> columns;
  void Write(int column, const Stamp& stamp, const std::string& value) {
    auto it = columns.find(column);
    if (it == columns.end() || it->second.stamp < stamp) columns[column] = {stamp, value};
  }
  void Delete(const Stamp& stamp) {
    if (!deleted || *deleted < stamp) deleted = stamp;
  }
  bool Kept(int column) const {
    auto it = columns.find(column);
    return it != columns.end() && (!deleted || *deleted < it->second.stamp);
  }
  // The row as Rows prints it, or "" when it does not exist.
  std::string Expected(const std::string& key) const {
    if (!Kept(0) && !Kept(1) && !Kept(2)) return "";
    std::string row = "'" + key + "'";
    for (int c = 0; c < 3; ++c)
      row += "|" + (Kept(c) ? columns.at(c).value : std::string("NULL"));
    return row + "\n";
  }
  std::string Describe() const {
    std::string out = "deleted " + (deleted ? StampText(*deleted) : std::string("never"));
    for (const auto& [column, write] : columns)
      out += std::string(", ") + kColumns[column] + " = " + write.value + " at " + StampText(write.stamp);
    return out;
  }
};

class ColumnScenario : private Random {
 public:
  ColumnScenario(std::uint64_t seed, const std::string& dbname, const test::TempDir& dir, int steps)
      : Random(seed), seed_(seed), steps_(steps), log_("syncline-column-sim", seed) {
    nodes_.push_back(std::make_unique<PgNode>("pg", dbname));
    for (int d = 1; d <= kDevices; ++d) {
      // kCloned: the file as it is, without the row-merge tables of Tables().
      auto device = std::make_unique<SqliteNode>("d" + std::to_string(d), dir.File("d" + std::to_string(d) + ".db"),
                                                 SqliteNode::File::kCloned);
      for (const char* sql : {"PRAGMA synchronous = OFF", "PRAGMA journal_mode = MEMORY",
                              "CREATE TABLE t(id TEXT PRIMARY KEY, a TEXT, b TEXT, c INTEGER)",
                              "SELECT syncline_track('t', '{\"merge\": \"column\"}')"})
        if (std::string error = device->Exec(sql); !error.empty()) throw std::runtime_error(sql + (": " + error));
      nodes_.push_back(std::move(device));
    }
    for (const auto& node : nodes_)
      Log(node->label() + " is " + node->id());
  }

  // True when the scenario passed.
  bool Run() {
    for (step_ = 1; step_ <= steps_ && !failed_; ++step_) {
      if (Chance(0.55)) {
        Write(static_cast<int>(Uniform(0, kDevices)));
        continue;
      }
      const int device = static_cast<int>(Uniform(1, kDevices));
      const int pages = Chance(0.7) ? kMaxPages : static_cast<int>(Uniform(1, 2));
      if (Chance(0.5))
        Sync(device, kServer, static_cast<int>(Uniform(1, 4)), pages, false);
      else
        Sync(kServer, device, static_cast<int>(Uniform(1, 4)), pages, false);
    }
    if (!failed_) Settle();
    if (failed_ || EnvInt("SYNCLINE_SIM_LOG", 0) != 0) log_.Save();
    return !failed_;
  }

 private:
  static std::string Key(int k) { return "k" + std::to_string(k); }

  void Log(const std::string& line) { log_.Add(step_, line); }

  void Fail(const std::string& message) {
    if (failed_) return;
    failed_ = true;
    ADD_FAILURE() << log_.Failure(steps_, step_, message, 30);
  }

  // Every row of a node, key -> (a, b, c) as SQL literals, quoted alike by
  // both engines ('x', 1, NULL), so that a value of another type shows.
  std::map<std::string, RowText> Rows(Node& node) {
    const char* sql = node.is_pg() ? "SELECT id, quote_nullable(a), quote_nullable(b), coalesce(c::text, 'NULL') FROM t"
                                   : "SELECT id, quote(a), quote(b), quote(c) FROM t";
    Result result = node.Query(sql);
    if (!result.error.empty()) Fail(node.label() + ": reading t: " + result.error);
    std::map<std::string, RowText> rows;
    for (const auto& row : result.rows)
      rows[row[0].bytes] = {row[1].bytes, row[2].bytes, row[3].bytes};
    return rows;
  }

  // The row's stamp as the writer's metadata holds it, after its write: the
  // writer's own (node 0).
  Stamp Written(Node& node, const std::string& key) {
    const char* sql = node.is_pg() ? "SELECT r.hlc, r.node FROM syncline.rows r JOIN syncline.tables t USING (tid) "
                                     "WHERE t.table_name = 't' AND r.pk = $1"
                                   : "SELECT hlc, node FROM syncline_rows WHERE pk = ?1";
    Result result = node.Query(sql, {Value::Text("[\"" + key + "\"]")});
    if (!result.error.empty() || result.rows.empty())
      return Fail(node.label() + ": no metadata for " + key + " " + result.error), Stamp();
    if (IntOf(result.rows[0][1]) != 0)
      Fail(node.label() + ": its write of " + key + " left another node's stamp (ref " +
           std::to_string(IntOf(result.rows[0][1])) + ")");
    return {IntOf(result.rows[0][0]), node.id()};
  }

  // One statement on a node; the model takes what it did from the rows
  // before and after and the stamps the metadata recorded.
  void Write(int n) {
    Node& node = *nodes_[n];
    if (n != kServer && Chance(0.25)) {
      const std::int64_t skew = Uniform(-2000, 3000);  // the server refuses stamps 5 minutes ahead
      Log(node.label() + " clock skew " + std::to_string(skew) + " ms");
      if (std::string error = static_cast<SqliteNode&>(node).SetSkew(skew); !error.empty())
        return Fail("clock_skew_ms: " + error);
    }
    const std::string key = Key(static_cast<int>(Uniform(0, kKeys - 1)));
    const std::map<std::string, RowText> before = Rows(node);
    std::string sql;
    if (before.count(key) == 0) {
      sql = "INSERT INTO t VALUES ('" + key + "'";
      for (int c = 0; c < 3; ++c)
        sql += std::string(", ") + Pick(kValues[c]);
      sql += ")";
    } else if (Chance(0.2)) {
      sql = "DELETE FROM t WHERE id = '" + key + "'";
    } else {
      for (int c = 0; c < 3; ++c)
        if (Chance(0.5)) sql += std::string(sql.empty() ? "" : ", ") + kColumns[c] + " = " + Pick(kValues[c]);
      if (sql.empty()) return;
      sql = "UPDATE t SET " + sql + (Chance(0.15) ? "" : " WHERE id = '" + key + "'");
    }
    Log(node.label() + ": " + sql);
    if (std::string error = node.Exec(sql); !error.empty()) return Fail(node.label() + ": " + sql + ": " + error);
    const std::map<std::string, RowText> after = Rows(node);
    for (int k = 0; k < kKeys && !failed_; ++k) {
      auto was = before.find(Key(k)), is = after.find(Key(k));
      if (was == before.end() && is == after.end()) continue;
      if (is == after.end()) {
        model_[k].Delete(Written(node, Key(k)));
        continue;
      }
      bool changed[3];
      for (int c = 0; c < 3; ++c)
        changed[c] = was == before.end() || was->second[c] != is->second[c];  // an INSERT stamps every column
      if (!changed[0] && !changed[1] && !changed[2]) continue;
      const Stamp stamp = Written(node, Key(k));
      Log("  " + Key(k) + " stamped " + StampText(stamp));
      for (int c = 0; c < 3; ++c)
        if (changed[c]) model_[k].Write(c, stamp, is->second[c]);
    }
  }

  // Moves `from`'s changes to `to` (one of them the server) from the
  // receiver's peer cursor, at most `pages` pages. `as_client`: the sync
  // client's way (pushes of the device's own writes, pulls applied as from
  // the server); otherwise that or the other at random. Returns the changes
  // applied, -1 on failure.
  long long Sync(int from, int to, int limit, int pages, bool as_client) {
    Node& source = *nodes_[from];
    Node& target = *nodes_[to];
    const bool push = to == kServer;
    const bool client = as_client || Chance(0.7);
    const std::string options =
        std::string(push && client ? R"({"origin": "local")" : R"({"exclude_origin": ")" + target.id() + "\"") +
        R"(, "format": 2})";
    std::string error;
    std::optional<std::string> cursor = target.PeerCursor(source.id(), options, &error);
    if (!error.empty()) return Fail(target.label() + " peer_cursor: " + error), -1;
    Log((push ? "push " : "pull ") + source.label() + " -> " + target.label() + " " + options +
        (!push && client ? " from_server" : "") + ", limit " + std::to_string(limit) + ", from " +
        cursor.value_or("NULL"));
    long long applied = 0;
    for (int page = 0; page < pages; ++page) {
      std::optional<std::string> batch = source.Pull(cursor, limit, options, &error);
      core::BatchHeader header;
      if (!batch || !core::ReadBatchHeader(*batch, &header).ok())
        return Fail(source.label() + " pull_since: " + (batch ? Short(*batch) : error)), -1;
      std::optional<std::string> summary;
      if (!push && client) {
        Result result =
            target.Query("SELECT syncline_apply_push(?1, '{\"from_server\": true}')", {Value::Text(*batch)});
        error = result.error;
        if (error.empty() && !result.rows.empty()) summary = result.rows[0][0].bytes;
      } else {
        summary = target.Apply(*batch, &error);
      }
      core::Json json;
      const core::Json* count = nullptr;
      if (summary && core::ParseJson(*summary, &json).ok()) count = json.Find("applied");
      if (!error.empty() || count == nullptr || !count->is_number())
        return Fail(target.label() + " apply_push: " + (error.empty() ? summary.value_or("NULL") : error) +
                    "\n  batch: " + Short(*batch, 2000)),
               -1;
      applied += std::stoll(count->text);
      Log("  " + std::to_string(header.changes) + " changes, " + count->text + " applied");
      if (!header.has_more) break;
      cursor = header.cursor;
    }
    return applied;
  }

  // Syncs every device as the client does until a round moves nothing,
  // then checks every node against the model.
  void Settle() {
    step_ = steps_ + 1;
    for (int round = 0;; ++round) {
      std::string waited_for;
      if (std::string error = WaitForQuietServer(static_cast<PgNode&>(*nodes_[kServer]), &waited_for); !error.empty())
        return Fail(error);
      long long moved = 0;
      for (int d = 1; d <= kDevices && !failed_; ++d) {
        moved += Sync(d, kServer, 50, kMaxPages, true);
        moved += Sync(kServer, d, 50, kMaxPages, true);
      }
      if (failed_) return;
      if (moved == 0) break;
      if (round == 5) return Fail("not quiescent: round " + std::to_string(round) + " still applied changes");
    }
    std::string expected;
    for (int k = 0; k < kKeys; ++k)
      expected += model_[k].Expected(Key(k));
    for (const auto& node : nodes_) {
      std::string rows;
      for (const auto& [key, row] : Rows(*node))
        rows += "'" + key + "'|" + row[0] + "|" + row[1] + "|" + row[2] + "\n";
      if (rows == expected) continue;
      std::string model;
      for (int k = 0; k < kKeys; ++k)
        model += "  " + Key(k) + ": " + model_[k].Describe() + "\n";
      std::string error;
      auto pull = nodes_[kServer]->Pull(std::nullopt, 100, std::string(R"({"format": 2})"), &error);
      return Fail(node->label() + " did not converge to the model; it holds\n" + rows + "the model:\n" + expected +
                  "the writes the model kept:\n" + model + "the server's format-2 pull:\n  " + pull.value_or(error));
    }
  }

  std::uint64_t seed_;
  int steps_;
  int step_ = 0;
  bool failed_ = false;
  std::vector<std::unique_ptr<Node>> nodes_;  // the server, then the devices
  KeyModel model_[kKeys];
  StepLog log_;
};

TEST(ColumnSim, ServerAndDevicesConvergeOnTheRule) {
  const int steps = static_cast<int>(EnvInt("SYNCLINE_SIM_STEPS", 120));
  const std::vector<std::uint64_t> seeds = ScenarioSeeds(EnvInt("SYNCLINE_SIM_SCENARIOS", 6), steps);
  // Untracked before it is dropped, so that its metadata goes too.
  const std::string reset = "DO $$ BEGIN IF to_regclass('public.t') IS NOT NULL THEN "
                            "PERFORM syncline.untrack('public.t'); END IF; END $$; DROP TABLE IF EXISTS t; "
                            "CREATE TABLE t(id text PRIMARY KEY, a text, b text, c integer); "
                            "SELECT syncline.track('t', '{\"merge\": \"column\"}');";
  auto started = std::chrono::steady_clock::now();
  int failures =
      RunScenarios(seeds, 25, reset, [&](std::uint64_t seed, const std::string& dbname, const test::TempDir& dir) {
        ColumnScenario scenario(seed, dbname, dir, steps);
        return scenario.Run();
      });
  std::cout << "[ sim      ] " << seeds.size() << " scenarios in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() << " s, " << failures
            << " failed" << std::endl;
}

}  // namespace
}  // namespace syncline::sim
