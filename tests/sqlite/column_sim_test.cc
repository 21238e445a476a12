// Randomized column-merge convergence (docs/protocol.md, "Column-level
// merge"): a hub and three devices, real SQLite files, one column-merge
// table over three keys. Random steps insert, update random columns (often
// to the value they hold), delete and re-insert on a random file, with
// skewed clocks; or sync a random device with the hub (format 2, random
// page sizes; the hub's pages applied as a server's or as a peer's). A
// model records every write as the writer's metadata stamped it and
// computes the rule independently: per column the greatest stamp wins, a
// delete clears the columns older than it, a row lives while a column is
// newer than its latest delete. After syncing until nothing moves, every
// file holds exactly the model's rows.
#include <map>
#include <optional>
#include <random>
#include <tuple>

#include "core/column_merge.h"
#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

const char* const kColumns[] = {"a", "b", "c"};
constexpr int kKeys = 3;

using Stamp = std::pair<std::int64_t, std::string>;  // hlc, node id: ordered as the rule orders them

struct ColumnWrite {
  Stamp stamp;
  std::string value;  // SQL literal
};

struct KeyModel {
  std::optional<Stamp> deleted;        // the greatest delete
  std::map<int, ColumnWrite> columns;  // per column, the greatest write
  void Write(int column, const Stamp& stamp, const std::string& value) {
    auto it = columns.find(column);
    if (it == columns.end() || it->second.stamp < stamp) columns[column] = {stamp, value};
  }
  void Delete(const Stamp& stamp) {
    if (!deleted || *deleted < stamp) deleted = stamp;
  }
  // The row as Dump prints it, or "" when it does not exist.
  std::string Expected(const std::string& key) const {
    bool live = false;
    for (const auto& [column, write] : columns)
      live = live || !deleted || *deleted < write.stamp;
    if (!live) return "";
    std::string row = "'" + key + "'";
    for (int c = 0; c < 3; ++c) {
      auto it = columns.find(c);
      const bool kept = it != columns.end() && (!deleted || *deleted < it->second.stamp);
      row += "|" + (kept ? it->second.value : std::string("NULL"));
    }
    return row;
  }
};

class ColumnSim {
 public:
  ColumnSim(std::uint64_t seed, const std::string& dir) : rng_(seed) {
    for (int i = 0; i < 4; ++i) {
      files_.push_back(std::make_unique<Db>(dir + "f" + std::to_string(i) + ".db"));
      files_.back()->Exec("CREATE TABLE t(id TEXT PRIMARY KEY, a, b TEXT, c INTEGER)");
      files_.back()->Text("SELECT syncline_track('t', '{\"merge\": \"column\"}')");
      nodes_.push_back(files_.back()->NodeId());
    }
  }

  void Step() {
    const int choice = static_cast<int>(rng_() % 10);
    if (choice < 6) return Write(*files_[rng_() % 4]);
    Db& device = *files_[1 + rng_() % 3];
    const int page = 1 + static_cast<int>(rng_() % 4);
    if (rng_() % 2)
      Sync(device, *files_[0], page, 2);
    else
      Sync(*files_[0], device, page, 2, rng_() % 2 == 0);  // as a device applies its server's pages, or a peer's
  }

  // Syncs until a round moves nothing, then checks every file.
  void Settle() {
    for (int round = 0; round < 20; ++round) {
      long long moved = 0;
      for (int d = 1; d < 4; ++d) {
        moved += Sync(*files_[d], *files_[0], 50, 2);
        moved += Sync(*files_[0], *files_[d], 50, 2, true);
      }
      if (moved == 0) break;
    }
    for (int f = 0; f < 4; ++f) {
      std::string expected;
      for (int k = 0; k < kKeys; ++k) {
        const std::string row = model_[k].Expected(Key(k));
        if (!row.empty()) expected += (expected.empty() ? "" : "\n") + row;
      }
      ASSERT_EQ(files_[f]->Dump("t"), expected) << "file " << f << " (0 is the hub)";
    }
  }

 private:
  static std::string Key(int k) { return "k" + std::to_string(k); }

  std::string Value(int column) {
    const int v = static_cast<int>(rng_() % 3);
    if (column == 0 && v == 2) return "1.0";  // beside 1: a different value in an untyped column
    if (column == 1) return "'" + std::string(1, static_cast<char>('x' + v)) + "'";
    return std::to_string(v);
  }

  // The row's stamp as the writer's metadata holds it, after its write.
  Stamp Written(Db& db, const std::string& key) {
    const std::int64_t hlc = db.Int("SELECT hlc FROM syncline_rows WHERE pk = '[\"" + key + "\"]'");
    EXPECT_EQ(db.Int("SELECT node FROM syncline_rows WHERE pk = '[\"" + key + "\"]'"), 0);
    return {hlc, db.NodeId()};
  }

  void Write(Db& db) {
    if (rng_() % 4 == 0) db.Text("SELECT syncline_config('clock_skew_ms', " + std::to_string(rng_() % 4000) + ")");
    const int k = static_cast<int>(rng_() % kKeys);
    const std::string key = Key(k);
    const std::string where = " WHERE id = '" + key + "'";
    const bool exists = db.Int("SELECT count(*) FROM t" + where) == 1;
    if (!exists) {
      std::string values[3] = {Value(0), Value(1), Value(2)};
      db.Exec("INSERT INTO t VALUES ('" + key + "', " + values[0] + ", " + values[1] + ", " + values[2] + ")");
      const Stamp stamp = Written(db, key);
      for (int c = 0; c < 3; ++c)
        model_[k].Write(c, stamp, values[c]);
      return;
    }
    if (rng_() % 5 == 0) {
      db.Exec("DELETE FROM t" + where);
      model_[k].Delete(Written(db, key));
      return;
    }
    // Some columns, each to a random value (often the one it holds).
    std::string set, literal[3];
    bool touched[3] = {false, false, false};
    for (int c = 0; c < 3; ++c) {
      if (rng_() % 2) continue;
      touched[c] = true;
      literal[c] = Value(c);
      set += std::string(set.empty() ? "" : ", ") + kColumns[c] + " = " + literal[c];
    }
    if (set.empty()) return;
    std::string before[3];
    for (int c = 0; c < 3; ++c)
      before[c] =
          db.Text(std::string("SELECT quote(") + kColumns[c] + ") || typeof(" + kColumns[c] + ") FROM t" + where);
    db.Exec("UPDATE t SET " + set + where);
    const Stamp stamp = Written(db, key);
    for (int c = 0; c < 3; ++c) {
      const std::string after =
          db.Text(std::string("SELECT quote(") + kColumns[c] + ") || typeof(" + kColumns[c] + ") FROM t" + where);
      if (touched[c] && after != before[c])
        model_[k].Write(c, stamp, db.Text(std::string("SELECT quote(") + kColumns[c] + ") FROM t" + where));
    }
  }

  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Db>> files_;
  std::vector<std::string> nodes_;
  KeyModel model_[kKeys];
};

TEST(ColumnSim, EveryFileConvergesOnTheRule) {
  const int scenarios = std::getenv("SYNCLINE_SIM_SCENARIOS") ? std::atoi(std::getenv("SYNCLINE_SIM_SCENARIOS")) : 12;
  for (int scenario = 0; scenario < scenarios; ++scenario) {
    TempDir dir;
    ColumnSim sim(1000 + scenario, dir.File(""));
    for (int step = 0; step < 120; ++step) {
      sim.Step();
      if (::testing::Test::HasFatalFailure()) return;
    }
    sim.Settle();
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "scenario " << scenario;
      return;
    }
  }
}

}  // namespace
}  // namespace syncline::test
