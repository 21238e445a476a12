// Unit tests of the merge (core/merge.h), driven through an in-memory store:
// replicas converge whatever the delivery order, grouping into batches and
// duplicates (the merge is commutative, associative and idempotent); several
// versions of one row in a batch; same stamps; copied databases; the drift
// bound; mapping errors that write nothing; write order with retries around a
// UNIQUE constraint; rewritten versions and tombstones for keys stored in
// another form; the peer cursor; the summary. The rule itself is specified in
// docs/protocol.md ("Versions and the conflict rule", "Applying").
#include "core/merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/json.h"
#include "core/node_id.h"

namespace {

using namespace syncline::core;

constexpr std::int64_t kWallMs = 1700000000000;  // this node's wall clock in every test

// Origins of versions. Two differ only in their last byte, so ties in hlc are
// broken by late bytes of the node id.
const std::string kNodeA = "0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11";
const std::string kNodeB = "66fa9c19-2592-40b3-beb2-a44d09fd0158";
const std::string kNodeC = "66fa9c19-2592-40b3-beb2-a44d09fd0159";
const std::string kNodeD = "f3c1a2b4-5d6e-4f70-8a9b-0c1d2e3f4a5b";
const std::string kOrigins[] = {kNodeA, kNodeB, kNodeC, kNodeD};
// A node that relays what others wrote (a server), and the applying node.
const std::string kRelay = "9d2e8c4a-1b3f-4e5d-a6c7-b8d9e0f1a2b3";
const std::string kLocal = "5a5a5a5a-0000-4000-8000-000000000001";
const std::string kFilter = "cbf29ce484222325";

Hlc At(std::int64_t ms_after_wall, Hlc logical = 0) { return HlcFromPhysicalMs(kWallMs + ms_after_wall) + logical; }

Value T(std::string text) { return Value::Text(std::move(text)); }
Value I(std::int64_t v) { return Value::Integer(v); }

std::string Describe(const Value& value) {
  std::string out;
  JsonWriter writer(&out);
  WriteValue(writer, value);
  return std::string(TypeName(value.type)) + " " + out;
}

// ---------------------------------------------------------------- the store

// A table of the memory store, with the engine behaviours the merge must cope
// with.
struct MemTable : MergeTable {
  std::string name;
  int unique = -1;        // a UNIQUE column (NULLs never conflict), or -1
  bool fold_key = false;  // text keys are stored lower-case: the key as sent gets a tombstone
  int trim = -1;          // a text column stored without surrounding spaces: a rewrite
};

using RowId = std::pair<std::string, std::string>;  // table, encoded key as stored

struct StoredVersion {
  std::int64_t clock = 0;
  Hlc hlc = 0;
  std::string node;
  bool deleted = false;
};

struct StoreState {
  std::map<RowId, std::vector<Value>> rows;
  std::map<RowId, StoredVersion> versions;
  std::map<std::pair<std::string, std::string>, std::string> peers;  // (node, filter) -> position
};

// Everything a replica holds, as text: replicas are equal when this is.
std::string Dump(const StoreState& state) {
  std::string out;
  for (const auto& [id, row] : state.rows) {
    out += "row " + id.first + " " + id.second + ":";
    for (const Value& value : row)
      out += " " + Describe(value);
    out += "\n";
  }
  for (const auto& [id, v] : state.versions)
    out += "version " + id.first + " " + id.second + ": clock " + std::to_string(v.clock) + " hlc " + HlcToText(v.hlc) +
           " node " + v.node + (v.deleted ? " deleted" : "") + "\n";
  for (const auto& [peer, position] : state.peers)
    out += "peer " + peer.first + ":" + peer.second + " at " + position + "\n";
  return out;
}

// The rows and versions of a map from (table, key) to stored row + version,
// as MergeStore requires: WriteRows writes nothing of the change it refuses.
class MemoryStore : public MergeStore {
 public:
  explicit MemoryStore(std::string local_node) : local_node_(std::move(local_node)) {}

  MemTable& AddTable(const std::string& name, std::vector<std::string> columns, std::vector<int> pk) {
    MemTable& table = tables_[name];
    table.name = name;
    table.columns = std::move(columns);
    table.pk = std::move(pk);
    return table;
  }
  MemTable& table(const std::string& name) { return tables_.at(name); }
  const std::string& local_node() const { return local_node_; }

  StoreState state;
  // What the merge asked of the store.
  int read_versions_calls = 0;
  int write_rows_calls = 0;
  int write_versions_calls = 0;
  int write_peer_calls = 0;
  std::vector<std::string> writes;  // "<table> <key> upsert|delete", each row written
  Hlc received = 0;                 // the greatest stamp the merge reported
  std::string fail_key;             // WriteRows fails (not a constraint) on this stored key
  std::string deny_key;             // Admit refuses this stored key
  Hlc gc_watermark = 0;             // as after a garbage collection
  std::vector<std::string> logged;  // "<key> <sqlstate>[ answered][ forget]", each refusal logged

  Status Table(const std::string& name, MergeTable** out) override {
    auto it = tables_.find(name);
    if (it == tables_.end()) return Status(Code::kUndefinedTable, "table is not tracked");
    *out = &it->second;
    return Status::Ok();
  }

  Status Prepare(MergeChange& change) override {
    const MemTable& table = Of(change);
    std::string sent;
    Status status = EncodeKeyOf(change.key, &sent);
    if (!status.ok()) return status;
    if (table.fold_key) {
      for (const Value*& key : change.key) {
        if (key->type != Value::Type::kText) continue;
        std::string lower = key->bytes;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        if (lower == key->bytes) continue;
        converted_.push_back(T(lower));
        key = &converted_.back();
      }
    }
    std::string stored;
    status = EncodeKeyOf(change.key, &stored);
    if (!status.ok()) return status;
    change.meta_key = T(stored);
    if (stored != sent) {
      change.sent_key = T(sent);
      change.has_sent_key = true;
    }
    return Status::Ok();
  }

  Status ReadVersions(const std::vector<MergeChange*>& changes) override {
    ++read_versions_calls;
    for (MergeChange* change : changes) {
      auto it = state.versions.find(IdOf(*change));
      if (it == state.versions.end()) continue;
      change->stored = RowVersion{true, it->second.hlc, it->second.node, it->second.deleted, ""};
    }
    return Status::Ok();
  }

  Status SameContent(const MergeChange& change, bool* same) override {
    auto it = state.rows.find(IdOf(change));
    bool rewritten = false;
    std::vector<Value> row = StoredForm(change, &rewritten);
    *same = it != state.rows.end();
    for (std::size_t c = 0; *same && c < row.size(); ++c)
      *same = SameValue(row[c], it->second[c]);
    return Status::Ok();
  }

  Status Admit(const MergeChange& change) override {
    if (!deny_key.empty() && IdOf(change).second == deny_key)
      return Status(Code::kPermissionDenied, "not authorised for this row");
    return Status::Ok();
  }

  Status WriteRows(const std::vector<MergeChange*>& run, std::size_t* written) override {
    ++write_rows_calls;
    for (*written = 0; *written < run.size(); ++*written) {
      MergeChange& change = *run[*written];
      const MemTable& table = Of(change);
      RowId id = IdOf(change);
      if (id.second == fail_key) return Status(Code::kInternal, "disk full");
      if (change.change->op == Op::kDelete) {
        state.rows.erase(id);
        writes.push_back(id.first + " " + id.second + " delete");
        continue;
      }
      bool rewritten = false;
      std::vector<Value> row = StoredForm(change, &rewritten);
      if (table.unique >= 0 && row[table.unique].type != Value::Type::kNull) {
        for (const auto& [other_id, other] : state.rows) {
          if (other_id.first == id.first && other_id != id && SameValue(other[table.unique], row[table.unique]))
            return Status(Code::kConstraint,
                          "UNIQUE constraint failed: " + table.name + "." + table.columns[table.unique]);
        }
      }
      state.rows[id] = std::move(row);
      change.rewritten = rewritten;
      writes.push_back(id.first + " " + id.second + " upsert");
    }
    return Status::Ok();
  }

  Status WriteVersions(const std::vector<const MergeChange*>& changes) override {
    ++write_versions_calls;
    for (const MergeChange* change : changes)
      state.versions[IdOf(*change)] = StoredVersion{change->clock, change->hlc, change->node, change->deleted};
    return Status::Ok();
  }

  Status ReadPeer(const Cursor& cursor, bool* found, std::string* position) override {
    auto it = state.peers.find({cursor.node, cursor.filter});
    *found = it != state.peers.end();
    if (*found) *position = it->second;
    return Status::Ok();
  }

  Status WritePeer(const Cursor& cursor) override {
    ++write_peer_calls;
    state.peers[{cursor.node, cursor.filter}] = cursor.position;
    return Status::Ok();
  }

  void ReceiveStamp(Hlc hlc) override { received = std::max(received, hlc); }
  Status ReadGcWatermark(Hlc* out) override {
    *out = gc_watermark;
    return Status::Ok();
  }
  Status LogRefusal(const MergeChange& change, Refusal* refusal) override {
    refusal->sqlstate = SqlStateOf(refusal->reason.code());
    logged.push_back(IdOf(change).second + " " + refusal->sqlstate + (refusal->answered ? " answered" : "") +
                     (refusal->forget ? " forget" : ""));
    return Status::Ok();
  }

 private:
  static const MemTable& Of(const MergeChange& change) { return *static_cast<const MemTable*>(change.table); }
  static RowId IdOf(const MergeChange& change) { return {Of(change).name, change.meta_key.bytes}; }

  // The row as this store keeps it: the key as stored, trimmed text.
  // A column the change lacks keeps the stored row's value (null for a new
  // row, the default of every column here), which makes the row a rewrite.
  std::vector<Value> StoredForm(const MergeChange& change, bool* rewritten) const {
    const MemTable& table = Of(change);
    auto stored = state.rows.find(IdOf(change));
    std::vector<Value> row;
    for (std::size_t c = 0; c < change.row.size(); ++c) {
      if (change.row[c] != nullptr)
        row.push_back(*change.row[c]);
      else
        row.push_back(stored != state.rows.end() ? stored->second[c] : Value::Null());
    }
    *rewritten = change.partial;
    for (std::size_t k = 0; k < table.pk.size(); ++k)
      row[table.pk[k]] = *change.key[k];
    if (table.trim >= 0 && row[table.trim].type == Value::Type::kText) {
      std::string& text = row[table.trim].bytes;
      std::size_t begin = text.find_first_not_of(' ');
      std::string trimmed =
          begin == std::string::npos ? "" : text.substr(begin, text.find_last_not_of(' ') + 1 - begin);
      *rewritten = *rewritten || trimmed != text;
      text = trimmed;
    }
    return row;
  }

  std::string local_node_;
  std::map<std::string, MemTable> tables_;
  std::deque<Value> converted_;  // keys in their stored form, pointed to by changes
};

// A replica with the tables of these tests:
//   notes(id, title, n)     primary key (id)
//   pairs(a, b, val)        primary key (b, a): key order differs from column order
//   users(id, email)        primary key (id), email UNIQUE
//   tags(name, label)       primary key (name) stored lower-case; label stored trimmed
MemoryStore Replica(const std::string& local_node = kLocal) {
  MemoryStore store(local_node);
  store.AddTable("notes", {"id", "title", "n"}, {0});
  store.AddTable("pairs", {"a", "b", "val"}, {1, 0});
  store.AddTable("users", {"id", "email"}, {0}).unique = 1;
  MemTable& tags = store.AddTable("tags", {"name", "label"}, {0});
  tags.fold_key = true;
  tags.trim = 1;
  return store;
}

MergeOptions Options(const MemoryStore& store) {
  MergeOptions options;
  options.local_node = store.local_node();
  options.wall_ms = kWallMs;
  options.copied_database_docs = "docs/sqlite.md, \"Copied databases\"";
  return options;
}

// Applies a batch all or nothing, as the engines do inside a savepoint.
Status Apply(MemoryStore& store, const Batch& batch, MergeResult* result, const MergeOptions& options) {
  StoreState before = store.state;
  Status status = Merge(batch, store, options, result);
  if (!status.ok()) store.state = std::move(before);
  return status;
}

Status Apply(MemoryStore& store, const Batch& batch, MergeResult* result = nullptr) {
  MergeResult ignored;
  return Apply(store, batch, result != nullptr ? result : &ignored, Options(store));
}

Batch MakeBatch(std::vector<Change> changes, const std::string& source = kRelay, const std::string& cursor = "") {
  Batch batch;
  batch.source = source;
  batch.cursor = cursor;
  batch.changes = std::move(changes);
  return batch;
}

Change Upsert(const std::string& table, std::vector<ColumnValue> pk, std::vector<ColumnValue> row, Hlc hlc,
              const std::string& node, std::int64_t clock = 1) {
  Change change;
  change.table = table;
  change.op = Op::kUpsert;
  change.pk = std::move(pk);
  change.row = std::move(row);
  change.clock = clock;
  change.hlc = hlc;
  change.node = node;
  return change;
}

Change Delete(const std::string& table, std::vector<ColumnValue> pk, Hlc hlc, const std::string& node,
              std::int64_t clock = 1) {
  Change change = Upsert(table, std::move(pk), {}, hlc, node, clock);
  change.op = Op::kDelete;
  return change;
}

Change Note(const std::string& id, const std::string& title, Hlc hlc, const std::string& node, std::int64_t clock = 1) {
  return Upsert("notes", {{"id", T(id)}}, {{"id", T(id)}, {"title", T(title)}, {"n", I(clock)}}, hlc, node, clock);
}

Change NoteDeleted(const std::string& id, Hlc hlc, const std::string& node, std::int64_t clock = 1) {
  return Delete("notes", {{"id", T(id)}}, hlc, node, clock);
}

Change User(std::int64_t id, const std::string& email, Hlc hlc, const std::string& node = kNodeA) {
  return Upsert("users", {{"id", I(id)}}, {{"id", I(id)}, {"email", T(email)}}, hlc, node);
}

std::string Key(const Value& value) {
  std::string key;
  EXPECT_TRUE(EncodeKey({value}, &key).ok());
  return key;
}

const StoredVersion* VersionOf(const MemoryStore& store, const std::string& table, const std::string& key) {
  auto it = store.state.versions.find({table, key});
  return it == store.state.versions.end() ? nullptr : &it->second;
}

const std::vector<Value>* RowOf(const MemoryStore& store, const std::string& table, const std::string& key) {
  auto it = store.state.rows.find({table, key});
  return it == store.state.rows.end() ? nullptr : &it->second;
}

// Expects an error with this code whose message starts with `prefix` (and
// contains `detail`), and that the store wrote nothing.
void ExpectRefusedBeforeWriting(const MemoryStore& store, const Status& status, Code code, const std::string& prefix,
                                const std::string& detail = "") {
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), code) << status.message();
  EXPECT_EQ(status.message().rfind(prefix, 0), 0u) << status.message();
  EXPECT_NE(status.message().find(detail), std::string::npos) << status.message();
  EXPECT_EQ(store.write_rows_calls, 0);
  EXPECT_EQ(store.write_versions_calls, 0);
  EXPECT_EQ(store.write_peer_calls, 0);
  EXPECT_TRUE(store.writes.empty());
}

// ---------------------------------------------------------------- random histories

constexpr int kRows = 5;  // notes a, b, c; pairs (1, "x"), (2, "x")

// The row a version belongs to, as the store identifies it.
RowId RowOfVersion(int row) {
  if (row < 3) return {"notes", Key(T(std::string(1, static_cast<char>('a' + row))))};
  std::string key;
  EXPECT_TRUE(EncodeKey({T("x"), I(row - 2)}, &key).ok());  // pairs' key order: (b, a)
  return {"pairs", key};
}

struct Version {
  int row = 0;
  Change change;
};

// Versions of a few rows from several nodes: hlcs drawn from a small pool
// (and the least ones), so that ties (broken by node id) are frequent;
// upserts and deletes; values of every type. One stamp of a row is one
// write: never two contents.
std::vector<Version> RandomVersions(std::mt19937_64& rng, std::size_t count) {
  std::set<std::tuple<int, Hlc, std::string>> stamps;
  std::vector<Version> versions;
  while (versions.size() < count) {
    int row = static_cast<int>(rng() % kRows);
    const std::string& node = kOrigins[rng() % 4];
    Hlc hlc = At(static_cast<std::int64_t>(rng() % 3), rng() % 2);
    if (rng() % 10 == 0) hlc = rng() % 2;  // the least stamps
    if (!stamps.insert({row, hlc, node}).second) continue;
    std::int64_t clock = 1 + static_cast<std::int64_t>(rng() % 5);
    bool deleted = rng() % 4 == 0;
    Change change;
    if (row < 3) {
      std::vector<ColumnValue> pk = {{"id", T(std::string(1, static_cast<char>('a' + row)))}};
      Value n = rng() % 3 == 0 ? Value::Null() : I(static_cast<std::int64_t>(rng() % 100));
      change = deleted ? Delete("notes", pk, hlc, node, clock)
                       : Upsert("notes", pk, {pk[0], {"title", T("t" + std::to_string(rng() % 1000))}, {"n", n}}, hlc,
                                node, clock);
    } else {
      // The key sent in either column order; the row in table order or not.
      ColumnValue a{"a", I(row - 2)}, b{"b", T("x")};
      std::vector<ColumnValue> pk = rng() % 2 ? std::vector<ColumnValue>{a, b} : std::vector<ColumnValue>{b, a};
      Value val = Value::Real(static_cast<double>(rng() % 4) * 0.5);
      if (rng() % 2) {
        std::size_t size = 1 + rng() % 3;
        val = Value::Blob(std::string(size, static_cast<char>(rng() % 256)));
      }
      std::vector<ColumnValue> cells = {a, b, {"val", val}};
      if (rng() % 2) std::reverse(cells.begin(), cells.end());
      change = deleted ? Delete("pairs", pk, hlc, node, clock) : Upsert("pairs", pk, cells, hlc, node, clock);
    }
    versions.push_back(Version{row, std::move(change)});
  }
  return versions;
}

// What every replica must hold once it has seen these versions: per row, the
// greatest version by (hlc, node), its row unless it is a delete.
std::string Expected(const std::vector<Version>& versions) {
  std::map<int, const Version*> winners;
  for (const Version& v : versions) {
    const Version*& winner = winners[v.row];
    if (winner == nullptr || CompareStamps(v.change.hlc, v.change.node, winner->change.hlc, winner->change.node) > 0)
      winner = &v;
  }
  MemoryStore shape = Replica();
  StoreState state;
  for (const auto& [row, v] : winners) {
    RowId id = RowOfVersion(row);
    const Change& change = v->change;
    state.versions[id] = StoredVersion{change.clock, change.hlc, change.node, change.op == Op::kDelete};
    if (change.op == Op::kDelete) continue;
    std::vector<Value> values;
    for (const std::string& column : shape.table(id.first).columns)
      for (const ColumnValue& cell : change.row)
        if (cell.column == column) values.push_back(cell.value);
    state.rows[id] = values;
  }
  return Dump(state);
}

Batch BatchOf(const std::vector<Version>& versions, const std::string& source = kRelay) {
  std::vector<Change> changes;
  for (const Version& v : versions)
    changes.push_back(v.change);
  return MakeBatch(std::move(changes), source);
}

// The counts the per-change rule gives (docs/protocol.md, "Applying"): a
// change is applied when it is newer than the row's current version (stored,
// or won earlier in the batch), skipped otherwise.
std::pair<std::int64_t, std::int64_t> ExpectedCounts(const MemoryStore& store, const std::vector<Version>& batch) {
  std::map<RowId, std::pair<Hlc, std::string>> current;
  for (const auto& [id, v] : store.state.versions)
    current[id] = {v.hlc, v.node};
  std::int64_t applied = 0, skipped = 0;
  for (const Version& v : batch) {
    RowId id = RowOfVersion(v.row);
    auto it = current.find(id);
    if (it == current.end() || CompareStamps(v.change.hlc, v.change.node, it->second.first, it->second.second) > 0) {
      current[id] = {v.change.hlc, v.change.node};
      ++applied;
    } else {
      ++skipped;
    }
  }
  return {applied, skipped};
}

// Applies a batch that must succeed, checking its counts against the rule.
void ApplyChecked(MemoryStore& store, const std::vector<Version>& versions, const std::string& source = kRelay) {
  auto [applied, skipped] = ExpectedCounts(store, versions);
  MergeResult result;
  Status status = Apply(store, BatchOf(versions, source), &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, applied);
  EXPECT_EQ(result.skipped, skipped);
  EXPECT_EQ(result.rewritten, 0);
}

std::string Applied(const std::vector<std::vector<Version>>& batches) {
  MemoryStore store = Replica();
  for (const std::vector<Version>& batch : batches)
    ApplyChecked(store, batch);
  return Dump(store.state);
}

std::vector<Version> Concat(const std::vector<Version>& a, const std::vector<Version>& b) {
  std::vector<Version> out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

TEST(MergeSetup, NodeIdsAreCanonical) {
  for (const std::string& id : {kNodeA, kNodeB, kNodeC, kNodeD, kRelay, kLocal})
    EXPECT_EQ(CanonicalNodeId(id).value_or(""), id);
}

TEST(MergeConvergence, EveryDeliveryOrderConverges) {
  // All orders of a few versions, one batch per version and all in one batch.
  std::mt19937_64 rng(21);
  for (int round = 0; round < 4; ++round) {
    std::vector<Version> versions = RandomVersions(rng, 6);
    const std::string expected = Expected(versions);
    std::vector<std::size_t> order(versions.size());
    std::iota(order.begin(), order.end(), 0);
    do {
      std::vector<Version> delivery;
      for (std::size_t i : order)
        delivery.push_back(versions[i]);
      MemoryStore one_by_one = Replica();
      for (const Version& v : delivery)
        ApplyChecked(one_by_one, {v});
      ASSERT_EQ(Dump(one_by_one.state), expected) << "round " << round;
      MemoryStore together = Replica();
      ApplyChecked(together, delivery);
      ASSERT_EQ(Dump(together.state), expected) << "round " << round;
    } while (std::next_permutation(order.begin(), order.end()));
  }
}

TEST(MergeConvergence, RandomBatchesWithDuplicatesConverge) {
  // Replicas receive the same versions shuffled, duplicated, split into
  // random batches from random sources (the origins themselves or a relay).
  std::mt19937_64 rng(22);
  for (int round = 0; round < 200; ++round) {
    std::vector<Version> versions = RandomVersions(rng, 1 + rng() % 12);
    const std::string expected = Expected(versions);
    for (int replica = 0; replica < 5; ++replica) {
      std::vector<Version> delivery = versions;
      for (std::size_t k = 0, n = rng() % 5; k < n; ++k)
        delivery.push_back(versions[rng() % versions.size()]);
      std::shuffle(delivery.begin(), delivery.end(), rng);
      MemoryStore store = Replica();
      for (std::size_t begin = 0; begin < delivery.size();) {
        std::size_t size = 1 + rng() % (delivery.size() - begin);
        std::vector<Version> batch(delivery.begin() + begin, delivery.begin() + begin + size);
        ApplyChecked(store, batch, rng() % 2 ? kRelay : kOrigins[rng() % 4]);
        begin += size;
      }
      ASSERT_EQ(Dump(store.state), expected) << "round " << round << " replica " << replica;
    }
  }
}

TEST(MergeConvergence, CommutativeAssociativeIdempotent) {
  std::mt19937_64 rng(23);
  for (int round = 0; round < 200; ++round) {
    std::vector<Version> all = RandomVersions(rng, 3 + rng() % 10);
    // Three batches that may share versions.
    std::vector<Version> a, b, c;
    for (const Version& v : all) {
      std::vector<Version>* targets[] = {&a, &b, &c};
      targets[rng() % 3]->push_back(v);
      if (rng() % 4 == 0) targets[rng() % 3]->push_back(v);
    }
    const std::string ab = Applied({a, b});
    ASSERT_EQ(ab, Applied({b, a})) << "round " << round;
    ASSERT_EQ(ab, Applied({Concat(a, b)})) << "round " << round;
    ASSERT_EQ(ab, Applied({Concat(b, a)})) << "round " << round;
    const std::string abc = Applied({a, b, c});
    ASSERT_EQ(abc, Applied({Concat(a, b), c})) << "round " << round;
    ASSERT_EQ(abc, Applied({a, Concat(b, c)})) << "round " << round;
    ASSERT_EQ(abc, Applied({c, b, a})) << "round " << round;
    ASSERT_EQ(abc, Expected(Concat(Concat(a, b), c))) << "round " << round;
    ASSERT_EQ(Applied({a}), Applied({a, a})) << "round " << round;
    ASSERT_EQ(ab, Applied({a, b, a, b})) << "round " << round;
  }
}

TEST(MergeConvergence, SameBatchTwiceSkipsEverything) {
  std::mt19937_64 rng(24);
  for (int round = 0; round < 100; ++round) {
    std::vector<Version> versions = RandomVersions(rng, 1 + rng() % 10);
    MemoryStore store = Replica();
    Batch batch = BatchOf(versions);
    MergeResult first;
    ASSERT_TRUE(Apply(store, batch, &first).ok());
    EXPECT_EQ(first.applied + first.skipped, static_cast<std::int64_t>(versions.size()));
    const std::string state = Dump(store.state);
    const std::size_t writes = store.writes.size();
    MergeResult second;
    Status status = Apply(store, batch, &second);
    ASSERT_TRUE(status.ok()) << status.message();
    EXPECT_EQ(second.applied, 0);
    EXPECT_EQ(second.skipped, static_cast<std::int64_t>(versions.size()));
    EXPECT_EQ(second.summary, "{\"applied\":0,\"skipped\":" + std::to_string(versions.size()) + ",\"source\":\"" +
                                  kRelay + "\",\"cursor\":null}");
    EXPECT_EQ(store.writes.size(), writes);  // no row written again
    EXPECT_EQ(Dump(store.state), state);
  }
}

TEST(MergeConvergence, SummaryCountsAppliedAndSkipped) {
  MemoryStore store = Replica();
  MergeResult result;
  ASSERT_TRUE(
      Apply(store, MakeBatch({Note("a", "one", At(1), kNodeA), Note("b", "two", At(1), kNodeA)}), &result).ok());
  EXPECT_EQ(result.summary, "{\"applied\":2,\"skipped\":0,\"source\":\"" + kRelay + "\",\"cursor\":null}");
  ASSERT_TRUE(
      Apply(store, MakeBatch({Note("a", "old", At(0), kNodeD), Note("b", "new", At(2), kNodeA)}), &result).ok());
  EXPECT_EQ(result.applied, 1);
  EXPECT_EQ(result.skipped, 1);
  EXPECT_EQ(result.summary, "{\"applied\":1,\"skipped\":1,\"source\":\"" + kRelay + "\",\"cursor\":null}");
}

// ---------------------------------------------------------------- versions of one row

TEST(MergeRow, TieInHlcIsBrokenByNodeId) {
  for (bool greater_first : {true, false}) {
    MemoryStore store = Replica();
    Change low = Note("a", "from b", At(0, 3), kNodeB);
    Change high = Note("a", "from c", At(0, 3), kNodeC);  // kNodeC > kNodeB in the last byte only
    ASSERT_TRUE(Apply(store, MakeBatch({greater_first ? high : low})).ok());
    ASSERT_TRUE(Apply(store, MakeBatch({greater_first ? low : high})).ok());
    const std::vector<Value>* row = RowOf(store, "notes", Key(T("a")));
    ASSERT_NE(row, nullptr);
    EXPECT_EQ((*row)[1].bytes, "from c");
    EXPECT_EQ(VersionOf(store, "notes", Key(T("a")))->node, kNodeC);
  }
}

TEST(MergeRow, OnlyTheGreatestOfSeveralVersionsInOneBatchIsWritten) {
  MemoryStore store = Replica();
  MergeResult result;
  Status status = Apply(store,
                        MakeBatch({Note("a", "v3", At(3), kNodeA, 3), Note("a", "v5", At(5), kNodeB, 5),
                                   Note("a", "v1", At(1), kNodeC, 1), NoteDeleted("a", At(4), kNodeD, 4)}),
                        &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 2);  // v3, then v5 over it
  EXPECT_EQ(result.skipped, 2);
  EXPECT_EQ(store.writes, std::vector<std::string>{"notes [\"a\"] upsert"});
  EXPECT_EQ((*RowOf(store, "notes", Key(T("a"))))[1].bytes, "v5");
  const StoredVersion* version = VersionOf(store, "notes", Key(T("a")));
  EXPECT_EQ(version->hlc, At(5));
  EXPECT_EQ(version->node, kNodeB);
  EXPECT_EQ(version->clock, 5);
  EXPECT_FALSE(version->deleted);

  // A delete last in the batch wins over everything before it.
  MemoryStore other = Replica();
  ASSERT_TRUE(Apply(other, MakeBatch({Note("a", "v3", At(3), kNodeA), NoteDeleted("a", At(6), kNodeD, 2)})).ok());
  EXPECT_EQ(RowOf(other, "notes", Key(T("a"))), nullptr);
  EXPECT_TRUE(VersionOf(other, "notes", Key(T("a")))->deleted);
  EXPECT_EQ(other.writes, std::vector<std::string>{"notes [\"a\"] delete"});
}

TEST(MergeRow, DeleteBeatsOlderAndLaterWriteBringsTheRowBack) {
  MemoryStore store = Replica();
  ASSERT_TRUE(Apply(store, MakeBatch({NoteDeleted("a", At(5), kNodeA)})).ok());
  // The tombstone of a row this node never had keeps a late, older upsert out.
  MergeResult result;
  ASSERT_TRUE(Apply(store, MakeBatch({Note("a", "late", At(4), kNodeD)}), &result).ok());
  EXPECT_EQ(result.skipped, 1);
  EXPECT_EQ(RowOf(store, "notes", Key(T("a"))), nullptr);
  ASSERT_TRUE(Apply(store, MakeBatch({Note("a", "back", At(6), kNodeB)}), &result).ok());
  EXPECT_EQ(result.applied, 1);
  ASSERT_NE(RowOf(store, "notes", Key(T("a"))), nullptr);
  EXPECT_FALSE(VersionOf(store, "notes", Key(T("a")))->deleted);
}

TEST(MergeRow, SameStampDifferentContentInOneBatchIsCorrupt) {
  const Change first = Note("a", "one", At(1), kNodeA);
  const Change cases[] = {
      Note("a", "two", At(1), kNodeA),  // another title
      NoteDeleted("a", At(1), kNodeA),  // a delete
      Upsert("notes", {{"id", T("a")}}, {{"id", T("a")}, {"title", T("one")}, {"n", Value::Real(1.0)}}, At(1),
             kNodeA),  // 1.0 is not 1
  };
  for (const Change& second : cases) {
    MemoryStore store = Replica();
    Status status = Apply(store, MakeBatch({Note("b", "fine", At(1), kNodeA), first, second}));
    ExpectRefusedBeforeWriting(store, status, Code::kCorruptBatch, "change 2 (table \"notes\"): stamp ",
                               "is already known for this row with different content");
  }
  // A delete and then an upsert with the delete's stamp.
  MemoryStore store = Replica();
  Status status = Apply(store, MakeBatch({NoteDeleted("a", At(1), kNodeA), first}));
  ExpectRefusedBeforeWriting(store, status, Code::kCorruptBatch, "change 1 (table \"notes\"): ");
}

TEST(MergeRow, SameStampDifferentContentThanStoredIsCorrupt) {
  struct Case {
    Change stored, incoming;
  };
  const Case cases[] = {
      {Note("a", "one", At(1), kNodeA), Note("a", "two", At(1), kNodeA)},
      {Note("a", "one", At(1), kNodeA), NoteDeleted("a", At(1), kNodeA)},
      {NoteDeleted("a", At(1), kNodeA), Note("a", "one", At(1), kNodeA)},
  };
  for (const Case& c : cases) {
    MemoryStore store = Replica();
    ASSERT_TRUE(Apply(store, MakeBatch({c.stored})).ok());
    const std::string before = Dump(store.state);
    Status status = Apply(store, MakeBatch({Note("b", "fine", At(1), kNodeA), c.incoming}));
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), Code::kCorruptBatch);
    EXPECT_EQ(status.message(), "change 1 (table \"notes\"): stamp " + HlcToText(At(1)) + "/" + kNodeA +
                                    " is already known for this row with different content");
    EXPECT_EQ(Dump(store.state), before);
  }
}

TEST(MergeRow, SameStampSameContentIsSkipped) {
  const Change cases[] = {Note("a", "one", At(1), kNodeA), NoteDeleted("a", At(1), kNodeA)};
  for (const Change& change : cases) {
    // Twice in one batch.
    MemoryStore store = Replica();
    MergeResult result;
    ASSERT_TRUE(Apply(store, MakeBatch({change, change}), &result).ok());
    EXPECT_EQ(result.applied, 1);
    EXPECT_EQ(result.skipped, 1);
    EXPECT_EQ(store.writes.size(), 1u);
    // Against the stored version.
    Status status = Apply(store, MakeBatch({change}), &result);
    ASSERT_TRUE(status.ok()) << status.message();
    EXPECT_EQ(result.applied, 0);
    EXPECT_EQ(result.skipped, 1);
    EXPECT_EQ(store.writes.size(), 1u);
  }
}

TEST(MergeRow, DecideVerdicts) {
  const RowVersion none;
  const RowVersion stored{true, At(5), kNodeB, false, ""};
  EXPECT_EQ(Decide(Note("a", "x", At(1), kNodeA), none, kLocal), Verdict::kApply);
  EXPECT_EQ(Decide(Note("a", "x", At(6), kNodeA), stored, kLocal), Verdict::kApply);
  EXPECT_EQ(Decide(Note("a", "x", At(5), kNodeC), stored, kLocal), Verdict::kApply);  // tie, greater node
  EXPECT_EQ(Decide(Note("a", "x", At(5), kNodeA), stored, kLocal), Verdict::kOlder);  // tie, smaller node
  EXPECT_EQ(Decide(Note("a", "x", At(4), kNodeD), stored, kLocal), Verdict::kOlder);
  EXPECT_EQ(Decide(Note("a", "x", At(5), kNodeB), stored, kLocal), Verdict::kSameStamp);
  EXPECT_EQ(Decide(Note("a", "x", At(5), kNodeB), stored, kNodeB), Verdict::kSameStamp);
  EXPECT_EQ(Decide(Note("a", "x", At(6), kLocal), stored, kLocal), Verdict::kCopiedDatabase);
  EXPECT_EQ(Decide(Note("a", "x", At(1), kLocal), none, kLocal), Verdict::kCopiedDatabase);
  EXPECT_EQ(Decide(Note("a", "x", At(4), kLocal), stored, kLocal), Verdict::kOlder);
}

// ---------------------------------------------------------------- copied databases

TEST(MergeCopiedDatabase, NewerChangeWithTheLocalNodeIdIsRefused) {
  const std::string message = "stamped with this database's own node id but newer than anything it wrote to that "
                              "row; this database is probably a copy of another node's (see docs/sqlite.md, "
                              "\"Copied databases\")";
  // A row this node never had.
  MemoryStore store = Replica();
  Status status = Apply(store, MakeBatch({Note("b", "fine", At(1), kNodeA), Note("a", "x", At(1), kLocal)}));
  ExpectRefusedBeforeWriting(store, status, Code::kCorruptBatch, "change 1 (table \"notes\"): " + message);
  EXPECT_EQ(status.message(), "change 1 (table \"notes\"): " + message);

  // Newer than the stored version.
  MemoryStore stored = Replica();
  ASSERT_TRUE(Apply(stored, MakeBatch({Note("a", "x", At(1), kNodeA)})).ok());
  status = Apply(stored, MakeBatch({Note("a", "y", At(2), kLocal)}));
  EXPECT_EQ(status.code(), Code::kCorruptBatch);
  EXPECT_EQ(status.message(), "change 0 (table \"notes\"): " + message);

  // Newer than a version won earlier in the same batch.
  MemoryStore in_batch = Replica();
  status = Apply(in_batch, MakeBatch({Note("a", "x", At(1), kNodeA), NoteDeleted("a", At(2), kLocal)}));
  ExpectRefusedBeforeWriting(in_batch, status, Code::kCorruptBatch, "change 1 (table \"notes\"): " + message);
}

TEST(MergeCopiedDatabase, OlderChangeWithTheLocalNodeIdIsSkipped) {
  MemoryStore store = Replica();
  ASSERT_TRUE(Apply(store, MakeBatch({Note("a", "remote", At(5), kNodeA)})).ok());
  MergeResult result;
  Status status = Apply(store, MakeBatch({Note("a", "mine, long ago", At(4), kLocal)}), &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 0);
  EXPECT_EQ(result.skipped, 1);
  EXPECT_EQ((*RowOf(store, "notes", Key(T("a"))))[1].bytes, "remote");
  // Its own version coming back (the same stamp, the same content) is skipped too.
  MemoryStore mine = Replica(kNodeA);
  ASSERT_TRUE(Apply(mine, MakeBatch({Note("a", "remote", At(5), kNodeB)})).ok());
  status = Apply(mine, MakeBatch({Note("a", "remote", At(5), kNodeB)}), &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.skipped, 1);
}

// ---------------------------------------------------------------- drift

TEST(MergeDrift, ChangeFromTheSourceBeyondTheBoundIsRefused) {
  const Hlc last_allowed = HlcFromPhysicalMs(kWallMs + kDefaultMaxDriftMs) + 0xffff;
  const Hlc too_far = HlcFromPhysicalMs(kWallMs + kDefaultMaxDriftMs + 1);
  MemoryStore store = Replica();
  MergeResult result;
  ASSERT_TRUE(Apply(store, MakeBatch({Note("a", "edge", last_allowed, kNodeA)}, kNodeA), &result).ok());
  EXPECT_EQ(result.applied, 1);

  MemoryStore refused = Replica();
  Status status =
      Apply(refused, MakeBatch({Note("b", "fine", At(0), kNodeA), Note("a", "future", too_far, kNodeA)}, kNodeA));
  ExpectRefusedBeforeWriting(refused, status, Code::kClockDrift,
                             "change 1 (table \"notes\"): hlc " + HlcToText(too_far) +
                                 " is 300 s ahead of this node's clock (the bound "
                                 "is 300 s); check the origin's clock");
  EXPECT_EQ(refused.read_versions_calls, 0);

  // The bound is the option's.
  MemoryStore strict = Replica();
  MergeOptions options = Options(strict);
  options.max_drift_ms = 1000;
  status = Apply(strict, MakeBatch({Note("a", "soon", At(2000), kNodeA)}, kNodeA), &result, options);
  EXPECT_EQ(status.code(), Code::kClockDrift);
  EXPECT_NE(status.message().find("is 2 s ahead of this node's clock (the bound is 1 s)"), std::string::npos)
      << status.message();
  EXPECT_TRUE(Apply(strict, MakeBatch({Note("a", "soon", At(1000), kNodeA)}, kNodeA), &result, options).ok());
}

TEST(MergeDrift, RelayedChangeBeyondTheBoundIsAccepted) {
  // A relay forwards what its first hop accepted: only a change entering from
  // its origin (node == source) is checked.
  const Hlc far = HlcFromPhysicalMs(kWallMs + 10 * kDefaultMaxDriftMs);
  MemoryStore store = Replica();
  MergeResult result;
  Status status = Apply(store, MakeBatch({Note("a", "relayed", far, kNodeA)}, kRelay), &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 1);
  EXPECT_EQ(VersionOf(store, "notes", Key(T("a")))->hlc, far);
  EXPECT_EQ(store.received, far);  // the local clock stays ahead of what it has seen
  EXPECT_EQ(CheckDrift(far, kWallMs, kDefaultMaxDriftMs).code(), Code::kClockDrift);
  EXPECT_TRUE(CheckDrift(At(0), kWallMs, kDefaultMaxDriftMs).ok());
}

// ---------------------------------------------------------------- mapping

TEST(MergeMapping, MalformedChangesAreRefusedBeforeAnythingIsWritten) {
  struct Case {
    const char* what;
    Change change;
    Code code;
    std::string message;
  };
  const Hlc hlc = At(1);
  const Case cases[] = {
      {"pk names a non-key column",
       Upsert("notes", {{"title", T("a")}}, {{"id", T("a")}, {"title", T("a")}, {"n", I(1)}}, hlc, kNodeA),
       Code::kUndefinedColumn,
       "change 1 (table \"notes\"): \"pk\" names column \"title\", which is not in the table's primary key (id)"},
      {"pk names an unknown column", Delete("pairs", {{"b", T("x")}, {"c", I(1)}}, hlc, kNodeA), Code::kUndefinedColumn,
       "change 1 (table \"pairs\"): \"pk\" names column \"c\", which is not in the table's primary key (b, a)"},
      {"pk lacks a key column", Delete("pairs", {{"b", T("x")}}, hlc, kNodeA), Code::kUndefinedColumn,
       "change 1 (table \"pairs\"): \"pk\" lacks primary key column \"a\""},
      {"null key", Delete("notes", {{"id", Value::Null()}}, hlc, kNodeA), Code::kInvalidInput,
       "change 1 (table \"notes\"): primary key column \"id\" is null"},
      {"row lacks a column", Upsert("notes", {{"id", T("a")}}, {{"id", T("a")}, {"title", T("a")}}, hlc, kNodeA),
       Code::kUndefinedColumn, "change 1 (table \"notes\"): \"row\" lacks column \"n\""},
      {"unknown column",
       Upsert("notes", {{"id", T("a")}}, {{"id", T("a")}, {"title", T("a")}, {"n", I(1)}, {"colour", T("red")}}, hlc,
              kNodeA),
       Code::kUndefinedColumn, "change 1 (table \"notes\"): unknown column \"colour\""},
      {"pk and row disagree",
       Upsert("notes", {{"id", T("a")}}, {{"id", T("b")}, {"title", T("a")}, {"n", I(1)}}, hlc, kNodeA),
       Code::kInvalidInput, "change 1 (table \"notes\"): \"pk\" and \"row\" differ in primary key column \"id\""},
      {"pk and row disagree on the type",
       Upsert("pairs", {{"a", I(1)}, {"b", T("x")}}, {{"a", T("1")}, {"b", T("x")}, {"val", I(0)}}, hlc, kNodeA),
       Code::kInvalidInput, "change 1 (table \"pairs\"): \"pk\" and \"row\" differ in primary key column \"a\""},
      {"null key in the row only",
       Upsert("notes", {{"id", T("a")}}, {{"id", Value::Null()}, {"title", T("a")}, {"n", I(1)}}, hlc, kNodeA),
       Code::kInvalidInput, "change 1 (table \"notes\"): \"pk\" and \"row\" differ in primary key column \"id\""},
      {"unknown table", Delete("nope", {{"id", T("a")}}, hlc, kNodeA), Code::kUndefinedTable,
       "change 1 (table \"nope\"): table is not tracked"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    MemoryStore store = Replica();
    // Change 0 is valid, and the bad change is followed by another valid one:
    // nothing is read or written all the same.
    Status status = Apply(store, MakeBatch({Note("z", "fine", hlc, kNodeA), c.change, Note("y", "fine", hlc, kNodeA)}));
    ExpectRefusedBeforeWriting(store, status, c.code, c.message);
    EXPECT_EQ(status.message(), c.message);
    EXPECT_EQ(store.read_versions_calls, 0);
    EXPECT_TRUE(store.state.versions.empty());
  }
}

TEST(MergeMapping, ColumnsAreMatchedByNameInAnyOrder) {
  MemoryStore store = Replica();
  MergeResult result;
  // Key and row in another order than the table's; an integral real key
  // equals the integer one (KeyForm).
  Status status = Apply(store,
                        MakeBatch({Upsert("pairs", {{"a", I(2)}, {"b", T("x")}},
                                          {{"val", T("v")}, {"b", T("x")}, {"a", I(2)}}, At(1), kNodeA),
                                   Upsert("pairs", {{"b", T("y")}, {"a", Value::Real(3.0)}},
                                          {{"a", I(3)}, {"b", T("y")}, {"val", I(7)}}, At(1), kNodeA)}),
                        &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 2);
  std::string key;
  ASSERT_TRUE(EncodeKey({T("x"), I(2)}, &key).ok());
  const std::vector<Value>* row = RowOf(store, "pairs", key);
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(Describe((*row)[0]), "integer 2");
  EXPECT_EQ(Describe((*row)[1]), "text \"x\"");
  EXPECT_EQ(Describe((*row)[2]), "text \"v\"");
  ASSERT_TRUE(EncodeKey({T("y"), I(3)}, &key).ok());
  EXPECT_NE(RowOf(store, "pairs", key), nullptr);
}

// ---------------------------------------------------------------- write order

TEST(MergeWriteOrder, UniqueValueHandedFromADeletedRowToANewRow) {
  for (bool delete_first : {true, false}) {
    SCOPED_TRACE(delete_first ? "delete first" : "insert first");
    MemoryStore store = Replica();
    ASSERT_TRUE(Apply(store, MakeBatch({User(1, "x@example.org", At(1))})).ok());
    Change remove = Delete("users", {{"id", I(1)}}, At(2), kNodeB);
    Change insert = User(2, "x@example.org", At(2), kNodeB);
    MergeResult result;
    Status status = Apply(store, delete_first ? MakeBatch({remove, insert}) : MakeBatch({insert, remove}), &result);
    ASSERT_TRUE(status.ok()) << status.message();
    EXPECT_EQ(result.applied, 2);
    EXPECT_EQ(RowOf(store, "users", Key(I(1))), nullptr);
    ASSERT_NE(RowOf(store, "users", Key(I(2))), nullptr);
    EXPECT_EQ((*RowOf(store, "users", Key(I(2))))[1].bytes, "x@example.org");
    EXPECT_TRUE(VersionOf(store, "users", Key(I(1)))->deleted);
    EXPECT_EQ(VersionOf(store, "users", Key(I(2)))->hlc, At(2));
    EXPECT_EQ(result.failed, static_cast<std::size_t>(-1));
  }
}

TEST(MergeWriteOrder, UniqueValueHandedOnAlongAChain) {
  // u3 takes u2's value, u2 takes u1's, u1 takes a new one: in this order
  // each write waits for the next; retries find the order.
  MemoryStore store = Replica();
  ASSERT_TRUE(Apply(store, MakeBatch({User(1, "a", At(1)), User(2, "b", At(1)), User(3, "c", At(1))})).ok());
  MergeResult result;
  Status status = Apply(store, MakeBatch({User(3, "b", At(2)), User(2, "a", At(2)), User(1, "new", At(2))}), &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 3);
  EXPECT_EQ((*RowOf(store, "users", Key(I(1))))[1].bytes, "new");
  EXPECT_EQ((*RowOf(store, "users", Key(I(2))))[1].bytes, "a");
  EXPECT_EQ((*RowOf(store, "users", Key(I(3))))[1].bytes, "b");
}

TEST(MergeWriteOrder, SwapOfUniqueValuesIsAConstraintError) {
  MemoryStore store = Replica();
  ASSERT_TRUE(Apply(store, MakeBatch({User(1, "x", At(1)), User(2, "y", At(1))})).ok());
  const std::string before = Dump(store.state);
  MergeResult result;
  Status status =
      Apply(store, MakeBatch({Note("n", "fine", At(2), kNodeA), User(1, "y", At(2)), User(2, "x", At(2))}), &result);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), Code::kConstraint);
  EXPECT_EQ(status.message(), "change 1 (table \"users\"): UNIQUE constraint failed: users.email (nor could change 2 "
                              "be applied in any order)");
  EXPECT_EQ(result.failed, 1u);
  EXPECT_EQ(Dump(store.state), before);  // rolled back

  // Three rows in a cycle.
  ASSERT_TRUE(Apply(store, MakeBatch({User(3, "z", At(1))})).ok());
  status = Apply(store, MakeBatch({User(1, "y", At(3)), User(2, "z", At(3)), User(3, "x", At(3))}), &result);
  EXPECT_EQ(status.code(), Code::kConstraint);
  EXPECT_EQ(status.message(), "change 0 (table \"users\"): UNIQUE constraint failed: users.email (nor could changes 1, "
                              "2 be applied in any order)");
  EXPECT_EQ(result.failed, 0u);

  // A single change that can never apply names only itself.
  status = Apply(store, MakeBatch({User(4, "x", At(3))}), &result);
  EXPECT_EQ(status.code(), Code::kConstraint);
  EXPECT_EQ(status.message(), "change 0 (table \"users\"): UNIQUE constraint failed: users.email");
}

TEST(MergeWriteOrder, OtherWriteErrorsEndTheApply) {
  MemoryStore store = Replica();
  store.fail_key = Key(T("b"));
  MergeResult result;
  Status status = Apply(
      store,
      MakeBatch({Note("a", "one", At(1), kNodeA), Note("b", "two", At(1), kNodeA), Note("c", "three", At(1), kNodeA)}),
      &result);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_EQ(status.message(), "change 1 (table \"notes\"): disk full");
  EXPECT_EQ(result.failed, 1u);
  EXPECT_EQ(store.write_versions_calls, 0);
  EXPECT_EQ(store.writes, std::vector<std::string>{"notes [\"a\"] upsert"});  // not retried, nothing after it
}

// ---------------------------------------------------------------- rewrites

TEST(MergeRewrite, RewrittenChangeBecomesANewLocalVersion) {
  MemoryStore store = Replica();
  MergeResult result;
  Change change =
      Upsert("tags", {{"name", T("red")}}, {{"name", T("red")}, {"label", T("  warm ")}}, At(7, 2), kNodeA, 4);
  Status status = Apply(store,
                        MakeBatch({change, Upsert("tags", {{"name", T("blue")}},
                                                  {{"name", T("blue")}, {"label", T("cold")}}, At(7), kNodeA)}),
                        &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 2);
  EXPECT_EQ(result.rewritten, 1);
  // The summary reports rewrites only when asked (PostgreSQL).
  EXPECT_EQ(result.summary, "{\"applied\":2,\"skipped\":0,\"source\":\"" + kRelay + "\",\"cursor\":null}");
  EXPECT_EQ((*RowOf(store, "tags", Key(T("red"))))[1].bytes, "warm");
  const StoredVersion* version = VersionOf(store, "tags", Key(T("red")));
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(version->hlc, At(7, 3));
  EXPECT_EQ(version->node, kLocal);
  EXPECT_EQ(version->clock, 5);
  EXPECT_FALSE(version->deleted);
  EXPECT_GE(store.received, At(7, 3));
  // What was stored as sent keeps its origin's version.
  EXPECT_EQ(VersionOf(store, "tags", Key(T("blue")))->node, kNodeA);
  EXPECT_EQ(VersionOf(store, "tags", Key(T("blue")))->hlc, At(7));

  // The new version beats the one received: the same batch again is skipped.
  status = Apply(store, MakeBatch({change}), &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 0);
  EXPECT_EQ(result.skipped, 1);
  EXPECT_EQ(result.rewritten, 0);

  MemoryStore counted = Replica();
  MergeOptions options = Options(counted);
  options.count_rewritten = true;
  ASSERT_TRUE(Apply(counted, MakeBatch({change}), &result, options).ok());
  EXPECT_EQ(result.summary,
            "{\"applied\":1,\"skipped\":0,\"rewritten\":1,\"source\":\"" + kRelay + "\",\"cursor\":null}");
}

TEST(MergeRewrite, KeyStoredInAnotherFormGetsATombstoneForTheKeySent) {
  MemoryStore store = Replica();
  MergeResult result;
  Change change = Upsert("tags", {{"name", T("Red")}}, {{"name", T("Red")}, {"label", T("warm")}}, At(3), kNodeB, 2);
  Status status = Apply(store, MakeBatch({change}), &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 1);
  EXPECT_EQ(result.rewritten, 1);
  ASSERT_NE(RowOf(store, "tags", Key(T("red"))), nullptr);
  EXPECT_EQ(RowOf(store, "tags", Key(T("Red"))), nullptr);
  // The row under the key as stored keeps the version received...
  const StoredVersion* stored = VersionOf(store, "tags", Key(T("red")));
  ASSERT_NE(stored, nullptr);
  EXPECT_EQ(stored->hlc, At(3));
  EXPECT_EQ(stored->node, kNodeB);
  EXPECT_EQ(stored->clock, 2);
  // ...and the key as sent gets a newer local tombstone, so that the sender
  // drops its copy.
  const StoredVersion* tombstone = VersionOf(store, "tags", Key(T("Red")));
  ASSERT_NE(tombstone, nullptr);
  EXPECT_EQ(tombstone->hlc, At(3) + 1);
  EXPECT_EQ(tombstone->node, kLocal);
  EXPECT_EQ(tombstone->clock, 3);
  EXPECT_TRUE(tombstone->deleted);

  // A delete sent under the other form does the same.
  status = Apply(store, MakeBatch({Delete("tags", {{"name", T("RED")}}, At(4), kNodeB, 3)}), &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(RowOf(store, "tags", Key(T("red"))), nullptr);
  EXPECT_TRUE(VersionOf(store, "tags", Key(T("red")))->deleted);
  EXPECT_EQ(VersionOf(store, "tags", Key(T("RED")))->hlc, At(4) + 1);
  EXPECT_TRUE(VersionOf(store, "tags", Key(T("RED")))->deleted);
  EXPECT_EQ(result.rewritten, 1);
}

TEST(MergeRewrite, NextHlcSaturates) {
  EXPECT_EQ(NextHlc(0), 1u);
  EXPECT_EQ(NextHlc(At(1, 0xffff)), At(2));
  EXPECT_EQ(NextHlc(kHlcMax - 1), kHlcMax);
  EXPECT_EQ(NextHlc(kHlcMax), kHlcMax);
}

TEST(MergeRewrite, RewriteAtHlcMaxIsRefused) {
  // At kHlcMax the rewrite cannot take a greater hlc; recorded as (kHlcMax,
  // local node) it would lose to the received (kHlcMax, origin) whenever the
  // local node id is the smaller one, so the same batch would apply again
  // (not idempotent) and the origin would never take the stored form. Only a
  // relay can carry such a stamp (the drift check stops it at its origin).
  const std::string local = "11111111-2222-4333-8444-555555555555";
  const std::string origin = "eeeeeeee-2222-4333-8444-555555555555";
  MemoryStore store = Replica(local);
  Change change = Upsert("tags", {{"name", T("red")}}, {{"name", T("red")}, {"label", T(" x")}}, kHlcMax, origin);
  MergeResult result;
  Status status = Apply(store, MakeBatch({change}, kRelay), &result);
  EXPECT_EQ(status.code(), Code::kInvalidInput);
  EXPECT_NE(status.message().find("change 0 (table \"tags\"): stamp 7fffffffffffffff is the greatest possible"),
            std::string::npos)
      << status.message();
  EXPECT_EQ(VersionOf(store, "tags", Key(T("red"))), nullptr);
}

// ---------------------------------------------------------------- cursor

std::string CursorText(const std::string& node, const std::string& position, const std::string& filter = kFilter) {
  return node + ":" + filter + ":" + position;
}

TEST(MergeCursor, CursorIsRecordedAndNeverMovesBack) {
  MemoryStore store = Replica();
  MergeResult result;
  ASSERT_TRUE(
      Apply(store, MakeBatch({Note("a", "one", At(1), kNodeA)}, kNodeB, CursorText(kNodeB, "2.9")), &result).ok());
  EXPECT_EQ(store.write_peer_calls, 1);
  EXPECT_EQ(store.state.peers.at({kNodeB, kFilter}), "2.9");
  EXPECT_EQ(result.summary, "{\"applied\":1,\"skipped\":0,\"source\":\"" + kNodeB + "\",\"cursor\":\"" +
                                CursorText(kNodeB, "2.9") + "\"}");

  // A page delivered late does not move it back; nor does the same position.
  for (const char* older : {"2.8", "1.100", "2.9", "2"}) {
    ASSERT_TRUE(Apply(store, MakeBatch({}, kNodeB, CursorText(kNodeB, older))).ok());
    EXPECT_EQ(store.state.peers.at({kNodeB, kFilter}), "2.9") << older;
  }
  EXPECT_EQ(store.write_peer_calls, 1);
  // A newer one moves it (positions compare as numbers, part by part).
  ASSERT_TRUE(Apply(store, MakeBatch({}, kNodeB, CursorText(kNodeB, "2.10"))).ok());
  EXPECT_EQ(store.state.peers.at({kNodeB, kFilter}), "2.10");
  // Another filter has its own cursor.
  ASSERT_TRUE(Apply(store, MakeBatch({}, kNodeB, CursorText(kNodeB, "1", "0123456789abcdef"))).ok());
  EXPECT_EQ(store.state.peers.at({kNodeB, "0123456789abcdef"}), "1");
  EXPECT_EQ(store.state.peers.at({kNodeB, kFilter}), "2.10");
  // No cursor, no record.
  ASSERT_TRUE(Apply(store, MakeBatch({Note("b", "two", At(1), kNodeA)}, kNodeB), &result).ok());
  EXPECT_EQ(store.write_peer_calls, 3);
  EXPECT_EQ(store.state.peers.size(), 2u);
}

TEST(MergeCursor, AResyncReplacesTheCursorEvenWithAnOlderOne) {
  MemoryStore store = Replica();
  ASSERT_TRUE(Apply(store, MakeBatch({}, kNodeB, CursorText(kNodeB, "900.3.1.5000"))).ok());
  // After a failover the new primary's positions may be below the lost
  // timeline's: a resync starts over from them.
  MergeOptions options = Options(store);
  options.replace_cursor = true;
  MergeResult result;
  ASSERT_TRUE(Apply(store, MakeBatch({}, kNodeB, CursorText(kNodeB, "850.0.2.4000")), &result, options).ok());
  EXPECT_EQ(store.state.peers.at({kNodeB, kFilter}), "850.0.2.4000");
}

TEST(MergeCursor, CursorInAnotherCaseIsRecordedCanonically) {
  MemoryStore store = Replica();
  std::string upper = kNodeB;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  MergeResult result;
  Status status = Apply(store, MakeBatch({}, kNodeB, CursorText(upper, "5")), &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(store.state.peers.at({kNodeB, kFilter}), "5");
  EXPECT_NE(result.summary.find("\"cursor\":\"" + CursorText(kNodeB, "5") + "\""), std::string::npos) << result.summary;
}

TEST(MergeCursor, CursorFromAnotherNodeThanTheSourceIsRefused) {
  MemoryStore store = Replica();
  Status status = Apply(store, MakeBatch({Note("a", "one", At(1), kNodeA)}, kNodeB, CursorText(kNodeA, "3")));
  ExpectRefusedBeforeWriting(store, status, Code::kInvalidInput,
                             "batch: cursor was issued by node " + kNodeA + ", not by the batch's source " + kNodeB);
  EXPECT_EQ(store.read_versions_calls, 0);

  status = Apply(store, MakeBatch({Note("a", "one", At(1), kNodeA)}, kNodeB, kNodeB + ":nothex:3"));
  ExpectRefusedBeforeWriting(store, status, Code::kInvalidInput, "batch: cursor \"");
}

}  // namespace

// ---------------------------------------------------------------- conflicts (roles)

MergeOptions ServerOptions(const MemoryStore& store) {
  MergeOptions options = Options(store);
  options.role = MergeRole::kServer;
  return options;
}

Change UserRow(const std::string& id, const std::string& email, Hlc hlc, const std::string& node) {
  return Upsert("users", {{"id", T(id)}}, {{"id", T(id)}, {"email", T(email)}}, hlc, node, 1);
}

TEST(MergeConflicts, ServerRefusesAUniqueCollisionOnItsOwnAndAnswersWithATombstone) {
  MemoryStore server = Replica();
  ASSERT_TRUE(Apply(server, MakeBatch({UserRow("u1", "a@x", At(1), kNodeA)}, kNodeA)).ok());
  // Another device made a row with the same UNIQUE value, and a note.
  MergeResult result;
  Status status =
      Apply(server, MakeBatch({UserRow("u2", "a@x", At(2), kNodeB), Note("n", "kept", At(3), kNodeB)}, kNodeB), &result,
            ServerOptions(server));
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 1);
  ASSERT_EQ(result.refusals.size(), 1u);
  EXPECT_EQ(result.refusals[0].index, 0u);
  EXPECT_EQ(result.refusals[0].sqlstate, "23000");
  EXPECT_TRUE(result.refusals[0].answered);
  EXPECT_FALSE(result.refusals[0].forget);
  EXPECT_NE(result.refusals[0].reason.message().find("change 0 (table \"users\"): UNIQUE"), std::string::npos);
  EXPECT_EQ(server.logged, std::vector<std::string>{"[\"u2\"] 23000 answered"});
  // The note went in; the refused row did not, and the server's answer is a
  // tombstone at the least stamp above the refused one, from the server.
  ASSERT_NE(RowOf(server, "notes", Key(T("n"))), nullptr);
  EXPECT_EQ(RowOf(server, "users", Key(T("u2"))), nullptr);
  const auto* answer = VersionOf(server, "users", Key(T("u2")));
  ASSERT_NE(answer, nullptr);
  EXPECT_TRUE(answer->deleted);
  EXPECT_EQ(answer->hlc, At(2) + 1);
  EXPECT_EQ(answer->node, kLocal);
  EXPECT_NE(result.summary.find("\"refused\":[{\"change\":0,\"table\":\"users\",\"pk\":{\"id\":\"u2\"}"),
            std::string::npos)
      << result.summary;
}

TEST(MergeConflicts, ServerAnswersAnExistingRowWithItsContentAboveTheRefusedStamp) {
  MemoryStore server = Replica();
  ASSERT_TRUE(
      Apply(server, MakeBatch({UserRow("u1", "a@x", At(1), kNodeA), UserRow("u2", "b@x", At(1), kNodeA)}, kNodeA))
          .ok());
  MergeResult result;
  ASSERT_TRUE(
      Apply(server, MakeBatch({UserRow("u2", "a@x", At(5), kNodeB)}, kNodeB), &result, ServerOptions(server)).ok());
  ASSERT_EQ(result.refusals.size(), 1u);
  EXPECT_EQ((*RowOf(server, "users", Key(T("u2"))))[1].bytes, "b@x");
  const auto* answer = VersionOf(server, "users", Key(T("u2")));
  EXPECT_FALSE(answer->deleted);
  EXPECT_EQ(answer->hlc, At(5) + 1);
  EXPECT_EQ(answer->node, kLocal);
}

TEST(MergeConflicts, ServerWaitsForLaterPagesBeforeRefusingAConstraint) {
  MemoryStore server = Replica();
  ASSERT_TRUE(Apply(server, MakeBatch({UserRow("u1", "a@x", At(1), kNodeA)}, kNodeA)).ok());
  Batch page = MakeBatch({UserRow("u2", "a@x", At(2), kNodeB)}, kNodeB);
  page.has_more = true;
  MergeResult result;
  Status status = Apply(server, page, &result, ServerOptions(server));
  EXPECT_EQ(status.code(), Code::kConstraint);
  EXPECT_TRUE(server.logged.empty());
}

TEST(MergeConflicts, PermissionRefusalTellsTheDeviceToForget) {
  MemoryStore server = Replica();
  server.deny_key = "[\"n\"]";
  MergeResult result;
  ASSERT_TRUE(Apply(server, MakeBatch({Note("n", "x", At(1), kNodeB), Note("m", "y", At(1), kNodeB)}, kNodeB), &result,
                    ServerOptions(server))
                  .ok());
  EXPECT_EQ(result.applied, 1);
  ASSERT_EQ(result.refusals.size(), 1u);
  EXPECT_TRUE(result.refusals[0].forget);
  EXPECT_EQ(result.refusals[0].sqlstate, "42501");
}

TEST(MergeConflicts, UnknownRowStampedBelowTheGcWatermarkIsRefusedNotBroughtBack) {
  MemoryStore server = Replica();
  ASSERT_TRUE(Apply(server, MakeBatch({Note("kept", "x", At(1), kNodeA)}, kNodeA)).ok());
  server.gc_watermark = At(5);
  MergeOptions options = ServerOptions(server);
  MergeResult result;
  // "gone" was deleted and its tombstone collected; an edit (clock 2)
  // stamped before the collected deletes may be older than its delete. A
  // known row, a delete, and an edit after the watermark are merged as
  // always; a row new at its origin (clock 1) goes in, stamped above the
  // watermark so that a replica still holding an old tombstone of its key
  // takes it too.
  Status status =
      Apply(server,
            MakeBatch({Note("gone", "late edit", At(4), kNodeB, 2), Note("kept", "y", At(2), kNodeB, 2),
                       Note("new", "z", At(6), kNodeB, 2), Delete("notes", {{"id", T("other")}}, At(3), kNodeB),
                       Note("offline", "made offline", At(3), kNodeB, 1)},
                      kNodeB),
            &result, options);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 4);
  EXPECT_EQ(result.rewritten, 1);
  ASSERT_EQ(result.refusals.size(), 1u);
  EXPECT_EQ(result.refusals[0].index, 0u);
  EXPECT_EQ(result.refusals[0].sqlstate, "SL001");
  EXPECT_TRUE(result.refusals[0].forget);
  EXPECT_NE(result.refusals[0].reason.message().find("unknown here"), std::string::npos);
  EXPECT_EQ(RowOf(server, "notes", Key(T("gone"))), nullptr);
  EXPECT_NE(RowOf(server, "notes", Key(T("new"))), nullptr);
  EXPECT_EQ((*RowOf(server, "notes", Key(T("kept"))))[1].bytes, "y");
  ASSERT_NE(RowOf(server, "notes", Key(T("offline"))), nullptr);
  const auto* restamped = VersionOf(server, "notes", Key(T("offline")));
  EXPECT_EQ(restamped->hlc, At(5) + 1);
  EXPECT_EQ(restamped->node, kLocal);
  EXPECT_EQ(VersionOf(server, "notes", Key(T("new")))->hlc, At(6));
  // A device applies what its server sends: no watermark there.
  MemoryStore device = Replica();
  device.gc_watermark = At(5);
  MergeOptions device_options = Options(device);
  device_options.role = MergeRole::kDevice;
  ASSERT_TRUE(Apply(device, MakeBatch({Note("gone", "x", At(4), kNodeB)}, kNodeB), &result, device_options).ok());
  EXPECT_EQ(result.applied, 1);
}

TEST(MergeConflicts, ServerChecksEveryStampAgainstItsClock) {
  MemoryStore server = Replica();
  // Relayed or not: a change a little ahead waits (the batch fails, to be
  // tried again), one far ahead is refused into the log and answered at the
  // least stamp above the server's own version, and the device forgets its
  // copy.
  MergeResult result;
  Status status =
      Apply(server, MakeBatch({Note("a", "soon", At(10 * 60 * 1000), kNodeA)}, kNodeB), &result, ServerOptions(server));
  EXPECT_EQ(status.code(), Code::kNotYet) << status.message();
  status = Apply(server, MakeBatch({Note("a", "planted", kHlcMax, kNodeA), Note("b", "fine", At(0), kNodeB)}, kNodeB),
                 &result, ServerOptions(server));
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 1);
  ASSERT_EQ(result.refusals.size(), 1u);
  EXPECT_TRUE(result.refusals[0].forget);
  const auto* answer = VersionOf(server, "notes", Key(T("a")));
  ASSERT_NE(answer, nullptr);
  EXPECT_TRUE(answer->deleted);
  EXPECT_EQ(answer->hlc, Hlc{1});  // the least stamp: the server never had the row
}

TEST(MergeConflicts, DeviceTrustsItsServerAndSkipsWhatItCannotStore) {
  MemoryStore phone = Replica(kNodeC);
  ASSERT_TRUE(Apply(phone, MakeBatch({UserRow("u1", "a@x", At(1), kNodeA)}, kNodeA)).ok());
  MergeOptions options = Options(phone);
  options.role = MergeRole::kDevice;
  MergeResult result;
  // A server stamp far ahead of this phone's clock, and a row it cannot
  // store (its UNIQUE value is taken here): the first applies, the second
  // is logged and skipped, with no answer.
  Status status =
      Apply(phone,
            MakeBatch({Note("n", "future", At(24 * 3600 * 1000), kRelay), UserRow("u2", "a@x", At(2), kRelay)}, kRelay),
            &result, options);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 1);
  ASSERT_EQ(result.refusals.size(), 1u);
  EXPECT_FALSE(result.refusals[0].answered);
  EXPECT_EQ(VersionOf(phone, "users", Key(T("u2"))), nullptr);
  EXPECT_EQ(phone.received, At(24 * 3600 * 1000));
}

// ---------------------------------------------------------------- schema history

// A sender behind the table's schema (docs/protocol.md, "Schema changes"):
// a former column name maps to its column, a dropped column's value is
// ignored and reported, and a row lacking a column keeps the stored value
// (or the default) as a rewrite above the sent stamp, where the table
// allows partial rows.
TEST(MergeSchema, FormerNamesDroppedColumnsAndPartialRows) {
  MemoryStore store = Replica();
  MemTable& notes = store.table("notes");
  notes.former_names = {{"heading", 1}, {"count", 2}};
  notes.dropped = {"colour"};
  notes.partial_rows = true;
  ASSERT_TRUE(Apply(store, MakeBatch({Note("a", "first", At(1), kNodeA)})).ok());

  MergeResult result;
  Status status =
      Apply(store,
            MakeBatch({Upsert("notes", {{"id", T("a")}},
                              {{"id", T("a")}, {"heading", T("renamed")}, {"colour", T("red")}}, At(2), kNodeB),
                       Upsert("notes", {{"id", T("b")}}, {{"id", T("b")}, {"count", I(5)}}, At(2), kNodeB)}),
            &result);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(result.applied, 2);
  EXPECT_EQ(result.rewritten, 2);
  ASSERT_EQ(result.ignored_columns, std::vector<std::string>{"notes.colour"});
  EXPECT_NE(result.summary.find(R"("ignored_columns":["notes.colour"])"), std::string::npos) << result.summary;
  std::string key;
  ASSERT_TRUE(EncodeKey({T("a")}, &key).ok());
  const std::vector<Value>* row = RowOf(store, "notes", key);
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(Describe((*row)[1]), "text \"renamed\"");
  EXPECT_EQ(Describe((*row)[2]), "integer 1");  // kept: the sender lacks the column
  const StoredVersion& version = store.state.versions.at({"notes", key});
  EXPECT_EQ(version.hlc, At(2) + 1);  // the least stamp above the sent one
  EXPECT_EQ(version.node, kLocal);
  ASSERT_TRUE(EncodeKey({T("b")}, &key).ok());
  row = RowOf(store, "notes", key);
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(Describe((*row)[1]), "null null");  // a new row: the default
  EXPECT_EQ(Describe((*row)[2]), "integer 5");
}

TEST(MergeSchema, CurrentNameWinsAndPartialRowsNeedTheTablesConsent) {
  MemoryStore store = Replica();
  MemTable& notes = store.table("notes");
  notes.former_names = {{"heading", 1}};
  Status status = Apply(
      store,
      MakeBatch({Upsert("notes", {{"id", T("a")}},
                        {{"id", T("a")}, {"heading", T("old")}, {"title", T("new")}, {"n", I(1)}}, At(1), kNodeA)}));
  ASSERT_TRUE(status.ok()) << status.message();
  std::string key;
  ASSERT_TRUE(EncodeKey({T("a")}, &key).ok());
  EXPECT_EQ(Describe((*RowOf(store, "notes", key))[1]), "text \"new\"");

  // Without partial rows, a lacking column is still an error; a lacking key
  // column always is.
  status =
      Apply(store, MakeBatch({Upsert("notes", {{"id", T("b")}}, {{"id", T("b")}, {"title", T("x")}}, At(2), kNodeA)}));
  EXPECT_EQ(status.message(), "change 0 (table \"notes\"): \"row\" lacks column \"n\"");
  notes.partial_rows = true;
  status = Apply(
      store, MakeBatch({Upsert("pairs", {{"a", I(1)}, {"b", T("x")}}, {{"b", T("x")}, {"val", I(0)}}, At(2), kNodeA)}));
  EXPECT_EQ(status.message(), "change 0 (table \"pairs\"): \"row\" lacks column \"a\"");
}
