// Sync never stalls (docs/protocol.md, "Conflicts"), over random histories
// in the real topology: one PostgreSQL server and three devices, each a real
// SQLite file cloned and synced by the client library (client::Clone,
// client::Sync), over a schema whose constraints refuse changes:
//
//   tags(id uuid PRIMARY KEY, org int NOT NULL, name text NOT NULL, UNIQUE (org, name))
//   items(id uuid PRIMARY KEY, tag_id uuid REFERENCES tags(id), body text, CHECK (length(body) < 12))
//
// A device's clone has the primary keys, NOT NULL and the foreign key, but
// neither the UNIQUE nor the CHECK: those only the server enforces. The value
// spaces are small (two orgs, three names, pools of ids, a body too long for
// the server), so collisions are frequent.
//
// Random steps: a device writes through its own connection, as an app does
// (insert, update, delete of tags and items, sometimes several in one
// transaction, sometimes with foreign keys off: a name another device took,
// a child of a parent another device deleted, a body the server refuses, a
// deleted id revived, two tags swapping names); the server writes; a random
// device syncs with a random page size, sometimes while its app writes
// between two of the sync's pages; a device's clock skews within +-2 minutes
// (syncline_config('clock_skew_ms') on the app's connection, which makes the
// writes).
//
// Checked: every Sync succeeds. At the end every device syncs, round robin,
// until a round moves nothing; then every device holds the server's rows and
// metadata; every entry of the server's conflict log for a device is in that
// device's log (side 'server', same server id); no refused version is the
// server's current one; and nothing is lost silently: the server's version
// of each row is at least every version written to it, and is one of them
// with the content written, or the answer to a refusal of the last one.
//
// SYNCLINE_SIM_CONSTRAINTS_SCENARIOS (default 20, about 35 s on the loaded
// 2-core test machine; 200 with SYNCLINE_LONG) scenarios of
// SYNCLINE_SIM_CONSTRAINTS_STEPS (default 60) steps; SYNCLINE_SIM_LOCAL_UNIQUE=1
// gives half the devices the server's UNIQUE in their files too (see
// DISABLED_ADeviceWithTheServersUniqueTakesASwap). Seeds as in
// sim_test.cc: SYNCLINE_SIM_BASE_SEED, SYNCLINE_SIM_SEED replays one
// scenario; a failure prints its seed and writes the step log to
// /tmp/syncline-sim-constraints-<seed>.log (SYNCLINE_SIM_LOG=1: every
// scenario's). The tests at the end replay by hand the cases the simulation
// found.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <set>
#include <tuple>

#include "client/sync_client.h"
#include "tests/sim/sim.h"

namespace syncline::sim {
namespace {

constexpr int kDevices = 3;
constexpr int kScenariosPerDatabase = 10;    // a fresh server database now and then
constexpr std::int64_t kMaxSkewMs = 120000;  // within the drift bound (300000) even between opposite skews
constexpr int kMaxFinalRounds = 8;

const TableSpec kTags = {"tags",
                         {{"id", ColType::kText}},
                         {{"org", ColType::kInteger}, {"name", ColType::kText}},
                         "",
                         "CREATE TABLE tags(id uuid PRIMARY KEY, org int NOT NULL, name text NOT NULL, "
                         "UNIQUE (org, name))"};
const TableSpec kItems = {"items",
                          {{"id", ColType::kText}},
                          {{"tag_id", ColType::kText}, {"body", ColType::kText}},
                          "",
                          "CREATE TABLE items(id uuid PRIMARY KEY, tag_id uuid REFERENCES tags(id), body text, "
                          "CHECK (length(body) < 12))"};
const TableSpec* const kSpecs[] = {&kTags, &kItems};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

constexpr int kTagIds = 6;
constexpr int kItemIds = 10;
const char* const kNames[] = {"red", "green", "blue"};
const char* const kBodies[] = {"ok", "todo", "buy milk", "call back", "far too long a body"};

// A version as the writer's metadata recorded it right after a write.
struct Written {
  core::Hlc hlc = 0;
  std::string node;
  bool deleted = false;
  std::string content;  // ValuesText of the row, "" for a delete
  std::string where;    // "d2 step 17", for failure reports
};

// (hlc, node) order, node ids bytewise (docs/protocol.md, "Versions and the
// conflict rule").
int Compare(core::Hlc a_hlc, const std::string& a_node, core::Hlc b_hlc, const std::string& b_node) {
  if (a_hlc != b_hlc) return a_hlc < b_hlc ? -1 : 1;
  return a_node < b_node ? -1 : a_node > b_node ? 1 : 0;
}

// An entry of the server's conflict log.
struct ServerConflict {
  std::string id, device, table, key, op, hlc, origin, sqlstate, answer, forget;
};

struct Totals {
  int syncs = 0;
  int writes = 0;
  int refused_locally = 0;  // writes the device's own constraints refused
  int mid_sync_writes = 0;
  int final_rounds = 0;
  std::int64_t local_conflicts = 0;     // server versions a device could not store
  double client_seconds = 0;            // in client::Clone and client::Sync
  std::map<std::string, int> refusals;  // by table and SQLSTATE
};

// A device: its file, the app's connection, how the client reaches the server.
struct Device {
  std::string label;
  std::unique_ptr<SqliteNode> app;
  client::Options options;

  // Clones the server database `dbname` into a new file in `dir`, then opens
  // the app's connection to it, with foreign keys on or off and, with
  // `unique`, the server's UNIQUE (org, name) added to the file. Returns an
  // error, empty on success.
  std::string Clone(const std::string& name, const std::string& dbname, const test::TempDir& dir, bool fk, bool unique,
                    client::Counts* counts) {
    label = name;
    options.server = "dbname=" + dbname;
    options.db_path = dir.File(label + ".db");
    options.extension = test::ExtensionPath();
    core::Status status = client::Clone(options, counts);
    if (!status.ok()) return "clone failed: " + status.message();
    app = std::make_unique<SqliteNode>(label, options.db_path, SqliteNode::File::kCloned);
    std::string error = app->Exec(fk ? "PRAGMA foreign_keys = ON" : "PRAGMA foreign_keys = OFF");
    if (error.empty() && unique) error = app->Exec("CREATE UNIQUE INDEX tags_org_name ON tags(org, name)");
    return error;
  }
};

// Both tables of a node, canonical text.
std::string Contents(Node& node) {
  std::string out, error;
  for (const TableSpec* spec : kSpecs) {
    out += "  " + spec->name + ":\n" + Dump(node.ReadTable(*spec, &error));
    if (!error.empty()) return node.label() + ": " + error;
  }
  return out;
}

class Scenario : private Random {
 public:
  Scenario(std::uint64_t seed, const std::string& dbname, const test::TempDir& dir, int steps, Totals* totals)
      : Random(seed), seed_(seed), steps_(steps), totals_(totals), log_("syncline-sim-constraints", seed),
        dbname_(dbname), dir_(dir), server_(std::make_unique<PgNode>("pg", dbname)) {
    Log("pg is " + server_->id());
    for (int i = 0; i < kTagIds; ++i)
      tag_ids_.push_back(NewUuid());
    for (int i = 0; i < kItemIds; ++i)
      item_ids_.push_back(NewUuid());
  }

  // True when the scenario passed.
  bool Run() {
    Setup();
    for (step_ = 1; step_ <= steps_ && !failed_; ++step_) {
      // Step weights, in percent. A sync costs most (a new server session
      // and SQLite connection each): a quarter of the steps.
      int roll = Uniform(0, 99);
      if (roll < 52) {
        DeviceWrite(Uniform(0, kDevices - 1));
      } else if (roll < 64) {
        Write(*server_, "pg", Uniform(1, 3));
      } else if (roll < 88) {
        Sync(Uniform(0, kDevices - 1), /*write_during=*/false);
      } else if (roll < 94) {
        Sync(Uniform(0, kDevices - 1), /*write_during=*/true);
      } else {
        SetSkew(Uniform(0, kDevices - 1), Chance(0.3) ? 0 : Uniform(-kMaxSkewMs, kMaxSkewMs));
      }
    }
    if (!failed_) Finish();
    if (failed_ || EnvInt("SYNCLINE_SIM_LOG", 0) != 0) log_.Save();
    return !failed_;
  }

 private:
  // A version 4 UUID from the scenario's randomness.
  std::string NewUuid() {
    std::uint64_t a = Bits(), b = Bits();
    char text[40];
    std::snprintf(text, sizeof text, "%08llx-%04llx-4%03llx-%04llx-%012llx", static_cast<unsigned long long>(a >> 32),
                  static_cast<unsigned long long>((a >> 16) & 0xffff), static_cast<unsigned long long>(a & 0xfff),
                  static_cast<unsigned long long>(0x8000 | (b >> 50)),
                  static_cast<unsigned long long>(b & 0xffffffffffffULL));
    return text;
  }

  // --- reporting ---
  void Log(const std::string& line) { log_.Add(step_, line); }

  void Fail(const std::string& message) {
    if (failed_) return;
    failed_ = true;
    Log("FAILED: " + message);
    ADD_FAILURE() << "seed " << seed_ << " (replay: SYNCLINE_SIM_SEED=" << seed_
                  << " SYNCLINE_SIM_CONSTRAINTS_STEPS=" << steps_ << " build/sim_tests --gtest_filter=Constraints.*)"
                  << ", step " << step_ << ": " << message << "\nlast steps:\n"
                  << log_.Tail(30) << "full log: " << log_.path();
  }

  // --- set-up: a few rows on the server, then three clones ---
  void Setup() {
    Write(*server_, "pg", 3);
    for (int d = 0; d < kDevices && !failed_; ++d) {
      Device device;
      // An app may run with foreign keys off (its orphans reach the
      // server), and may add the server's UNIQUE to its file (then a server
      // version that takes a name a local row holds is skipped and retried).
      const bool foreign_keys = Chance(0.75);
      const bool unique = EnvInt("SYNCLINE_SIM_LOCAL_UNIQUE", 0) != 0 && Chance(0.5);
      const std::string label = "d" + std::to_string(d + 1);
      client::Counts counts;
      auto started = std::chrono::steady_clock::now();
      std::string error = device.Clone(label, dbname_, dir_, foreign_keys, unique, &counts);
      totals_->client_seconds += Seconds(started);
      if (!error.empty()) return Fail(label + ": " + error);
      device.options.log = [this, label](const std::string& line) { Log(label + " client: " + line); };
      Log(label + " is " + device.app->id() + ", cloned " + std::to_string(counts.pulled) + " changes" +
          (foreign_keys ? "" : ", foreign keys off") + (unique ? ", UNIQUE (org, name)" : ""));
      devices_.push_back(std::move(device));
      SetSkew(d, Chance(0.3) ? 0 : Uniform(-kMaxSkewMs, kMaxSkewMs));
    }
  }

  void SetSkew(int d, std::int64_t ms) {
    Device& device = devices_[d];
    Log(device.label + " clock skew " + std::to_string(ms) + " ms");
    std::string error = device.app->SetSkew(ms);
    if (!error.empty()) Fail("syncline_config('clock_skew_ms'): " + error);
  }

  // --- writes ---

  // Parameter i of a statement on `node`, cast for PostgreSQL.
  static std::string P(const Node& node, int i, const char* pg_type) {
    return node.is_pg() ? "$" + std::to_string(i) + "::" + pg_type : "?" + std::to_string(i);
  }

  struct Statement {
    std::string sql;
    std::vector<Value> params;
    std::string description;
  };

  // A random write of `node`, chosen from what it holds now: one statement,
  // or a few (a tag's children deleted before it, a swap of names); none
  // when nothing fits (no row to update, say).
  std::vector<Statement> RandomStatements(Node& node) {
    std::string error;
    TableState tags = node.ReadTable(kTags, &error);
    TableState items = error.empty() ? node.ReadTable(kItems, &error) : TableState();
    if (!error.empty()) return Fail(node.label() + ": reading: " + error), std::vector<Statement>();
    auto live = [](const TableState& table) {
      std::vector<std::string> ids;
      for (const auto& [key, row] : table)
        ids.push_back(row.key[0].bytes);
      return ids;
    };
    auto free = [](const std::vector<std::string>& pool, const TableState& table) {
      std::vector<std::string> ids;
      for (const std::string& id : pool)
        if (table.count(KeyText({Value::Text(id)})) == 0) ids.push_back(id);
      return ids;
    };
    const std::vector<std::string> live_tags = live(tags), live_items = live(items);
    const std::vector<std::string> free_tags = free(tag_ids_, tags), free_items = free(item_ids_, items);
    // A parent for an item: mostly one this node holds, sometimes none, sometimes any id of the pool (one
    // another node deleted, or never made).
    auto parent = [&]() {
      if (Chance(0.1)) return Value::Null();
      if (!live_tags.empty() && Chance(0.8)) return Value::Text(Pick(live_tags));
      return Value::Text(Pick(tag_ids_));
    };
    const std::string id1 = P(node, 1, "uuid");
    switch (Uniform(0, 6)) {
      case 0:
        if (free_tags.empty()) return {};
        return {{"INSERT INTO tags(id, org, name) VALUES (" + id1 + ", " + P(node, 2, "int") + ", " +
                     P(node, 3, "text") + ")",
                 {Value::Text(Pick(free_tags)), Value::Integer(Uniform(1, 2)), Value::Text(Pick(kNames))},
                 "insert tag"}};
      case 1:
        if (live_tags.empty()) return {};
        if (Chance(0.3))
          return {
              {"UPDATE tags SET org = " + P(node, 2, "int") + ", name = " + P(node, 3, "text") + " WHERE id = " + id1,
               {Value::Text(Pick(live_tags)), Value::Integer(Uniform(1, 2)), Value::Text(Pick(kNames))},
               "move tag"}};
        return {{"UPDATE tags SET name = " + P(node, 2, "text") + " WHERE id = " + id1,
                 {Value::Text(Pick(live_tags)), Value::Text(Pick(kNames))},
                 "rename tag"}};
      case 2: {
        if (live_tags.empty()) return {};
        const Value tag = Value::Text(Pick(live_tags));
        std::vector<Statement> statements;
        if (Chance(0.5))
          statements.push_back({"DELETE FROM items WHERE tag_id = " + id1, {tag}, "delete the items of tag"});
        statements.push_back({"DELETE FROM tags WHERE id = " + id1, {tag}, "delete tag"});
        return statements;
      }
      case 3:
        if (free_items.empty()) return {};
        return {{"INSERT INTO items(id, tag_id, body) VALUES (" + id1 + ", " + P(node, 2, "uuid") + ", " +
                     P(node, 3, "text") + ")",
                 {Value::Text(Pick(free_items)), parent(), Value::Text(Pick(kBodies))},
                 "insert item"}};
      case 4:
        if (live_items.empty()) return {};
        if (Chance(0.4))
          return {{"UPDATE items SET tag_id = " + P(node, 2, "uuid") + " WHERE id = " + id1,
                   {Value::Text(Pick(live_items)), parent()},
                   "move item"}};
        return {{"UPDATE items SET body = " + P(node, 2, "text") + " WHERE id = " + id1,
                 {Value::Text(Pick(live_items)), Value::Text(Pick(kBodies))},
                 "edit item"}};
      case 5:
        if (live_items.empty()) return {};
        return {{"DELETE FROM items WHERE id = " + id1, {Value::Text(Pick(live_items))}, "delete item"}};
      default: {
        // Two tags of an org swap names, through a third name: where a
        // UNIQUE holds, a replica that sees only the end must apply both.
        std::vector<const Row*> pair;
        for (const auto& [key, row] : tags)
          if (pair.size() < 2 && (pair.empty() || row.values[0].integer == pair[0]->values[0].integer))
            pair.push_back(&row);
        if (pair.size() < 2 || Chance(0.5)) return {};
        const std::string rename = "UPDATE tags SET name = " + P(node, 2, "text") + " WHERE id = " + id1;
        return {{rename, {pair[0]->key[0], Value::Text("swapping")}, "swap tags: rename"},
                {rename, {pair[1]->key[0], pair[0]->values[1]}, "rename"},
                {rename, {pair[0]->key[0], pair[1]->values[1]}, "rename"}};
      }
    }
  }

  std::string Describe(const Statement& s) const {
    std::string out = s.description + " (";
    for (std::size_t i = 0; i < s.params.size(); ++i)
      out += (i > 0 ? ", " : "") + ValueText(s.params[i]);
    return out + ")";
  }

  struct MetaSnapshot {
    MetaState tags, items;
  };
  bool ReadMetaOf(Node& node, MetaSnapshot* out) {
    std::string error;
    out->tags = node.ReadMeta(kTags, &error);
    if (error.empty()) out->items = node.ReadMeta(kItems, &error);
    if (!error.empty()) Fail(node.label() + ": reading metadata: " + error);
    return error.empty();
  }

  // `count` random writes on `node` in one transaction. A statement the
  // node's own constraints refuse rolls the transaction back. The versions
  // the writes left are recorded.
  void Write(Node& node, const std::string& label, int count) {
    MetaSnapshot before;
    if (!ReadMetaOf(node, &before)) return;
    std::string error;
    if (!(error = node.Exec("BEGIN")).empty()) return Fail(label + ": BEGIN: " + error);
    std::string done;
    for (int i = 0; i < count && !failed_ && error.empty(); ++i) {
      for (const Statement& statement : RandomStatements(node)) {
        done += (done.empty() ? "" : "; ") + Describe(statement);
        error = node.Exec(statement.sql, statement.params);
        if (!error.empty()) break;
      }
    }
    if (failed_) return;
    if (!error.empty()) {
      ++totals_->refused_locally;
      Log(label + " write refused here: " + done + ": " + error);
      if (!(error = node.Exec("ROLLBACK")).empty()) Fail(label + ": ROLLBACK: " + error);
      return;
    }
    if (!(error = node.Exec("COMMIT")).empty()) return Fail(label + ": COMMIT: " + error);
    if (done.empty()) return;
    ++totals_->writes;
    Log(label + " writes: " + done);
    Record(node, label, before);
  }

  void DeviceWrite(int d) { Write(*devices_[d].app, devices_[d].label, Chance(0.2) ? Uniform(2, 3) : 1); }

  // The versions a write left on `node`: its metadata rows that changed.
  void Record(Node& node, const std::string& label, const MetaSnapshot& before) {
    MetaSnapshot after;
    if (!ReadMetaOf(node, &after)) return;
    for (const TableSpec* spec : kSpecs) {
      const MetaState& old_meta = spec == &kTags ? before.tags : before.items;
      const MetaState& new_meta = spec == &kTags ? after.tags : after.items;
      std::string error;
      TableState rows = node.ReadTable(*spec, &error);
      if (!error.empty()) return Fail(label + ": reading " + spec->name + ": " + error);
      for (const auto& [key, meta] : new_meta) {
        auto old = old_meta.find(key);
        if (old != old_meta.end() && MetaText(old->second) == MetaText(meta) && old->second.node == meta.node) continue;
        if (meta.node != node.id())
          return Fail(label + ": a local write left " + spec->name + " " + key +
                      " at another origin: " + MetaText(meta));
        auto row = rows.find(key);
        if (meta.deleted != (row == rows.end()))
          return Fail(label + ": " + spec->name + " " + key + " is " + (meta.deleted ? "deleted" : "live") +
                      " in the metadata but " + (row == rows.end() ? "absent" : "present") + " in the table");
        written_[{spec->name, key}].push_back(Written{meta.hlc, meta.node, meta.deleted,
                                                      meta.deleted ? "" : ValuesText(row->second.values),
                                                      label + " step " + std::to_string(step_)});
      }
    }
  }

  // --- syncs ---

  // One client::Sync of a device, with a random page size. With
  // `write_during`, the app writes while the sync runs: at the first page
  // the client reports (between two pushed pages, or inside a pull, where
  // the file is locked and the write waits for nothing: it fails busy).
  client::Counts Sync(int d, bool write_during) {
    Device& device = devices_[d];
    client::Options options = device.options;
    const int sizes[] = {1, 2, 3, 5, 1000, 1000};
    options.page_size = Pick(sizes);
    bool written = !write_during;
    if (write_during)
      options.progress = [&](const std::string& line) {
        if (written || failed_) return;
        written = true;
        ++totals_->mid_sync_writes;
        Log(device.label + " writes during its sync, after \"" + line + "\"");
        Write(*device.app, device.label, 1);
      };
    client::Counts counts;
    auto started = std::chrono::steady_clock::now();
    core::Status status = client::Sync(options, &counts);
    totals_->client_seconds += Seconds(started);
    ++totals_->syncs;
    Log(device.label + " sync (page " + std::to_string(options.page_size) + "): pushed " +
        std::to_string(counts.pushed) + ", pulled " + std::to_string(counts.pulled) + ", " +
        std::to_string(counts.conflicts) + " conflicts" + (counts.push_deferred ? ", push deferred" : "") +
        (status.ok() ? "" : ": FAILED: " + status.message()));
    if (!status.ok()) Fail(device.label + ": sync failed: " + status.message());
    return counts;
  }

  // --- the end: quiet, then compare ---

  void Finish() {
    step_ = steps_ + 1;
    int round = 0;
    for (;; ++round) {
      if (round == kMaxFinalRounds)
        return Fail("not quiescent: " + std::to_string(kMaxFinalRounds) + " rounds of syncs still move changes");
      std::string waited_for;
      std::string error = WaitForQuietServer(*server_, &waited_for);
      if (!error.empty()) return Fail(error);
      if (!waited_for.empty()) Log("waited for " + waited_for);
      std::int64_t moved = 0;
      for (int d = 0; d < kDevices && !failed_; ++d) {
        client::Counts counts = Sync(d, false);
        moved += counts.pushed + counts.pulled + counts.conflicts + (counts.push_deferred ? 1 : 0);
      }
      if (failed_) return;
      if (moved == 0) break;
    }
    totals_->final_rounds += round + 1;
    for (Device& device : devices_) {
      Result result = device.app->Query("SELECT count(*) FROM syncline_conflicts WHERE side = 'local'");
      if (result.error.empty()) totals_->local_conflicts += result.rows[0][0].integer;
    }
    CheckReplicas();
    std::vector<ServerConflict> conflicts;
    if (!failed_) conflicts = ReadServerConflicts();
    if (!failed_) CheckConflictLogs(conflicts);
    if (!failed_) CheckNothingLost(conflicts);
  }

  // Every device holds the server's rows and metadata.
  void CheckReplicas() {
    for (const TableSpec* spec : kSpecs) {
      std::string error;
      std::string rows = Dump(server_->ReadTable(*spec, &error));
      std::string meta = error.empty() ? Dump(server_->ReadMeta(*spec, &error)) : "";
      if (!error.empty()) return Fail("pg: reading " + spec->name + ": " + error);
      for (Device& device : devices_) {
        std::string device_rows = Dump(device.app->ReadTable(*spec, &error));
        std::string device_meta = error.empty() ? Dump(device.app->ReadMeta(*spec, &error)) : "";
        if (!error.empty()) return Fail(device.label + ": reading " + spec->name + ": " + error);
        if (device_rows != rows)
          return Fail(device.label + " does not hold the server's " + spec->name + ":\n  pg:\n" + rows + "  " +
                      device.label + ":\n" + device_rows + LocalConflicts(device));
        if (device_meta != meta)
          return Fail(device.label + " does not hold the server's " + spec->name + " metadata:\n  pg:\n" + meta + "  " +
                      device.label + ":\n" + device_meta + LocalConflicts(device));
      }
    }
  }

  // The open entries a device logged itself (versions it could not store).
  std::string LocalConflicts(Device& device) {
    Result result = device.app->Query("SELECT group_concat(table_name || ' ' || pk || ' ' || op || ' ' || hlc || "
                                      "' ' || sqlstate || ' ' || reason, char(10)) FROM syncline_conflicts WHERE "
                                      "side = 'local' AND resolved_at IS NULL");
    if (!result.error.empty()) return "  (syncline_conflicts: " + result.error + ")\n";
    if (result.rows.empty() || result.rows[0][0].type == Value::Type::kNull) return "";
    return "  open local conflicts of " + device.label + ":\n" + result.rows[0][0].bytes + "\n";
  }

  std::vector<ServerConflict> ReadServerConflicts() {
    std::vector<ServerConflict> conflicts;
    for (Device& device : devices_) {
      Result result =
          server_->Query("SELECT id::text, node_id, table_name, jsonb_build_array(pk->'id')::text, op, hlc, origin, "
                         "sqlstate, answer, forget::text FROM syncline.conflicts WHERE node_id = $1 ORDER BY id",
                         {Value::Text(device.app->id())});
      if (!result.error.empty()) return Fail("pg: reading syncline.conflicts: " + result.error), conflicts;
      for (const auto& row : result.rows) {
        auto text = [&](std::size_t i) { return row[i].type == Value::Type::kNull ? "NULL" : row[i].bytes; };
        // jsonb writes ["x"] as ["x"]: the protocol's key text.
        conflicts.push_back(
            ServerConflict{text(0), text(1), text(2), text(3), text(4), text(5), text(6), text(7), text(8), text(9)});
        ++totals_->refusals[text(2) + " " + text(7)];
      }
    }
    return conflicts;
  }

  // Each device's log holds the server's entries for it.
  void CheckConflictLogs(const std::vector<ServerConflict>& conflicts) {
    for (const ServerConflict& entry : conflicts) {
      Device* device = nullptr;
      for (Device& candidate : devices_)
        if (candidate.app->id() == entry.device) device = &candidate;
      Result result = device->app->Query(
          "SELECT table_name || ' ' || hlc || ' ' || origin || ' ' || sqlstate || ' ' || op FROM syncline_conflicts "
          "WHERE side = 'server' AND server_id = ?1",
          {Value::Integer(std::stoll(entry.id))});
      if (!result.error.empty()) return Fail(device->label + ": reading syncline_conflicts: " + result.error);
      const std::string expected =
          entry.table + " " + entry.hlc + " " + entry.origin + " " + entry.sqlstate + " " + entry.op;
      if (result.rows.empty())
        return Fail(device->label + " lacks the server's conflict #" + entry.id + ": " + expected);
      if (result.rows[0][0].bytes != expected)
        return Fail(device->label + " logged the server's conflict #" + entry.id + " as " + result.rows[0][0].bytes +
                    ", the server as " + expected);
    }
  }

  // No refused version is current on the server; the server's version of
  // each row is at least every version written to it; it is one of them,
  // with the content written, or the answer to a refusal.
  void CheckNothingLost(const std::vector<ServerConflict>& conflicts) {
    std::map<std::pair<std::string, std::string>, std::vector<const ServerConflict*>> refused;
    for (const ServerConflict& entry : conflicts)
      refused[{entry.table, entry.key}].push_back(&entry);
    for (const TableSpec* spec : kSpecs) {
      std::string error;
      MetaState meta = server_->ReadMeta(*spec, &error);
      TableState rows = error.empty() ? server_->ReadTable(*spec, &error) : TableState();
      if (!error.empty()) return Fail("pg: reading " + spec->name + ": " + error);
      std::set<std::string> keys;
      for (const auto& [key, m] : meta)
        keys.insert(key);
      for (const auto& [id, versions] : written_)
        if (id.first == spec->name) keys.insert(id.second);
      for (const std::string& key : keys) {
        auto final_it = meta.find(key);
        const std::vector<Written>& versions = written_[{spec->name, key}];
        const std::vector<const ServerConflict*>& refusals = refused[{spec->name, key}];
        std::string history;
        for (const Written& w : versions)
          history += "    " + core::HlcToText(w.hlc) + "/" + w.node.substr(0, 8) + " " +
                     (w.deleted ? "deleted" : w.content) + " (" + w.where + ")\n";
        for (const ServerConflict* r : refusals)
          history += "    refused #" + r->id + ": " + r->hlc + "/" + r->origin.substr(0, 8) + " " + r->op + " " +
                     r->sqlstate + ", answer " + r->answer + "\n";
        const std::string what = spec->name + " " + key;
        if (final_it == meta.end()) {
          if (!versions.empty()) return Fail(what + " was written but the server has no version of it:\n" + history);
          continue;
        }
        const Meta& final = final_it->second;
        const std::string final_text = MetaText(final);
        for (const ServerConflict* r : refusals)
          if (core::HlcToText(final.hlc) == r->hlc && final.node == r->origin)
            return Fail(what + ": the refused version #" + r->id + " is the server's (" + final_text + "):\n" +
                        history);
        const Written* greatest = nullptr;
        const Written* same = nullptr;
        for (const Written& w : versions) {
          int order = Compare(final.hlc, final.node, w.hlc, w.node);
          if (order < 0)
            return Fail(what + ": the server holds " + final_text + ", older than a version written at " + w.where +
                        " (lost):\n" + history);
          if (order == 0) same = &w;
          if (greatest == nullptr || Compare(w.hlc, w.node, greatest->hlc, greatest->node) > 0) greatest = &w;
        }
        if (same != nullptr) {
          std::string content = final.deleted ? "" : ValuesText(rows[key].values);
          if (same->deleted != final.deleted || same->content != content)
            return Fail(what + ": the server holds the version written at " + same->where +
                        " with other content: " + (final.deleted ? "deleted" : content) + ":\n" + history);
          continue;
        }
        // Not a written version: the server's answer to a refusal. The last
        // write was refused, or falls in the documented window of the rule
        // (docs/protocol.md, "A change the server refuses"): it ties with
        // the answer's stamp and loses by node id, or another node wrote it
        // at the refused stamp itself. Any other newer write that the answer
        // beat was lost silently.
        bool answered = !refusals.empty() && final.node == server_->id();
        bool last_refused = greatest == nullptr || greatest->hlc == final.hlc;
        for (const ServerConflict* r : refusals) {
          if (greatest == nullptr) continue;
          auto refused_hlc = core::HlcFromText(r->hlc);
          if (r->origin == greatest->node && r->hlc == core::HlcToText(greatest->hlc)) last_refused = true;
          if (refused_hlc && greatest->hlc == *refused_hlc) last_refused = true;
        }
        if (!answered)
          return Fail(what + ": the server holds " + final_text + ", no version written, and none refused:\n" +
                      history);
        if (!last_refused)
          return Fail(what + ": the server's answer " + final_text + " beat the last version written, at " +
                      greatest->where + ", which was not refused (lost with no conflict logged):\n" + history);
      }
    }
  }

  std::uint64_t seed_;
  int steps_;
  int step_ = 0;
  bool failed_ = false;
  Totals* totals_;
  StepLog log_;
  std::string dbname_;
  const test::TempDir& dir_;
  std::unique_ptr<PgNode> server_;
  std::vector<Device> devices_;
  std::vector<std::string> tag_ids_, item_ids_;
  std::map<std::pair<std::string, std::string>, std::vector<Written>> written_;  // (table, key) -> versions
};

// The server's tables, dropped and created anew for every scenario
// (untracked first, so their metadata goes too; items before tags).
std::string ResetServerTables() {
  return "DO $$ BEGIN "
         "IF to_regclass('public.items') IS NOT NULL THEN PERFORM syncline.untrack('public.items'); END IF; "
         "IF to_regclass('public.tags') IS NOT NULL THEN PERFORM syncline.untrack('public.tags'); END IF; "
         "END $$; DROP TABLE IF EXISTS items, tags; " +
         kTags.pg_ddl + "; " + kItems.pg_ddl + "; SELECT syncline.track('tags'); SELECT syncline.track('items');";
}

TEST(Constraints, RandomHistoriesNeverStallSync) {
  const std::int64_t scenarios =
      EnvInt("SYNCLINE_SIM_CONSTRAINTS_SCENARIOS", EnvInt("SYNCLINE_LONG", 0) != 0 ? 200 : 20);
  const int steps = static_cast<int>(EnvInt("SYNCLINE_SIM_CONSTRAINTS_STEPS", 60));
  const std::vector<std::uint64_t> seeds = ScenarioSeeds(scenarios, steps);
  auto started = std::chrono::steady_clock::now();
  Totals totals;
  int ran = 0;
  int failures = RunScenarios(seeds, kScenariosPerDatabase, ResetServerTables(),
                              [&](std::uint64_t seed, const std::string& dbname, const test::TempDir& dir) {
                                ++ran;
                                return Scenario(seed, dbname, dir, steps, &totals).Run();
                              });
  double seconds = Seconds(started);
  std::string refusals;
  for (const auto& [what, count] : totals.refusals)
    refusals += (refusals.empty() ? "" : ", ") + what + ": " + std::to_string(count);
  std::cout << "[ sim      ] " << ran << " scenarios in " << seconds << " s (" << totals.client_seconds
            << " s in the client library): " << totals.writes << " writes (" << totals.refused_locally
            << " refused by the device or server itself, " << totals.mid_sync_writes << " during a sync), "
            << totals.syncs << " syncs, " << totals.final_rounds << " final rounds, " << totals.local_conflicts
            << " versions a device could not store; refused by the server: " << (refusals.empty() ? "none" : refusals)
            << "; " << failures << " failed" << std::endl;
}

// --- the cases the simulation found, replayed by hand --------------------------

class ConstraintsCase : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = std::make_unique<test::TempDatabase>();
    server_ = std::make_unique<PgNode>("pg", database_->name());
    ASSERT_EQ(server_->ExecScript(ResetServerTables()), "");
  }

  // A device cloned now, foreign keys on.
  Device Clone(const std::string& label, bool unique = false) {
    Device device;
    client::Counts counts;
    std::string error = device.Clone(label, database_->name(), dir_, /*fk=*/true, unique, &counts);
    EXPECT_EQ(error, "") << label;
    return device;
  }

  // One sync of `device` with pages of `page_size` changes; `during`, when
  // given, runs once as the app's write at the first page the client
  // reports.
  core::Status Sync(Device& device, int page_size = 1000, std::function<void()> during = {},
                    client::Counts* counts_out = nullptr) {
    client::Options options = device.options;
    options.page_size = page_size;
    bool done = !during;
    options.progress = [&](const std::string&) {
      if (!done) during();
      done = true;
    };
    client::Counts counts;
    core::Status status = client::Sync(options, &counts);
    if (counts_out != nullptr) *counts_out = counts;
    return status;
  }

  void Server(const std::string& sql) { ASSERT_EQ(server_->ExecScript(sql), "") << sql; }
  // One statement through the app's connection.
  void App(Device& device, const std::string& sql) { ASSERT_EQ(device.app->Exec(sql), "") << sql; }

  std::unique_ptr<test::TempDatabase> database_;
  std::unique_ptr<PgNode> server_;
  test::TempDir dir_;
};

constexpr const char* kRed = "00000000-0000-4000-8000-000000000001";
constexpr const char* kBlue = "00000000-0000-4000-8000-000000000002";
constexpr const char* kItem = "00000000-0000-4000-8000-000000000003";

// A pushed page whose change the server refuses, before the last page: the
// change is refused on its own and the rest goes in, as with pages of 1000.
// (The server rejects a page with a constraint error while has_more is true;
// the client merges pages only for a foreign key, 23503, and otherwise fails
// the sync, again at every sync.)
class ConstraintsPagedPush : public ConstraintsCase {
 protected:
  // The device writes `refused` and then a tag the server takes, and pushes
  // them in pages of one change.
  void PushRefusedThenTaken(const std::string& refused) {
    Device device = Clone("d1");
    App(device, refused);
    App(device, std::string("INSERT INTO tags VALUES ('") + kBlue + "', 2, 'blue')");
    client::Counts counts;
    core::Status status = Sync(device, /*page_size=*/1, {}, &counts);
    ASSERT_TRUE(status.ok()) << status.message();
    EXPECT_EQ(counts.conflicts, 1);
    EXPECT_EQ(server_->Query("SELECT count(*) FROM tags WHERE id = $1::uuid", {Value::Text(kBlue)}).rows[0][0].bytes,
              "1");
    ASSERT_TRUE(Sync(device).ok());
    EXPECT_EQ(Contents(*device.app), Contents(*server_));
  }
};

TEST_F(ConstraintsPagedPush, ARefusedUniqueValueDoesNotStopThePush) {
  Server("INSERT INTO tags VALUES (gen_random_uuid(), 1, 'red')");
  PushRefusedThenTaken(std::string("INSERT INTO tags VALUES ('") + kRed + "', 1, 'red')");
}

// The same with a value only the server's CHECK refuses.
TEST_F(ConstraintsPagedPush, ARefusedCheckDoesNotStopThePush) {
  Server(std::string("INSERT INTO tags VALUES ('") + kRed + "', 1, 'red')");
  PushRefusedThenTaken(std::string("INSERT INTO items VALUES ('") + kItem + "', '" + kRed +
                       "', 'far too long a body')");
}

// The app writes a child of a tag while a sync runs, between its push and
// its pull, and the pull deletes the tag (another device deleted it): the
// pull's commit breaks the file's foreign key, and the sync fails ("nothing
// of this pull was kept"). The next sync pushes the child, the server
// refuses it and the one after converges; `sync --watch` stops at the
// first failure.
TEST_F(ConstraintsCase, AChildWrittenDuringASyncUnderATagThePullDeletes) {
  Server(std::string("INSERT INTO tags VALUES ('") + kRed + "', 1, 'red')");
  Device device = Clone("d1");
  App(device, std::string("INSERT INTO tags VALUES ('") + kBlue + "', 2, 'blue')");  // something to push
  Server(std::string("DELETE FROM tags WHERE id = '") + kRed + "'");
  core::Status status = Sync(device, 1000, [&] {
    App(device, std::string("INSERT INTO items VALUES ('") + kItem + "', '" + kRed + "', 'ok')");
  });
  EXPECT_TRUE(status.ok()) << status.message();
  ASSERT_TRUE(Sync(device).ok());
  ASSERT_TRUE(Sync(device).ok());
  EXPECT_EQ(Contents(*device.app), Contents(*server_));
}

// The app deletes a tag while a sync runs, between its push and its pull,
// and the pull brings a child of it (the server's): the same failure.
TEST_F(ConstraintsCase, ATagDeletedDuringASyncWhileThePullBringsAChild) {
  Server(std::string("INSERT INTO tags VALUES ('") + kRed + "', 1, 'red')");
  Device device = Clone("d1");
  App(device, std::string("INSERT INTO tags VALUES ('") + kBlue + "', 2, 'blue')");  // something to push
  Server(std::string("INSERT INTO items VALUES ('") + kItem + "', '" + kRed + "', 'ok')");
  core::Status status =
      Sync(device, 1000, [&] { App(device, std::string("DELETE FROM tags WHERE id = '") + kRed + "'"); });
  EXPECT_TRUE(status.ok()) << status.message();
  ASSERT_TRUE(Sync(device).ok());
  ASSERT_TRUE(Sync(device).ok());
  EXPECT_EQ(Contents(*device.app), Contents(*server_));
}

// Two devices with slow clocks rename the same tag at the same stamp (each
// stamps one above the last it saw). The lower node id's rename takes a name
// another tag holds, the higher one's is free: by the conflict rule the
// higher one wins. But the server refuses the first (UNIQUE) and answers
// with its own state one stamp above it, which beats the free rename too:
// the server keeps the old name, and the second device's edit is lost with
// no conflict logged for it.
//
// DISABLED: a documented limit of the rule the issue sets (docs/protocol.md,
// "Conflicts"): the answer is stamped one above the refused stamp, so that a
// device that ignores the log still converges by the ordinary merge; an edit
// elsewhere at exactly the refused stamp (same millisecond and counter) from
// a node ordered after the refusing one loses to it. Answering forgotten
// copies just above the server's own version has no such window, but needs
// every device to honour "forget".
TEST_F(ConstraintsCase, DISABLED_AnAnswerDoesNotBeatAnotherDevicesNewerEdit) {
  Server(std::string("INSERT INTO tags VALUES ('") + kRed + "', 1, 'red'), ('" + kBlue + "', 1, 'blue')");
  Device first = Clone("d1"), second = Clone("d2");
  if (first.app->id() > second.app->id()) std::swap(first, second);
  std::string stamps[2];
  for (Device* device : {&first, &second}) {
    ASSERT_EQ(device->app->SetSkew(-100000), "");
    App(*device, std::string("UPDATE tags SET name = '") + (device == &first ? "blue" : "green") + "' WHERE id = '" +
                     kRed + "'");
    std::string error;
    stamps[device == &first ? 0 : 1] =
        MetaText(device->app->ReadMeta(kTags, &error)[KeyText({Value::Text(kRed)})]).substr(0, 16);
  }
  ASSERT_EQ(stamps[0], stamps[1]);
  ASSERT_TRUE(Sync(first).ok());  // refused: 'blue' is taken
  ASSERT_TRUE(Sync(second).ok());
  ASSERT_TRUE(Sync(first).ok());
  EXPECT_EQ(server_->Query("SELECT name FROM tags WHERE id = $1::uuid", {Value::Text(kRed)}).rows[0][0].bytes, "green");
  EXPECT_EQ(server_->Query("SELECT count(*) FROM syncline.conflicts").rows[0][0].bytes, "1");
  EXPECT_EQ(Contents(*first.app), Contents(*server_));
  EXPECT_EQ(Contents(*second.app), Contents(*server_));
}

// A device whose file has the server's UNIQUE (org, name) adds a tag under
// a name the server has since given another tag, which has a child. Its
// push is refused and answered with a tombstone; its pull, in pages of one
// change, skips the server's tag (the device's own row still holds the
// name), stores the child (foreign keys are deferred to the commit), then
// applies the tombstone. The skipped tag is retried only after the pull, so
// the pull's commit breaks the foreign key and the sync fails, again at
// every sync with these pages (with pages of 1000, the same once a pull
// spans pages). Found with SYNCLINE_SIM_LOCAL_UNIQUE=1.
TEST_F(ConstraintsCase, ASkippedParentAndItsChildInPagesOfOnePull) {
  Device device = Clone("d1", /*unique=*/true);
  App(device, std::string("INSERT INTO tags VALUES ('") + kRed + "', 1, 'red')");
  Server(std::string("INSERT INTO tags VALUES ('") + kBlue + "', 1, 'red'); INSERT INTO items VALUES ('" + kItem +
         "', '" + kBlue + "', 'ok')");
  core::Status status = Sync(device, /*page_size=*/1);
  EXPECT_TRUE(status.ok()) << status.message();
  ASSERT_TRUE(Sync(device).ok());
  EXPECT_EQ(Contents(*device.app), Contents(*server_));
}

// A device whose file has the server's UNIQUE (org, name), and two tags
// that swap names on the server between two of its pulls: each version
// needs the other written first, both are logged (side 'local') and
// skipped, and syncline_retry_conflicts, which applies them one at a
// time, never gets them in. The device keeps the old names for good.
// (Found with SYNCLINE_SIM_LOCAL_UNIQUE=1; a limit to decide on, so off.)
TEST_F(ConstraintsCase, DISABLED_ADeviceWithTheServersUniqueTakesASwap) {
  Server(std::string("INSERT INTO tags VALUES ('") + kRed + "', 1, 'red'), ('" + kBlue + "', 1, 'blue')");
  Device device = Clone("d1", /*unique=*/true);
  Server(std::string("BEGIN; UPDATE tags SET name = 'swapping' WHERE id = '") + kRed +
         "'; UPDATE tags SET name = 'red' WHERE id = '" + kBlue + "'; UPDATE tags SET name = 'blue' WHERE id = '" +
         kRed + "'; COMMIT");
  ASSERT_TRUE(Sync(device).ok());
  ASSERT_TRUE(Sync(device).ok());
  EXPECT_EQ(Contents(*device.app), Contents(*server_));
}

}  // namespace
}  // namespace syncline::sim
