// Randomized, model-based convergence simulation (docs/protocol.md, "Versions
// and the conflict rule"): one PostgreSQL server and three SQLite clients,
// each holding t1 and t2 over a small key space so that conflicts are
// frequent.
//
// Random steps write locally (inserts, upserts, updates, deletes,
// re-inserts, key changes, multi-row statements, TRUNCATE on the server,
// rolled-back transactions, and a second server session that keeps a writing
// transaction open across steps); move pages between random pairs (client <->
// server and client <-> client relays) with random page sizes and options,
// resuming from the receiver's peer cursor, the last pulled cursor or the
// beginning, delivering pages twice, late, to other nodes, inside the
// caller's committed or rolled-back transaction, or with one bad change
// slipped in (which must reject the whole batch); skew the clients' clocks
// (within the drift bound), sometimes to the same instant so that equal
// stamps from different nodes meet; and reconnect.
//
// The reference model records every version a local write leaves (read from
// the writer's metadata right after the write) and predicts each row's final
// state: the version with the greatest (hlc, node). On the way, every pull is
// checked against the source's metadata and the model, every apply against a
// prediction of the merge (which changes win, the rows and metadata after it,
// the summary's counts, the peer cursor). At the end every client pushes to
// and pulls from the server until quiescent, and every replica must hold the
// same rows and metadata, exactly the model's.
//
// SYNCLINE_SIM_SCENARIOS (default 150) scenarios of SYNCLINE_SIM_STEPS
// (default 150) steps, about 100 s on the 2-core test machine; seeds come from
// SYNCLINE_SIM_BASE_SEED (default random) and SYNCLINE_SIM_SEED replays a
// single scenario. A failure prints its seed and writes the scenario's step
// log to /tmp/syncline-sim-<seed>.log (SYNCLINE_SIM_LOG=1: every scenario's).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include "tests/sim/sim.h"

namespace syncline::sim {
namespace {

constexpr int kServer = 0;
constexpr int kClients = 3;
constexpr int kScenariosPerDatabase = 25;    // a fresh server database now and then
constexpr std::int64_t kMaxSkewMs = 120000;  // within the drift bound (300000) even between opposite skews
constexpr std::int64_t kTieSkewMs = 150000;  // ahead of every clock, still 270 s from the slowest one
constexpr int kMaxPages = 10000;

// Values that both engines store exactly as written, so PostgreSQL never
// rewrites a version (docs/types.md, "Canonical values").
const std::int64_t kInts[] = {0, 1, -7, 42, 1000, 9007199254740993, INT64_MAX, INT64_MIN};
const char* const kTexts[] = {
    "",     "a", "hello world", "héllo ✓", "it's \"quoted\"", "line1\nline2", "tab\there", "{\"json\": 1}",
    "null", "1", "ключ"};
const double kReals[] = {0.5, 1.25, -2.75, 3.0, 0.0, 0.1, 1e300, 2.5e-8, 123456.789, -1e-300};

std::vector<std::vector<Value>> KeySpace(const TableSpec& spec) {
  std::vector<std::vector<Value>> keys;
  if (spec.name == "t1") {
    for (int i = 0; i < 6; ++i)
      keys.push_back({Value::Text("k" + std::to_string(i))});
  } else {
    for (int k1 = 1; k1 <= 3; ++k1)
      for (const char* k2 : {"x", "y"})
        keys.push_back({Value::Integer(k1), Value::Text(k2)});
  }
  return keys;
}

// The key of a key text, looked up in the key space.
bool KeyOf(const TableSpec& spec, const std::string& text, std::vector<Value>* key) {
  for (auto& candidate : KeySpace(spec))
    if (KeyText(candidate) == text) {
      *key = candidate;
      return true;
    }
  return false;
}

// --- the reference model ------------------------------------------------------

// The conflict rule, written out again rather than taken from
// core/version_order.h, so that a mistake there is not shared by the model:
// stamps compare as numbers, then origin node ids byte by byte.
int Order(core::Hlc a_hlc, const std::string& a_node, core::Hlc b_hlc, const std::string& b_node) {
  if (a_hlc != b_hlc) return a_hlc < b_hlc ? -1 : 1;
  int c = std::memcmp(a_node.data(), b_node.data(), std::min(a_node.size(), b_node.size()));
  if (c == 0 && a_node.size() != b_node.size()) c = a_node.size() < b_node.size() ? -1 : 1;
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

struct Version {
  bool deleted = false;
  std::vector<Value> key;
  std::vector<Value> values;
  std::string where;  // "c2 step 17", for failure reports
};

class Model {
 public:
  // Records a version a local write left; false if the same (hlc, node) was
  // already recorded for the row with other content.
  bool Record(const std::string& table, const std::string& key, const Meta& meta, const Version& version) {
    auto [it, inserted] = versions_.emplace(std::make_tuple(table, key, meta.hlc, meta.node), version);
    if (!inserted) return Same(it->second, meta.deleted, version.values);
    // Another node's version with the same stamp: the node id decides.
    auto tie = versions_.lower_bound(std::make_tuple(table, key, meta.hlc, std::string()));
    for (; tie != versions_.end() && std::get<0>(tie->first) == table && std::get<1>(tie->first) == key &&
           std::get<2>(tie->first) == meta.hlc;
         ++tie)
      if (std::get<3>(tie->first) != meta.node) ++ties_;
    auto& best = best_[{table, key}];
    if (best.node.empty() || Order(meta.hlc, meta.node, best.hlc, best.node) > 0) best = meta;
    return true;
  }

  const Version* Find(const std::string& table, const std::string& key, core::Hlc hlc, const std::string& node) const {
    auto it = versions_.find(std::make_tuple(table, key, hlc, node));
    return it == versions_.end() ? nullptr : &it->second;
  }

  static bool Same(const Version& version, bool deleted, const std::vector<Value>& values) {
    if (version.deleted != deleted) return false;
    if (deleted) return true;
    return ValuesText(version.values) == ValuesText(values);
  }

  // The rows every replica must end with: each key's greatest version.
  TableState Expected(const TableSpec& spec) const {
    TableState table;
    for (const auto& [id, meta] : best_) {
      if (id.first != spec.name || meta.deleted) continue;
      const Version* version = Find(id.first, id.second, meta.hlc, meta.node);
      table[id.second] = Row{version->key, version->values};
    }
    return table;
  }

  MetaState ExpectedMeta(const TableSpec& spec) const {
    MetaState meta;
    for (const auto& [id, m] : best_)
      if (id.first == spec.name) meta[id.second] = m;
    return meta;
  }

  // Versions recorded with a stamp another node also used for the row.
  int ties() const { return ties_; }

  // Every recorded version of a row, oldest first.
  std::string History(const std::string& table, const std::string& key) const {
    std::string out;
    for (const auto& [id, version] : versions_) {
      if (std::get<0>(id) != table || std::get<1>(id) != key) continue;
      out += "    " + core::HlcToText(std::get<2>(id)) + "/" + std::get<3>(id).substr(0, 8) + " " +
             (version.deleted ? "deleted" : ValuesText(version.values)) + "  (" + version.where + ")\n";
    }
    return out;
  }

 private:
  std::map<std::tuple<std::string, std::string, core::Hlc, std::string>, Version> versions_;
  std::map<std::pair<std::string, std::string>, Meta> best_;
  int ties_ = 0;
};

// --- one scenario ---------------------------------------------------------------

// A pulled page on its way: where it came from, where it was meant to go.
struct Page {
  int from = 0;
  int to = 0;
  std::string options;                      // for the log
  std::optional<std::string> pull_options;  // as passed to pull_since
  std::string text;
  core::Batch batch;
};

// How a pull filters, for the cursor bookkeeping.
enum class Filter { kNone, kExcludeTo, kLocal };

struct Snapshot {
  std::map<std::string, TableState> rows;
  std::map<std::string, MetaState> meta;
};

class Scenario : private Random {
 public:
  Scenario(std::uint64_t seed, const std::string& dbname, const test::TempDir& dir, int steps)
      : Random(seed), seed_(seed), steps_(steps), log_("syncline-sim", seed) {
    nodes_.push_back(std::make_unique<PgNode>("pg", dbname));
    second_ = std::make_unique<PgNode>("pg/2", dbname);
    for (int c = 1; c <= kClients; ++c) {
      auto client = std::make_unique<SqliteNode>("c" + std::to_string(c), dir.File("c" + std::to_string(c) + ".db"));
      nodes_.push_back(std::move(client));
    }
    skew_.assign(nodes_.size(), 0);
    for (int c = 1; c <= kClients; ++c)
      SetSkew(c, Chance(0.3) ? 0 : Uniform(-kMaxSkewMs, kMaxSkewMs));
    for (const auto& node : nodes_)
      Log(node->label() + " is " + node->id() + (node->is_pg() ? "" : ", skew " + std::to_string(skew_[Index(*node)])));
  }

  int ties() const { return model_.ties(); }

  // True when the scenario passed.
  bool Run() {
    for (step_ = 1; step_ <= steps_ && !failed_; ++step_) {
      // Step weights, in percent.
      int roll = Uniform(0, 99);
      if (roll < 43) {
        Write(Uniform(0, kClients));
      } else if (roll < 77) {
        SyncRandomPair();
      } else if (roll < 84) {
        Redeliver();
      } else if (roll < 89) {
        DeliverDeferred();
      } else if (roll < 93) {
        second_open_ ? CloseSecondSession() : OpenSecondSession();
      } else if (roll < 95) {
        SetSkew(Uniform(1, kClients), Uniform(-kMaxSkewMs, kMaxSkewMs));
      } else if (roll < 96) {
        Tie();
      } else if (roll < 98) {
        Reconnect(Uniform(0, kClients));
      } else if (roll < 99) {
        Poison();
      } else {
        Log("sleep");
        std::this_thread::sleep_for(std::chrono::milliseconds(Uniform(1, 5)));
      }
    }
    if (!failed_) Finish();
    if (failed_ || EnvInt("SYNCLINE_SIM_LOG", 0) != 0) log_.Save();
    return !failed_;
  }

 private:
  // --- randomness ---
  // A random node in [lo, hi] other than `not_this`.
  int Other(int lo, int hi, int not_this) {
    int n = static_cast<int>(Uniform(lo, hi - 1));
    return n >= not_this ? n + 1 : n;
  }

  Value RandomValue(ColType type) {
    if (Chance(0.15)) return Value::Null();
    switch (type) {
      case ColType::kInteger: return Value::Integer(Pick(kInts));
      case ColType::kReal: return Value::Real(Pick(kReals));
      default: return Value::Text(Pick(kTexts));
    }
  }

  // --- reporting ---
  void Log(const std::string& line) { log_.Add(step_, line); }

  void Fail(const std::string& message) {
    if (failed_) return;
    failed_ = true;
    ADD_FAILURE() << log_.Failure(steps_, step_, message, 25);
  }

  int Index(const Node& node) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i].get() == &node) return static_cast<int>(i);
    return -1;
  }

  // --- clocks and connections ---
  void SetSkew(int client, std::int64_t ms) {
    skew_[client] = ms;
    Log(nodes_[client]->label() + " clock skew " + std::to_string(ms) + " ms");
    std::string error = static_cast<SqliteNode&>(*nodes_[client]).SetSkew(ms);
    if (!error.empty()) Fail("syncline_config('clock_skew_ms'): " + error);
  }

  void Reconnect(int n) {
    Log(nodes_[n]->label() + " reconnects");
    nodes_[n]->Reconnect();
    if (n != kServer) SetSkew(n, Chance(0.5) ? skew_[n] : Uniform(-kMaxSkewMs, kMaxSkewMs));
  }

  // --- reading a node ---
  bool Read(Node& node, Snapshot* snapshot) {
    for (const TableSpec& spec : Tables()) {
      std::string error;
      snapshot->rows[spec.name] = node.ReadTable(spec, &error);
      if (error.empty()) snapshot->meta[spec.name] = node.ReadMeta(spec, &error);
      if (!error.empty()) {
        Fail(node.label() + ": reading " + spec.name + ": " + error);
        return false;
      }
    }
    return true;
  }

  // Every row's metadata agrees with the row: live exactly when present.
  void CheckConsistent(Node& node, const Snapshot& snapshot, const std::string& when) {
    for (const TableSpec& spec : Tables()) {
      const TableState& rows = snapshot.rows.at(spec.name);
      const MetaState& meta = snapshot.meta.at(spec.name);
      for (const auto& [key, row] : rows) {
        auto it = meta.find(key);
        if (it == meta.end() || it->second.deleted)
          return Fail(node.label() + " " + when + ": " + spec.name + " row " + key + " exists but its metadata is " +
                      (it == meta.end() ? "missing" : MetaText(it->second)));
      }
      for (const auto& [key, m] : meta)
        if (!m.deleted && rows.count(key) == 0)
          return Fail(node.label() + " " + when + ": " + spec.name + " " + key + " is live in the metadata (" +
                      MetaText(m) + ") but has no row");
    }
  }

  // Two clients write the same row with their clocks set to the same time,
  // far enough ahead that both stamp wall-clock time with a zero counter:
  // within one millisecond the stamps are equal and the node ids decide
  // (docs/protocol.md, "Versions and the conflict rule").
  void Tie() {
    int a = Uniform(1, kClients), b = Other(1, kClients, a);
    std::int64_t skew_a = skew_[a], skew_b = skew_[b];
    int table = Uniform(0, Tables().size() - 1);
    forced_ = {table, Uniform(0, KeySpace(Tables()[table]).size() - 1)};
    SetSkew(a, kTieSkewMs);
    SetSkew(b, kTieSkewMs);
    Write(a);
    Write(b);
    forced_.reset();
    SetSkew(a, skew_a);
    SetSkew(b, skew_b);
  }

  // --- local writes ---
  struct Statement {
    std::string sql;
    std::vector<Value> params;
  };

  static std::string Describe(const Statement& statement) {
    std::string out = statement.sql;
    if (!statement.params.empty()) out += "  " + ValuesText(statement.params);
    return out;
  }

  // Builds "col = $i" pieces, adding params.
  std::string Assign(Node& node, const std::vector<Column>& columns, const std::vector<Value>& values,
                     const std::string& separator, std::vector<Value>* params) {
    std::string out;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      params->push_back(values[i]);
      out += (i > 0 ? separator : "") + columns[i].name + " = " +
             node.Param(static_cast<int>(params->size()), columns[i].type);
    }
    return out;
  }

  std::vector<Value> RandomValues(const TableSpec& spec) {
    std::vector<Value> values;
    for (const Column& column : spec.values)
      values.push_back(RandomValue(column.type));
    return values;
  }

  // A random non-empty subset of the value columns (indexes).
  std::vector<std::size_t> RandomSubset(const TableSpec& spec) {
    std::vector<std::size_t> subset;
    for (std::size_t i = 0; i < spec.values.size(); ++i)
      if (Chance(0.6)) subset.push_back(i);
    if (subset.empty()) subset.push_back(Uniform(0, spec.values.size() - 1));
    return subset;
  }

  Statement InsertStatement(Node& node, const TableSpec& spec, const Row& row, const std::string& verb,
                            const std::string& tail) {
    Statement s;
    std::string columns, params;
    auto add = [&](const Column& column, const Value& value) {
      s.params.push_back(value);
      columns += (columns.empty() ? "" : ", ") + column.name;
      params += (params.empty() ? "" : ", ") + node.Param(static_cast<int>(s.params.size()), column.type);
    };
    for (std::size_t i = 0; i < spec.keys.size(); ++i)
      add(spec.keys[i], row.key[i]);
    for (std::size_t i = 0; i < spec.values.size(); ++i)
      add(spec.values[i], row.values[i]);
    s.sql = verb + " INTO " + spec.name + "(" + columns + ") VALUES (" + params + ")" + tail;
    return s;
  }

  std::string KeyList(const TableSpec& spec) {
    std::string out;
    for (const Column& column : spec.keys)
      out += (out.empty() ? "" : ", ") + column.name;
    return out;
  }

  // One random statement on `node`; applies its effect to `state` (the rows
  // the node must hold afterwards) and notes the keys it writes.
  Statement RandomStatement(Node& node, std::map<std::string, TableState>* state,
                            std::set<std::pair<std::string, std::string>>* touched, bool allow_truncate) {
    const TableSpec& spec = Tables()[forced_ ? forced_->first : Uniform(0, Tables().size() - 1)];
    TableState& rows = (*state)[spec.name];
    auto keys = KeySpace(spec);
    std::vector<Value> key = keys[forced_ ? forced_->second : Uniform(0, keys.size() - 1)];
    const std::string key_text = KeyText(key);
    const bool exists = rows.count(key_text) > 0;
    auto touch = [&](const std::string& k) { touched->insert({spec.name, k}); };

    int kind = static_cast<int>(Uniform(0, 99));
    if (allow_truncate && node.is_pg() && Chance(0.03)) {
      // A tombstone for every live row (docs/postgres.md, "Capture").
      for (const auto& [k, row] : rows)
        touch(k);
      rows.clear();
      return Statement{"TRUNCATE " + spec.name, {}};
    }
    if (kind < 12 && exists) {  // key change
      std::vector<Value> new_key = keys[Uniform(0, keys.size() - 1)];
      std::string new_text = KeyText(new_key);
      bool clash = rows.count(new_text) > 0;
      if (new_text != key_text && (!clash || !node.is_pg())) {
        Statement s;
        std::vector<Value> values = rows[key_text].values;
        std::string set = Assign(node, spec.keys, new_key, ", ", &s.params);
        if (Chance(0.3)) {
          auto subset = RandomSubset(spec);
          std::vector<Column> columns;
          std::vector<Value> fresh;
          for (std::size_t i : subset) {
            columns.push_back(spec.values[i]);
            fresh.push_back(RandomValue(spec.values[i].type));
            values[i] = fresh.back();
          }
          set += ", " + Assign(node, columns, fresh, ", ", &s.params);
        }
        s.sql = std::string(clash ? "UPDATE OR REPLACE " : "UPDATE ") + spec.name + " SET " + set + " WHERE " +
                Assign(node, spec.keys, key, " AND ", &s.params);
        rows.erase(key_text);
        rows[new_text] = Row{new_key, values};
        touch(key_text);
        touch(new_text);
        return s;
      }
      kind = 20;  // no usable new key: an upsert instead
    }
    if (kind < 35) {  // insert, re-insert or upsert
      Row row{key, RandomValues(spec)};
      if (!exists) {
        rows[key_text] = row;
        touch(key_text);
        return InsertStatement(node, spec, row, "INSERT", "");
      }
      int form = static_cast<int>(Uniform(node.is_pg() ? 1 : 0, 2));
      if (form == 0) {  // SQLite: REPLACE on the same key
        rows[key_text] = row;
        touch(key_text);
        return InsertStatement(node, spec, row, "INSERT OR REPLACE", "");
      }
      if (form == 1) {  // ON CONFLICT DO UPDATE of some columns
        std::string set;
        for (std::size_t i : RandomSubset(spec)) {
          set += (set.empty() ? "" : ", ") + spec.values[i].name + " = excluded." + spec.values[i].name;
          rows[key_text].values[i] = row.values[i];
        }
        touch(key_text);
        return InsertStatement(node, spec, row, "INSERT", " ON CONFLICT (" + KeyList(spec) + ") DO UPDATE SET " + set);
      }
      // ON CONFLICT DO NOTHING on an existing row: writes nothing.
      return InsertStatement(node, spec, row, "INSERT", " ON CONFLICT (" + KeyList(spec) + ") DO NOTHING");
    }
    if (kind < 62) {  // update (of a missing row: writes nothing)
      Statement s;
      auto subset = RandomSubset(spec);
      std::vector<Column> columns;
      std::vector<Value> fresh;
      for (std::size_t i : subset) {
        columns.push_back(spec.values[i]);
        fresh.push_back(RandomValue(spec.values[i].type));
        if (exists) rows[key_text].values[i] = fresh.back();
      }
      s.sql = "UPDATE " + spec.name + " SET " + Assign(node, columns, fresh, ", ", &s.params) + " WHERE " +
              Assign(node, spec.keys, key, " AND ", &s.params);
      if (exists) touch(key_text);
      return s;
    }
    if (kind < 90) {  // delete (of a missing row: writes nothing)
      Statement s;
      s.sql = "DELETE FROM " + spec.name + " WHERE " + Assign(node, spec.keys, key, " AND ", &s.params);
      if (exists) {
        rows.erase(key_text);
        touch(key_text);
      }
      return s;
    }
    // Multi-row statements, chosen by a predicate.
    Statement s;
    std::function<bool(const Row&)> match;
    std::string predicate;
    if (spec.name == "t2") {
      Value k1 = key[0];
      s.params.push_back(k1);
      predicate = "k1 = " + node.Param(1, ColType::kInteger);
      match = [k1](const Row& row) { return row.key[0].integer == k1.integer; };
    } else if (Chance(0.5)) {
      predicate = "a IS NULL";
      match = [](const Row& row) { return row.values[0].type == Value::Type::kNull; };
    } else {
      predicate = "c IS NULL";
      match = [](const Row& row) { return row.values[2].type == Value::Type::kNull; };
    }
    std::vector<std::string> matched;
    for (const auto& [k, row] : rows)
      if (match(row)) matched.push_back(k);
    bool remove = Chance(0.4);
    if (remove) {
      s.sql = "DELETE FROM " + spec.name + " WHERE " + predicate;
    } else {
      std::size_t column = Uniform(0, spec.values.size() - 1);
      Value value = RandomValue(spec.values[column].type);
      s.params.push_back(value);
      s.sql = "UPDATE " + spec.name + " SET " + spec.values[column].name + " = " +
              node.Param(static_cast<int>(s.params.size()), spec.values[column].type) + " WHERE " + predicate;
      for (const std::string& k : matched)
        rows[k].values[column] = value;
    }
    for (const std::string& k : matched) {
      touch(k);
      if (remove) rows.erase(k);
    }
    return s;
  }

  void Write(int n) {
    Node& node = *nodes_[n];
    Snapshot before;
    if (!Read(node, &before)) return;
    std::map<std::string, TableState> expected = before.rows;
    std::set<std::pair<std::string, std::string>> touched;
    int count = !forced_ && Chance(0.3) ? Uniform(2, 3) : 1;
    bool transaction = count > 1 || (!forced_ && Chance(0.1));
    bool rollback = transaction && Chance(0.1);
    std::string description;
    if (transaction) {
      std::string error = node.Exec("BEGIN");
      if (!error.empty()) return Fail(node.label() + ": BEGIN: " + error);
    }
    for (int i = 0; i < count; ++i) {
      Statement s = RandomStatement(node, &expected, &touched, /*allow_truncate=*/true);
      // SQLite stores an integer written to a REAL column as a real (and
      // keeps integral reals as integers on disk): either way it must sync
      // as the real it reads back as.
      for (Value& param : s.params)
        if (!node.is_pg() && param.type == Value::Type::kReal &&
            param.real == static_cast<double>(static_cast<std::int64_t>(param.real)) && std::abs(param.real) < 1e15 &&
            Chance(0.3))
          param = Value::Integer(static_cast<std::int64_t>(param.real));
      description += (description.empty() ? "" : "; ") + Describe(s);
      std::string error = node.Exec(s.sql, s.params);
      if (error.empty()) continue;
      // The server's second session may hold the row: the statement gives up
      // (lock_timeout) and the whole write is rolled back.
      if (!(node.is_pg() && second_open_ && error.find("lock timeout") != std::string::npos))
        return Fail(node.label() + ": " + Describe(s) + ": " + error);
      description += " (blocked by pg/2: " + error + ")";
      if (transaction) {
        error = node.Exec("ROLLBACK");
        if (!error.empty()) return Fail(node.label() + ": ROLLBACK: " + error);
      }
      transaction = false;
      rollback = true;
      break;
    }
    if (transaction) {
      std::string error = node.Exec(rollback ? "ROLLBACK" : "COMMIT");
      if (!error.empty()) return Fail(node.label() + ": COMMIT: " + error);
      description = "BEGIN; " + description + (rollback ? "; ROLLBACK" : "; COMMIT");
    }
    if (rollback) {
      expected = before.rows;
      touched.clear();
    }
    Snapshot after;
    if (!Read(node, &after)) return;
    std::string written;
    if (!CheckWrite(node, before, after, expected, touched, description, /*whole=*/true, &written)) return;
    CheckConsistent(node, after, "after a write");
    Log(node.label() + " write: " + description + " ->" + (written.empty() ? " nothing" : written));
  }

  // Checks what a write did to the metadata, and records the versions it
  // left in the model. `whole`: the write was the only change between the
  // snapshots, so rows and untouched keys must be exactly as expected;
  // otherwise only the touched keys are checked.
  bool CheckWrite(Node& node, Snapshot& before, Snapshot& after, std::map<std::string, TableState>& expected,
                  const std::set<std::pair<std::string, std::string>>& touched, const std::string& description,
                  bool whole, std::string* written) {
    for (const TableSpec& spec : Tables()) {
      if (whole && Dump(after.rows[spec.name]) != Dump(expected[spec.name]))
        return Fail(node.label() + " write: " + description + "\n  " + spec.name + " holds:\n" +
                    Dump(after.rows[spec.name]) + "  expected:\n" + Dump(expected[spec.name])),
               false;
      const MetaState& old_meta = before.meta[spec.name];
      const MetaState& new_meta = after.meta[spec.name];
      std::set<std::string> keys;
      for (const auto& [key, m] : old_meta)
        keys.insert(key);
      for (const auto& [key, m] : new_meta)
        keys.insert(key);
      for (const std::string& key : keys) {
        auto old_it = old_meta.find(key);
        auto new_it = new_meta.find(key);
        const std::string what = node.label() + " write: " + description + "\n  " + spec.name + " " + key + ": ";
        if (touched.count({spec.name, key}) == 0) {
          if (whole && (old_it == old_meta.end() || new_it == new_meta.end() ||
                        MetaText(old_it->second) != MetaText(new_it->second)))
            return Fail(what + "metadata changed without a write: " +
                        (old_it == old_meta.end() ? "none" : MetaText(old_it->second)) + " -> " +
                        (new_it == new_meta.end() ? "none" : MetaText(new_it->second))),
                   false;
          continue;
        }
        if (new_it == new_meta.end()) return Fail(what + "written but has no metadata"), false;
        const Meta& m = new_it->second;
        if (m.node != node.id())
          return Fail(what + "a local write is stamped with another origin: " + MetaText(m)), false;
        if (old_it != old_meta.end() && Order(m.hlc, m.node, old_it->second.hlc, old_it->second.node) <= 0)
          return Fail(what + "the new stamp " + MetaText(m) + " does not beat the version it replaced " +
                      MetaText(old_it->second)),
                 false;
        bool present = expected[spec.name].count(key) > 0;
        if (m.deleted == present)
          return Fail(what + "metadata says " + (m.deleted ? "deleted" : "live") + " after the write"), false;
        if (!whole) {
          auto row = after.rows[spec.name].find(key);
          bool there = row != after.rows[spec.name].end();
          if (there != present ||
              (present && ValuesText(row->second.values) != ValuesText(expected[spec.name][key].values)))
            return Fail(what + "holds " + (there ? ValuesText(row->second.values) : "no row") + ", expected " +
                        (present ? ValuesText(expected[spec.name][key].values) : "no row")),
                   false;
        }
        Version version;
        version.deleted = m.deleted;
        if (present) version.values = expected[spec.name][key].values;
        if (!KeyOf(spec, key, &version.key)) return Fail(what + "a key outside the key space"), false;
        version.where = node.label() + " step " + std::to_string(step_);
        if (!model_.Record(spec.name, key, m, version))
          return Fail(what + "stamp " + MetaText(m) + " reused for different content"), false;
        *written += " " + spec.name + key + "@" + MetaText(m);
      }
    }
    return true;
  }

  // The server's second session opens a transaction, writes, and keeps it
  // open across steps: its row locks block the first session's writes and
  // applies to those rows, and its transaction id holds the server's pulls
  // back (docs/postgres.md, "Gap-free pulls") until it ends.
  void OpenSecondSession() {
    PgNode& session = *second_;
    std::string error = session.Exec("BEGIN");
    if (!error.empty()) return Fail("pg/2: BEGIN: " + error);
    second_before_ = Snapshot();
    if (!Read(session, &second_before_)) return;
    second_expected_ = second_before_.rows;
    second_touched_.clear();
    second_description_.clear();
    second_open_ = true;
    int count = Uniform(1, 2);
    for (int i = 0; i < count; ++i) {
      Statement s = RandomStatement(session, &second_expected_, &second_touched_, /*allow_truncate=*/false);
      second_description_ += (second_description_.empty() ? "" : "; ") + Describe(s);
      error = session.Exec(s.sql, s.params);
      if (!error.empty()) return Fail("pg/2: " + Describe(s) + ": " + error);
    }
    Log("pg/2 opens a transaction: BEGIN; " + second_description_);
  }

  void CloseSecondSession() {
    bool rollback = Chance(0.15);
    std::string error = second_->Exec(rollback ? "ROLLBACK" : "COMMIT");
    second_open_ = false;
    if (!error.empty()) return Fail("pg/2: COMMIT: " + error);
    if (rollback) {
      second_touched_.clear();
      second_expected_ = second_before_.rows;
    }
    Snapshot after;
    if (!Read(*nodes_[kServer], &after)) return;
    std::string written;
    if (!CheckWrite(*second_, second_before_, after, second_expected_, second_touched_,
                    "BEGIN; " + second_description_ + (rollback ? "; ROLLBACK" : "; COMMIT"), /*whole=*/false,
                    &written))
      return;
    CheckConsistent(*nodes_[kServer], after, "after pg/2 committed");
    Log(std::string("pg/2 ") + (rollback ? "rolls back" : "commits") + " ->" +
        (written.empty() ? " nothing" : written));
  }

  // --- moving pages ---
  std::optional<std::string> OptionsFor(Filter filter, int to) {
    switch (filter) {
      case Filter::kNone: return Chance(0.5) ? std::nullopt : std::optional<std::string>("{}");
      case Filter::kLocal: return std::string(R"({"origin":"local"})");
      case Filter::kExcludeTo: {
        std::string id = nodes_[to]->id();
        // Node ids are accepted in upper case (docs/protocol.md, "Nodes").
        if (Chance(0.1)) std::transform(id.begin(), id.end(), id.begin(), ::toupper);
        return R"({"exclude_origin":")" + id + R"("})";
      }
    }
    return std::nullopt;
  }

  static const char* FilterName(Filter filter) {
    switch (filter) {
      case Filter::kNone: return "all";
      case Filter::kLocal: return "origin local";
      default: return "exclude receiver";
    }
  }

  // Checks a pulled page against the source's metadata and the model.
  bool CheckPulled(Node& from, int to, Filter filter, int limit, const Page& page) {
    const core::Batch& batch = page.batch;
    if (batch.source != from.id())
      return Fail(from.label() + " pull: source " + batch.source + ", not " + from.id()), false;
    if (static_cast<int>(batch.changes.size()) > limit)
      return Fail(from.label() + " pull: " + std::to_string(batch.changes.size()) + " changes, limit " +
                  std::to_string(limit)),
             false;
    Snapshot now;
    if (!Read(from, &now)) return false;
    std::set<std::pair<std::string, std::string>> seen;
    for (std::size_t i = 0; i < batch.changes.size(); ++i) {
      const core::Change& change = batch.changes[i];
      const std::string what = from.label() + " pull, change " + std::to_string(i) + " (" + change.table + " ";
      const TableSpec* spec = FindTable(change.table);
      if (spec == nullptr) return Fail(what + "): unknown table"), false;
      Row row;
      if (!RowOf(*spec, change, &row)) return Fail(what + "): malformed key or row"), false;
      const std::string key = KeyText(row.key);
      if (!seen.insert({change.table, key}).second) return Fail(what + key + "): the row twice in one page"), false;
      bool deleted = change.op == core::Op::kDelete;
      Meta m{change.hlc, change.node, deleted};
      const MetaState& meta = now.meta[change.table];
      auto it = meta.find(key);
      if (it == meta.end() || MetaText(it->second) != MetaText(m))
        return Fail(what + key + "): version " + MetaText(m) + " is not the source's current one (" +
                    (it == meta.end() ? "none" : MetaText(it->second)) + ")"),
               false;
      const Version* version = model_.Find(change.table, key, change.hlc, change.node);
      if (version == nullptr)
        return Fail(what + key + "): version " + MetaText(m) + " was never written\n" +
                    model_.History(change.table, key)),
               false;
      if (!Model::Same(*version, deleted, row.values))
        return Fail(what + key + "): version " + MetaText(m) + " carries " +
                    (deleted ? "a delete" : ValuesText(row.values)) + " but was written as " +
                    (version->deleted ? "a delete" : ValuesText(version->values))),
               false;
      if (filter == Filter::kExcludeTo && change.node == nodes_[to]->id())
        return Fail(what + key + "): exclude_origin let the receiver's own version through"), false;
      if (filter == Filter::kLocal && change.node != from.id())
        return Fail(what + key + "): origin local returned a version from " + change.node), false;
    }
    return true;
  }

  // A change's key and row in the table's column order.
  static bool RowOf(const TableSpec& spec, const core::Change& change, Row* row) {
    auto find = [](const std::vector<core::ColumnValue>& columns, const std::string& name) -> const Value* {
      for (const auto& column : columns)
        if (column.column == name) return &column.value;
      return nullptr;
    };
    if (change.pk.size() != spec.keys.size()) return false;
    for (const Column& column : spec.keys) {
      const Value* value = find(change.pk, column.name);
      if (value == nullptr) return false;
      row->key.push_back(*value);
    }
    if (change.op == core::Op::kDelete) return true;
    if (change.row.size() != spec.keys.size() + spec.values.size()) return false;
    for (const Column& column : spec.values) {
      const Value* value = find(change.row, column.name);
      if (value == nullptr) return false;
      row->values.push_back(*value);
    }
    return true;
  }

  // Applies a page to node `target`, predicting the merge first: which
  // changes win, the rows and metadata afterwards, the summary's counts.
  // Returns the number applied (-1 on failure). With `delivered`, the apply
  // may run inside the caller's transaction, committed or rolled back, and
  // may be blocked by the server's second session; *delivered says whether
  // the page's changes were kept.
  long long Apply(const Page& page, int target, const std::string& why, bool* delivered = nullptr) {
    Node& node = *nodes_[target];
    enum { kPlain, kCommit, kRollback } mode = kPlain;
    if (delivered != nullptr) {
      *delivered = false;
      int roll = Uniform(0, 99);
      mode = roll < 80 ? kPlain : roll < 90 ? kCommit : kRollback;
    }
    Snapshot before;
    if (!Read(node, &before)) return -1;
    Snapshot predicted = before;
    long long wins = 0;
    std::string summary_of_changes;
    for (const core::Change& change : page.batch.changes) {
      const TableSpec* spec = FindTable(change.table);
      Row row;
      if (spec == nullptr || !RowOf(*spec, change, &row)) return Fail("malformed change in " + Short(page.text)), -1;
      const std::string key = KeyText(row.key);
      Meta incoming{change.hlc, change.node, change.op == core::Op::kDelete};
      MetaState& meta = predicted.meta[change.table];
      auto it = meta.find(key);
      int order = it == meta.end() ? 1 : Order(change.hlc, change.node, it->second.hlc, it->second.node);
      summary_of_changes += " " + change.table + key + "@" + MetaText(incoming) + (order > 0 ? "+" : "");
      if (order <= 0) continue;
      meta[key] = incoming;
      if (incoming.deleted)
        predicted.rows[change.table].erase(key);
      else
        predicted.rows[change.table][key] = row;
      ++wins;
    }
    const char* in = mode == kPlain ? "" : mode == kCommit ? " (in BEGIN ... COMMIT)" : " (in BEGIN ... ROLLBACK)";
    Log(why + in + ": " + nodes_[page.from]->label() + " -> " + node.label() + " [" + page.options + "] " +
        std::to_string(page.batch.changes.size()) + " changes, has_more " + (page.batch.has_more ? "1" : "0") +
        ", cursor " + page.batch.cursor + ":" + summary_of_changes);
    std::string error;
    if (mode != kPlain && !(error = node.Exec("BEGIN")).empty()) return Fail(node.label() + ": BEGIN: " + error), -1;
    auto summary = node.Apply(page.text, &error);
    if (!summary && delivered != nullptr && node.is_pg() && second_open_ &&
        error.find("lock timeout") != std::string::npos) {
      // Blocked by the second session's row locks: nothing may have changed.
      Log("  blocked by pg/2: " + error);
      if (mode != kPlain && !(error = node.Exec("ROLLBACK")).empty())
        return Fail(node.label() + ": ROLLBACK: " + error), -1;
      return Unchanged(node, before, "a blocked apply_push") ? 0 : -1;
    }
    if (!summary)
      return Fail(node.label() + " apply_push of a page from " + nodes_[page.from]->label() + " failed: " + error +
                  "\n  batch: " + Short(page.text, 2000)),
             -1;
    core::Json json;
    core::Status status = core::ParseJson(*summary, &json);
    auto number = [&](const char* field) -> long long {
      const core::Json* item = status.ok() ? json.Find(field) : nullptr;
      return item != nullptr && item->is_number() ? std::stoll(item->text) : -1;
    };
    long long applied = number("applied"), skipped = number("skipped");
    if (applied != wins || skipped != static_cast<long long>(page.batch.changes.size()) - wins)
      return Fail(node.label() + " apply_push returned " + *summary + "; expected " + std::to_string(wins) +
                  " applied\n  batch: " + Short(page.text, 2000)),
             -1;
    if (node.is_pg() && number("rewritten") != 0)
      return Fail(node.label() + " apply_push rewrote values: " + *summary + "\n  batch: " + Short(page.text, 2000)),
             -1;
    if (mode == kRollback) {
      if (!(error = node.Exec("ROLLBACK")).empty()) return Fail(node.label() + ": ROLLBACK: " + error), -1;
      return Unchanged(node, before, "an apply_push rolled back by the caller") ? applied : -1;
    }
    if (mode == kCommit && !(error = node.Exec("COMMIT")).empty()) return Fail(node.label() + ": COMMIT: " + error), -1;
    if (delivered != nullptr) *delivered = true;
    if (!Acknowledged(target, page)) return -1;
    Snapshot after;
    if (!Read(node, &after)) return -1;
    for (const TableSpec& spec : Tables()) {
      if (Dump(after.rows[spec.name]) != Dump(predicted.rows[spec.name]))
        return Fail(node.label() + " after apply_push, " + spec.name + " holds:\n" + Dump(after.rows[spec.name]) +
                    "  the merge predicts:\n" + Dump(predicted.rows[spec.name]) + "  batch: " + Short(page.text, 2000)),
               -1;
      if (Dump(after.meta[spec.name]) != Dump(predicted.meta[spec.name]))
        return Fail(node.label() + " after apply_push, " + spec.name + " metadata:\n" + Dump(after.meta[spec.name]) +
                    "  the merge predicts:\n" + Dump(predicted.meta[spec.name]) + "  batch: " + Short(page.text, 2000)),
               -1;
    }
    CheckConsistent(node, after, "after apply_push");
    return applied;
  }

  // After `target` kept a page: its peer cursor for the page's source and
  // options is the furthest cursor of all the pages with that source and
  // filter it kept, whatever order they came in (a late page does not move
  // it back).
  bool Acknowledged(int target, const Page& page) {
    std::vector<std::string> parts = Split(page.batch.cursor, ':');
    if (parts.size() != 3) return Fail("a page's cursor is not node:filter:position: " + page.batch.cursor), false;
    std::string& furthest = acknowledged_[{target, parts[0], parts[1]}];
    if (furthest.empty() || PositionBefore(Split(furthest, ':')[2], parts[2])) furthest = page.batch.cursor;
    std::string error;
    auto recorded = nodes_[target]->PeerCursor(page.batch.source, page.pull_options, &error);
    if (!error.empty()) return Fail(nodes_[target]->label() + " peer_cursor: " + error), false;
    if (recorded != furthest)
      return Fail(nodes_[target]->label() + " peer_cursor(" + nodes_[page.from]->label() + ", " +
                  page.pull_options.value_or("-") + ") is " + recorded.value_or("NULL") + ", expected " + furthest +
                  " (the furthest page kept)"),
             false;
    return true;
  }

  static std::vector<std::string> Split(const std::string& text, char separator) {
    std::vector<std::string> parts(1);
    for (char c : text) {
      if (c == separator)
        parts.emplace_back();
      else
        parts.back() += c;
    }
    return parts;
  }

  // Positions are dot-separated unsigned integers, compared part by part.
  static bool PositionBefore(const std::string& a, const std::string& b) {
    std::vector<std::string> x = Split(a, '.'), y = Split(b, '.');
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      unsigned long long u = std::stoull(x[i]), v = std::stoull(y[i]);
      if (u != v) return u < v;
    }
    return x.size() < y.size();
  }

  // True when `node` still holds exactly `before`.
  bool Unchanged(Node& node, const Snapshot& before, const std::string& what) {
    Snapshot after;
    if (!Read(node, &after)) return false;
    for (const TableSpec& spec : Tables()) {
      if (Dump(after.rows[spec.name]) != Dump(before.rows.at(spec.name)) ||
          Dump(after.meta[spec.name]) != Dump(before.meta.at(spec.name)))
        return Fail(node.label() + ": " + what + " left changes in " + spec.name + ":\n" + Dump(after.rows[spec.name]) +
                    Dump(after.meta[spec.name]) + "  before:\n" + Dump(before.rows.at(spec.name)) +
                    Dump(before.meta.at(spec.name))),
               false;
    }
    return true;
  }

  // Pulls one page; nullopt (and a failure) on error.
  std::optional<Page> PullPage(int from, int to, Filter filter, const std::optional<std::string>& options,
                               const std::optional<std::string>& cursor, int limit) {
    Node& source = *nodes_[from];
    std::string error;
    auto text = source.Pull(cursor, limit, options, &error);
    if (!text) {
      Fail(source.label() + " pull_since(" + cursor.value_or("NULL") + ", " + std::to_string(limit) + ", " +
           options.value_or("-") + ") for " + nodes_[to]->label() + " failed: " + (error.empty() ? "NULL" : error));
      return std::nullopt;
    }
    Page page;
    page.from = from;
    page.to = to;
    page.options = std::string(FilterName(filter)) + ", limit " + std::to_string(limit);
    page.pull_options = options;
    page.text = *text;
    core::Status status = core::DecodeBatch(page.text, &page.batch);
    if (!status.ok()) {
      Fail(source.label() + " pull_since returned a batch that does not decode: " + status.message() + "\n  " +
           Short(page.text));
      return std::nullopt;
    }
    if (!CheckPulled(source, to, filter, limit, page)) return std::nullopt;
    return page;
  }

  // A random sync between a random pair: some pages (or all of them), each
  // applied once, twice, or held back to be delivered late.
  void SyncRandomPair() {
    int a = Uniform(1, kClients);
    int b = Chance(0.65) ? kServer : Other(1, kClients, a);
    int from = a, to = b;
    if (Chance(0.5)) std::swap(from, to);
    int roll = Uniform(0, 99);
    Filter filter = roll < 30 ? Filter::kNone : roll < 80 ? Filter::kExcludeTo : Filter::kLocal;
    int limit = Uniform(1, 20);
    int pages = Chance(0.6) ? kMaxPages : Uniform(1, 3);
    auto stream = std::make_tuple(from, to, static_cast<int>(filter));

    std::optional<std::string> cursor;
    std::string start;
    roll = Uniform(0, 99);
    if (roll < 50 || (roll < 85 && streams_.count(stream) == 0)) {
      // Resume where the receiver acknowledged.
      std::string error;
      cursor = nodes_[to]->PeerCursor(nodes_[from]->id(), OptionsFor(filter, to), &error);
      if (!error.empty()) return Fail(nodes_[to]->label() + " peer_cursor: " + error);
      start = "peer cursor";
    } else if (roll < 85) {
      // Pipelined: where the last pull of this stream stopped (every page
      // pulled is delivered sooner or later, so nothing is skipped).
      cursor = streams_[stream];
      start = "last pulled cursor";
    } else {
      start = "from the beginning";
    }
    Log("sync " + nodes_[from]->label() + " -> " + nodes_[to]->label() + " (" + FilterName(filter) + ", limit " +
        std::to_string(limit) + ", " + start + " " + cursor.value_or("NULL") + ")");
    for (int i = 0; i < pages && !failed_; ++i) {
      auto page = PullPage(from, to, filter, OptionsFor(filter, to), cursor, limit);
      if (!page) return;
      streams_[stream] = page->batch.cursor.empty() ? cursor : std::optional<std::string>(page->batch.cursor);
      if (Chance(0.1)) {
        Log("page held back: " + std::to_string(page->batch.changes.size()) + " changes, cursor " + page->batch.cursor);
        deferred_.push_back(*page);
      } else {
        bool delivered = false;
        if (Apply(*page, to, "deliver", &delivered) < 0) return;
        if (!delivered) {
          deferred_.push_back(*page);  // delivered later
        } else {
          if (Chance(0.1)) {
            long long again = Apply(*page, to, "deliver again");
            if (again < 0) return;
            if (again != 0) return Fail("applying the same page twice applied " + std::to_string(again) + " changes");
          }
          history_.push_back(*page);
        }
      }
      if (!page->batch.has_more) break;
      cursor = page->batch.cursor;
    }
  }

  // An old page again: to its receiver (a late duplicate) or to another node.
  void Redeliver() {
    if (history_.empty()) return;
    const Page page = history_[Uniform(0, history_.size() - 1)];
    int target = Chance(0.3) ? Other(0, kClients, page.from) : page.to;
    bool delivered = false;
    long long applied = Apply(page, target, target == page.to ? "late duplicate" : "relay of an old page", &delivered);
    if (applied > 0 && target == page.to)
      Fail("an old page delivered again to its receiver applied " + std::to_string(applied) + " changes");
  }

  // A delivered page again, with one bad change slipped in: the whole batch
  // must be refused with an error naming that change, and leave the rows,
  // the metadata and the peer cursor as they were (docs/protocol.md,
  // "Applying"). The server refuses a conflict (an unknown column, a value
  // its column cannot hold) on its own instead ("Conflicts"), so it gets
  // malformed changes and stamps that must wait (also the whole batch).
  void Poison() {
    if (history_.empty()) return;
    const Page& page = history_[Uniform(0, history_.size() - 1)];
    Node& node = *nodes_[page.to];
    Snapshot before;
    if (!Read(node, &before)) return;
    core::Change bad;
    bad.table = "t1";
    bad.pk = {{"k", Value::Text("k0")}};
    bad.row = {{"k", Value::Text("k0")}, {"a", Value::Integer(1)}, {"b", Value::Text("poison")}, {"c", Value::Null()}};
    bad.clock = 1;
    bad.hlc = core::HlcFromPhysicalMs(core::WallClockMs() - 1000);
    bad.node = nodes_[page.from]->id();
    std::string what;
    int kind = Uniform(0, 3);
    if (kind == 3) {
      // The receiver's own current version of a row, with other content.
      for (const core::Change& change : page.batch.changes) {
        Row row;
        const TableSpec* spec = FindTable(change.table);
        if (spec == nullptr || !RowOf(*spec, change, &row)) continue;
        auto& meta = before.meta[change.table];
        auto it = meta.find(KeyText(row.key));
        if (it == meta.end() || it->second.hlc != change.hlc || it->second.node != change.node) continue;
        bad = change;
        if (bad.op == core::Op::kDelete) {
          bad.op = core::Op::kUpsert;
          bad.row = bad.pk;
          for (const Column& column : spec->values)
            bad.row.push_back({column.name, Value::Null()});
        } else {
          bad.op = core::Op::kDelete;
          bad.row.clear();
        }
        what = "a known stamp with other content";
        break;
      }
      if (what.empty()) kind = Uniform(0, 2);
    }
    if (kind < 2 && node.label() == "pg") kind = 2;
    if (kind == 0) {
      bad.row.push_back({"zz", Value::Integer(1)});
      what = "an unknown column";
    } else if (kind == 1) {
      bad.row[1].value = Value::Text("not a number");
      what = "text for an integer column";
    } else if (kind == 2) {
      bad.hlc = core::HlcFromPhysicalMs(core::WallClockMs() + 2 * core::kDefaultMaxDriftMs);
      what = "a stamp beyond the drift bound";
    }
    std::size_t at = Uniform(0, page.batch.changes.size());
    core::BatchWriter writer(page.batch.source);
    for (std::size_t i = 0; i <= page.batch.changes.size(); ++i) {
      if (i == at) writer.Add(bad);
      if (i < page.batch.changes.size()) writer.Add(page.batch.changes[i]);
    }
    std::string text = writer.Finish(page.batch.cursor, page.batch.has_more);
    Log("poisoned page: " + nodes_[page.from]->label() + " -> " + node.label() + ", change " + std::to_string(at) +
        " of " + std::to_string(page.batch.changes.size() + 1) + " has " + what);
    std::string error;
    auto cursor_before = node.PeerCursor(page.batch.source, page.pull_options, &error);
    if (!error.empty()) return Fail(node.label() + " peer_cursor: " + error);
    auto summary = node.Apply(text, &error);
    if (summary)
      return Fail(node.label() + " accepted a batch whose change " + std::to_string(at) + " has " + what + ": " +
                  *summary + "\n  batch: " + Short(text, 2000));
    if (error.find("change " + std::to_string(at) + " ") == std::string::npos)
      return Fail(node.label() + " refused a batch whose change " + std::to_string(at) + " has " + what +
                  ", but the error does not name that change: " + error);
    Log("  refused: " + error);
    if (!Unchanged(node, before, "a refused batch")) return;
    std::string failure;
    auto cursor_after = node.PeerCursor(page.batch.source, page.pull_options, &failure);
    if (cursor_after != cursor_before || !failure.empty())
      Fail(node.label() + ": a refused batch moved the peer cursor from " + cursor_before.value_or("NULL") + " to " +
           cursor_after.value_or("NULL") + failure);
  }

  void DeliverDeferred() {
    if (deferred_.empty()) return;
    std::size_t i = Uniform(0, deferred_.size() - 1);
    Page page = deferred_[i];
    deferred_.erase(deferred_.begin() + i);
    bool delivered = false;
    if (Apply(page, page.to, "late page", &delivered) < 0) return;
    if (delivered)
      history_.push_back(page);
    else
      deferred_.push_back(page);
  }

  // Everything `from` has that `to` did not originate, from `to`'s peer
  // cursor on. Returns the number applied (-1 on failure).
  long long FullSync(int from, int to) {
    std::optional<std::string> options = R"({"exclude_origin":")" + nodes_[to]->id() + R"("})";
    std::string error;
    auto cursor = nodes_[to]->PeerCursor(nodes_[from]->id(), options, &error);
    if (!error.empty()) return Fail(nodes_[to]->label() + " peer_cursor: " + error), -1;
    int limit = Uniform(1, 20);
    Log("full sync " + nodes_[from]->label() + " -> " + nodes_[to]->label() + " from " + cursor.value_or("NULL"));
    long long applied = 0;
    for (int i = 0; i < kMaxPages; ++i) {
      auto page = PullPage(from, to, Filter::kExcludeTo, options, cursor, limit);
      if (!page) return -1;
      long long n = Apply(*page, to, "full sync");
      if (n < 0) return -1;
      applied += n;
      if (!page->batch.has_more) return applied;
      cursor = page->batch.cursor;
    }
    Fail("full sync " + nodes_[from]->label() + " -> " + nodes_[to]->label() + " did not end");
    return -1;
  }

  bool WaitForQuietServer() {
    std::string waited_for;
    std::string error = sim::WaitForQuietServer(static_cast<PgNode&>(*nodes_[kServer]), &waited_for);
    if (!error.empty()) return Fail(error), false;
    if (!waited_for.empty()) Log("waited for " + waited_for);
    return true;
  }

  void Finish() {
    step_ = steps_ + 1;
    if (second_open_) CloseSecondSession();
    while (!deferred_.empty() && !failed_)
      DeliverDeferred();
    // Every client pushes then pulls, twice: everything reaches the server in
    // the first round and every client in the second; a third round must
    // move nothing.
    for (int round = 0; round < 3 && !failed_; ++round) {
      if (!WaitForQuietServer()) return;
      long long applied = 0;
      for (int c = 1; c <= kClients && !failed_; ++c) {
        long long pushed = FullSync(c, kServer);
        long long pulled = pushed < 0 ? -1 : FullSync(kServer, c);
        if (pushed < 0 || pulled < 0) return;
        applied += pushed + pulled;
      }
      if (round == 2 && applied != 0)
        return Fail("not quiescent: a third round of full syncs applied " + std::to_string(applied) + " changes");
    }
    if (failed_) return;
    // Every replica holds the same rows and metadata (canonical dumps) ...
    for (const TableSpec& spec : Tables()) {
      std::string first_rows, first_meta;
      for (const auto& node : nodes_) {
        std::string error;
        std::string rows = Dump(node->ReadTable(spec, &error));
        std::string meta = error.empty() ? Dump(node->ReadMeta(spec, &error)) : "";
        if (!error.empty()) return Fail(node->label() + ": " + error);
        if (node == nodes_[0]) {
          first_rows = rows;
          first_meta = meta;
        } else if (rows != first_rows || meta != first_meta) {
          return Fail("replicas diverge: " + spec.name + " on " + nodes_[0]->label() + ":\n" + first_rows + first_meta +
                      "  on " + node->label() + ":\n" + rows + meta);
        }
      }
    }
    // ... and it is the model's prediction: each row's greatest version.
    for (const TableSpec& spec : Tables()) {
      TableState expected_rows = model_.Expected(spec);
      MetaState expected_meta = model_.ExpectedMeta(spec);
      for (const auto& node : nodes_) {
        std::string error;
        TableState rows = node->ReadTable(spec, &error);
        MetaState meta = error.empty() ? node->ReadMeta(spec, &error) : MetaState();
        if (!error.empty()) return Fail(node->label() + ": " + error);
        if (Dump(rows) != Dump(expected_rows) || Dump(meta) != Dump(expected_meta)) {
          std::string history;
          std::set<std::string> keys;
          for (const auto* state : {&rows, &expected_rows})
            for (const auto& [key, row] : *state)
              keys.insert(key);
          for (const auto& [key, m] : expected_meta)
            keys.insert(key);
          for (const std::string& key : keys) {
            bool same_row =
                rows.count(key) == expected_rows.count(key) &&
                (rows.count(key) == 0 || ValuesText(rows[key].values) == ValuesText(expected_rows[key].values));
            bool same_meta = meta.count(key) == expected_meta.count(key) &&
                             (meta.count(key) == 0 || MetaText(meta[key]) == MetaText(expected_meta[key]));
            if (!same_row || !same_meta)
              history += "  " + spec.name + " " + key + ":\n" + model_.History(spec.name, key);
          }
          return Fail(node->label() + " did not converge to the model: " + spec.name + " holds\n" + Dump(rows) +
                      "  model:\n" + Dump(expected_rows) + "  metadata:\n" + Dump(meta) + "  model metadata:\n" +
                      Dump(expected_meta) + "  versions of the rows that differ:\n" + history);
        }
      }
    }
    // A pull from the beginning is a snapshot: one change per row, the current one.
    if (!WaitForQuietServer()) return;
    for (int n = 0; n <= kClients && !failed_; ++n) {
      int to = n == kServer ? 1 : kServer;
      auto page = PullPage(n, to, Filter::kNone, std::nullopt, std::nullopt, 1000);
      if (!page) return;
      std::size_t rows = 0;
      for (const TableSpec& spec : Tables())
        rows += model_.ExpectedMeta(spec).size();
      if (page->batch.changes.size() != rows || page->batch.has_more)
        return Fail(nodes_[n]->label() + " full pull: " + std::to_string(page->batch.changes.size()) + " changes for " +
                    std::to_string(rows) + " rows");
    }
  }

  std::uint64_t seed_;
  int steps_;
  int step_ = 0;
  bool failed_ = false;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unique_ptr<PgNode> second_;  // a second session on the server database
  bool second_open_ = false;
  Snapshot second_before_;
  std::map<std::string, TableState> second_expected_;
  std::set<std::pair<std::string, std::string>> second_touched_;
  std::string second_description_;
  std::vector<std::int64_t> skew_;
  Model model_;
  std::vector<Page> history_;                                                // pages delivered to their receiver
  std::vector<Page> deferred_;                                               // pages pulled, not yet delivered
  std::map<std::tuple<int, int, int>, std::optional<std::string>> streams_;  // last pulled cursor per stream
  StepLog log_;
  std::optional<std::pair<int, int>> forced_;
  // (receiver, cursor node, cursor filter) -> the furthest cursor it kept.
  std::map<std::tuple<int, std::string, std::string>, std::string>
      acknowledged_;  // (table, key) the next write must touch
};

// The server database: t1 and t2 dropped and created anew for every scenario
// (untracked first, so their metadata goes too).
std::string ResetServerTables() {
  std::string sql = "DO $$ BEGIN "
                    "IF to_regclass('public.t1') IS NOT NULL THEN PERFORM syncline.untrack('public.t1'); END IF; "
                    "IF to_regclass('public.t2') IS NOT NULL THEN PERFORM syncline.untrack('public.t2'); END IF; "
                    "END $$; DROP TABLE IF EXISTS t1, t2;";
  for (const TableSpec& spec : Tables())
    sql += spec.pg_ddl + "; SELECT syncline.track('" + spec.name + "');";
  return sql;
}

TEST(Simulation, RandomHistoriesConvergeToTheModel) {
  const std::int64_t scenarios = EnvInt("SYNCLINE_SIM_SCENARIOS", 150);
  const int steps = static_cast<int>(EnvInt("SYNCLINE_SIM_STEPS", 150));
  const std::vector<std::uint64_t> seeds = ScenarioSeeds(scenarios, steps);
  auto started = std::chrono::steady_clock::now();
  int ties = 0;
  int failures = RunScenarios(seeds, kScenariosPerDatabase, ResetServerTables(),
                              [&](std::uint64_t seed, const std::string& dbname, const test::TempDir& dir) {
                                Scenario scenario(seed, dbname, dir, steps);
                                bool passed = scenario.Run();
                                ties += scenario.ties();
                                return passed;
                              });
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "[ sim      ] " << seeds.size() << " scenarios in " << seconds << " s ("
            << static_cast<double>(seeds.size()) / seconds << " scenarios/s), " << ties
            << " equal stamps from different nodes, " << failures << " failed" << std::endl;
}

}  // namespace
}  // namespace syncline::sim
