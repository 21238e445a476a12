#include "core/merge.h"

#include <map>
#include <unordered_map>

namespace syncline::core {

namespace {

std::string KeyNames(const MergeTable& table) {
  std::string names;
  for (std::size_t k = 0; k < table.pk.size(); ++k)
    names += (k > 0 ? ", " : "") + table.columns[table.pk[k]];
  return names;
}

// The column named `name`, looked for first at `hint` (batches list columns
// in table order), or names.size().
std::size_t FindColumn(const std::vector<std::string>& names, const std::string& name, std::size_t hint) {
  if (hint < names.size() && names[hint] == name) return hint;
  std::size_t c = 0;
  while (c < names.size() && names[c] != name)
    ++c;
  return c;
}

// Maps a change's "pk" and "row" onto its table: exactly the key columns,
// and every column of an upsert's row, each once.
Status MapChange(MergeChange& out) {
  const MergeTable& table = *out.table;
  const Change& change = *out.change;
  out.key.assign(table.pk.size(), nullptr);
  for (std::size_t i = 0; i < change.pk.size(); ++i) {
    const ColumnValue& column = change.pk[i];
    std::size_t k = 0;
    if (i < table.pk.size() && table.columns[table.pk[i]] == column.column) {
      k = i;
    } else {
      while (k < table.pk.size() && table.columns[table.pk[k]] != column.column)
        ++k;
    }
    if (k == table.pk.size())
      return Status(Code::kUndefinedColumn, "\"pk\" names column \"" + column.column +
                                                "\", which is not in the table's primary key (" + KeyNames(table) +
                                                ")");
    if (column.value.type == Value::Type::kNull)
      return Status(Code::kInvalidInput, "primary key column \"" + column.column + "\" is null");
    out.key[k] = &column.value;
  }
  for (std::size_t k = 0; k < table.pk.size(); ++k) {
    if (out.key[k] == nullptr)
      return Status(Code::kUndefinedColumn, "\"pk\" lacks primary key column \"" + table.columns[table.pk[k]] + "\"");
  }
  out.row.clear();
  if (change.op == Op::kDelete) return Status::Ok();
  out.row.assign(table.columns.size(), nullptr);
  for (std::size_t i = 0; i < change.row.size(); ++i) {
    const ColumnValue& column = change.row[i];
    std::size_t c = FindColumn(table.columns, column.column, i);
    if (c == table.columns.size()) return Status(Code::kUndefinedColumn, "unknown column \"" + column.column + "\"");
    out.row[c] = &column.value;
  }
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    if (out.row[c] == nullptr)
      return Status(Code::kUndefinedColumn, "\"row\" lacks column \"" + table.columns[c] + "\"");
  }
  // The key columns of "row" are the key: a change cannot say two things.
  for (std::size_t k = 0; k < table.pk.size(); ++k) {
    if (!SameValue(KeyForm(*out.row[table.pk[k]]), KeyForm(*out.key[k])))
      return Status(Code::kInvalidInput,
                    "\"pk\" and \"row\" differ in primary key column \"" + table.columns[table.pk[k]] + "\"");
  }
  return Status::Ok();
}

// Two changes of one row with the same stamp in one batch: the same write?
bool SameWrite(const MergeChange& a, const MergeChange& b) {
  if (a.change->op != b.change->op) return false;
  for (std::size_t c = 0; c < a.row.size(); ++c)
    if (!SameValue(*a.row[c], *b.row[c])) return false;
  return true;
}

struct RowId {
  const MergeTable* table;
  const Value* key;
  bool operator==(const RowId& other) const {
    return table == other.table && SameValue(*key, *other.key) && key->type == other.key->type;
  }
};

struct RowIdHash {
  std::size_t operator()(const RowId& id) const {
    std::size_t h = std::hash<const void*>()(id.table);
    const Value& key = *id.key;
    if (key.type == Value::Type::kInteger) return h ^ std::hash<std::int64_t>()(key.integer);
    return h ^ std::hash<std::string>()(key.bytes) ^ static_cast<std::size_t>(key.type);
  }
};

Status WithContext(const Status& status, const MergeChange& change) {
  return status.WithPrefix(ChangeContext(change.index, change.change->table));
}

// Writes the winning changes in batch order, a run of one table and op at a
// time. A change the engine refuses with a constraint error may only need
// another change written first (a UNIQUE value handed from one row to
// another, a parent that comes later): it is put aside and retried after the
// rest, until a round writes nothing more.
Status WriteInOrder(const std::vector<MergeChange*>& winners, MergeStore& store, std::size_t* refused) {
  std::vector<MergeChange*> waiting;
  std::vector<Status> reasons;
  std::vector<MergeChange*> run;
  auto write_runs = [&](const std::vector<MergeChange*>& changes) -> Status {
    std::size_t i = 0;
    while (i < changes.size()) {
      run.clear();
      run.push_back(changes[i]);
      while (i + run.size() < changes.size() && changes[i + run.size()]->table == run[0]->table &&
             changes[i + run.size()]->change->op == run[0]->change->op)
        run.push_back(changes[i + run.size()]);
      std::size_t written = 0;
      Status status = store.WriteRows(run, &written);
      if (status.ok()) {
        i += run.size();
        continue;
      }
      if (written >= run.size()) return status;
      if (status.code() != Code::kConstraint) {
        *refused = run[written]->index;
        return WithContext(status, *run[written]);
      }
      waiting.push_back(run[written]);
      reasons.push_back(status);
      i += written + 1;
    }
    return Status::Ok();
  };
  Status status = write_runs(winners);
  while (status.ok() && !waiting.empty()) {
    std::vector<MergeChange*> retry;
    retry.swap(waiting);
    reasons.clear();
    status = write_runs(retry);
    if (status.ok() && waiting.size() == retry.size()) {
      std::string others;
      for (std::size_t i = 1; i < waiting.size(); ++i)
        others += (i > 1 ? ", " : "") + std::to_string(waiting[i]->index);
      *refused = waiting[0]->index;
      Status first = WithContext(reasons[0], *waiting[0]);
      if (others.empty()) return first;
      return Status(first.code(), first.message() + " (nor could change" + (waiting.size() > 2 ? "s " : " ") + others +
                                      " be applied in any order)");
    }
  }
  return status;
}

}  // namespace

Verdict Decide(const Change& change, const RowVersion& current, const std::string& local_node) {
  if (current.exists) {
    int order = CompareStamps(change.hlc, change.node, current.hlc, current.node);
    if (order < 0) return Verdict::kOlder;
    if (order == 0) return Verdict::kSameStamp;
  }
  if (change.node == local_node) return Verdict::kCopiedDatabase;
  return Verdict::kApply;
}

Status BatchCursor(const Batch& batch, Cursor* out) {
  if (batch.cursor.empty()) return Status::Ok();
  Status status = DecodeCursor(batch.cursor, out);
  if (!status.ok()) return status.WithPrefix("batch: ");
  if (out->node != batch.source)
    return Status(Code::kInvalidInput,
                  "batch: cursor was issued by node " + out->node + ", not by the batch's source " + batch.source);
  return Status::Ok();
}

Status CheckDrift(const Change& change, const std::string& source, std::int64_t wall_ms, std::int64_t max_drift_ms) {
  if (change.node != source || HlcWithinDrift(change.hlc, wall_ms, max_drift_ms)) return Status::Ok();
  std::int64_t ahead_s = (HlcPhysicalMs(change.hlc) - wall_ms) / 1000;
  return Status(Code::kClockDrift, "hlc " + HlcToText(change.hlc) + " is " + std::to_string(ahead_s) +
                                       " s ahead of this node's clock (the bound is " +
                                       std::to_string(max_drift_ms / 1000) + " s); check the origin's clock");
}

Status CopiedDatabase(const std::string& docs_section) {
  return Status(Code::kCorruptBatch, "stamped with this database's own node id but newer than anything it wrote to "
                                     "that row; this database is probably a copy of another node's (see " +
                                         docs_section + ")");
}

Status Merge(const Batch& batch, MergeStore& store, const MergeOptions& options, MergeResult* result) {
  *result = MergeResult();
  Cursor cursor;
  Status status = BatchCursor(batch, &cursor);
  if (!status.ok()) return status;

  // Map every change onto its table first: a malformed change is reported
  // before anything is read or written.
  std::vector<MergeChange> changes(batch.changes.size());
  std::vector<MergeChange*> all(changes.size());
  for (std::size_t i = 0; i < changes.size(); ++i) {
    MergeChange& change = changes[i];
    change.index = i;
    change.change = &batch.changes[i];
    all[i] = &change;
    status = store.Table(change.change->table, &change.table);
    if (status.ok()) status = MapChange(change);
    if (status.ok()) status = store.Prepare(change);
    if (status.ok()) status = CheckDrift(*change.change, batch.source, options.wall_ms, options.max_drift_ms);
    if (!status.ok()) return WithContext(status, change);
  }
  status = store.ReadVersions(all);
  if (!status.ok()) return status;

  // Decide in batch order. A row's current version is the stored one, or
  // the one an earlier change of this batch won with.
  std::unordered_map<RowId, MergeChange*, RowIdHash> latest;
  std::vector<bool> wins(changes.size(), false);
  for (MergeChange& change : changes) {
    const Change& incoming = *change.change;
    store.ReceiveStamp(incoming.hlc);
    MergeChange*& previous = latest[RowId{change.table, &change.meta_key}];
    RowVersion current = change.stored;
    if (previous != nullptr) current = RowVersion{true, previous->hlc, previous->node, previous->deleted};
    switch (Decide(incoming, current, options.local_node)) {
      case Verdict::kOlder: ++result->skipped; continue;
      case Verdict::kSameStamp: {
        bool same = false;
        if (previous != nullptr)
          same = SameWrite(change, *previous);
        else if ((incoming.op == Op::kDelete) != change.stored.deleted)
          same = false;
        else if (incoming.op == Op::kDelete)
          same = true;
        else
          status = store.SameContent(change, &same);
        if (!status.ok()) return WithContext(status, change);
        if (!same)
          return WithContext(Status(Code::kCorruptBatch, "stamp " + HlcToText(incoming.hlc) + "/" + incoming.node +
                                                             " is already known for this row with different content"),
                             change);
        ++result->skipped;
        continue;
      }
      case Verdict::kCopiedDatabase: return WithContext(CopiedDatabase(options.copied_database_docs), change);
      case Verdict::kApply: break;
    }
    status = store.Admit(change);
    if (!status.ok()) return WithContext(status, change);
    change.clock = incoming.clock;
    change.hlc = incoming.hlc;
    change.node = incoming.node;
    change.deleted = incoming.op == Op::kDelete;
    if (previous != nullptr) wins[previous->index] = false;
    wins[change.index] = true;
    previous = &change;
    ++result->applied;
  }

  std::vector<MergeChange*> winners;
  for (MergeChange& change : changes)
    if (wins[change.index]) winners.push_back(&change);
  status = WriteInOrder(winners, store, &result->refused);
  if (!status.ok()) return status;

  // What the engine stored differently becomes a new local version: the
  // least stamp above the one received, which beats it (and nothing older
  // was stored) yet loses to any later edit elsewhere, as the received one
  // would. A row stored under another key than sent gets a tombstone for
  // the key as sent.
  std::vector<const MergeChange*> versions(winners.begin(), winners.end());
  std::vector<MergeChange> sent_keys;
  sent_keys.reserve(winners.size());
  for (MergeChange* change : winners) {
    // No stamp is above the greatest: the new version could not beat the
    // received one, and the replicas would disagree for good.
    if ((change->rewritten || change->has_sent_key) && change->change->hlc == kHlcMax)
      return WithContext(Status(Code::kInvalidInput, "stamp " + HlcToText(kHlcMax) +
                                                         " is the greatest possible; the form this node stores "
                                                         "cannot be stamped above it"),
                         *change);
    if (change->rewritten) {
      change->hlc = NextHlc(change->hlc);
      change->clock += 1;
      change->node = options.local_node;
      store.ReceiveStamp(change->hlc);
    }
    if (change->rewritten || change->has_sent_key) ++result->rewritten;
    if (change->has_sent_key) {
      MergeChange& tombstone = sent_keys.emplace_back(*change);
      tombstone.meta_key = change->sent_key;
      tombstone.has_sent_key = false;
      tombstone.hlc = NextHlc(change->change->hlc);
      tombstone.clock = change->change->clock + 1;
      tombstone.node = options.local_node;
      tombstone.deleted = true;
      store.ReceiveStamp(tombstone.hlc);
    }
  }
  for (const MergeChange& tombstone : sent_keys)
    versions.push_back(&tombstone);
  status = store.WriteVersions(versions);
  if (!status.ok()) return status;

  if (!batch.cursor.empty()) {
    bool found = false;
    std::string position;
    status = store.ReadPeer(cursor, &found, &position);
    if (!status.ok()) return status;
    // A page delivered late (after a newer one) must not move the cursor back.
    if (!found || ComparePositions(cursor.position, position) > 0) status = store.WritePeer(cursor);
    if (!status.ok()) return status;
  }
  result->summary = ApplySummary({result->applied, result->skipped, options.count_rewritten ? result->rewritten : -1},
                                 batch.source, batch.cursor.empty() ? "" : EncodeCursor(cursor));
  return Status::Ok();
}

}  // namespace syncline::core
