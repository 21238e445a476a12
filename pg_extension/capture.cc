// The capture triggers (docs/postgres.md, "Capture"): short, C++, with a
// plan prepared once per backend and a per-table cache that a relcache
// callback marks stale (after PgQ).
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "core/changeset.h"
#include "pg_extension/backend.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/spi.h"
#include "pg_extension/tables.h"

namespace syncline::pg {

using core::Code;
using core::Status;

Backend& backend() {
  static Backend state;  // trivially constructible: no static constructor runs at load
  return state;
}

namespace {

struct CaptureEntry {
  bool valid = false;
  bool pin_output = false;          // a key or scope column's text form depends on session settings
  MemoryContext context = nullptr;  // owns the entry's type lookups
  TableInfo table;
  std::string notify_payload;
};

// Heap objects reached through plain pointers: nothing with a constructor
// runs when the library loads, nothing with a destructor when it unloads.
std::unordered_map<Oid, CaptureEntry*>* capture_cache = nullptr;
SPIPlanPtr upsert_plan = nullptr;
SPIPlanPtr upsert_many_plan = nullptr;
SPIPlanPtr revive_plan = nullptr;
SPIPlanPtr truncate_plan = nullptr;

void InvalidateRelation(Datum, Oid relid) {
  if (capture_cache == nullptr) return;
  if (relid == InvalidOid) {
    for (auto& entry : *capture_cache)
      entry.second->valid = false;
    return;
  }
  auto it = capture_cache->find(relid);
  if (it != capture_cache->end()) it->second->valid = false;
}

void ResetOnAbort(XactEvent event, void*) {
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
    backend().applying = 0;
    backend().applied_keys = nullptr;
  }
}

void ResetOnSubAbort(SubXactEvent event, SubTransactionId subid, SubTransactionId, void*) {
  // Only the subtransaction the apply began in (or one around it) ends the
  // apply; one a user's trigger opened inside it (a PL/pgSQL EXCEPTION
  // block) does not.
  Backend& state = backend();
  if (event == SUBXACT_EVENT_ABORT_SUB && state.applying > 0 && subid <= state.applying_since) {
    state.applying = 0;
    state.applied_keys = nullptr;
  }
}

Status Entry(Relation relation, CaptureEntry** out) {
  if (capture_cache == nullptr) capture_cache = new std::unordered_map<Oid, CaptureEntry*>();
  Oid relid = RelationGetRelid(relation);
  CaptureEntry*& entry = (*capture_cache)[relid];
  if (entry == nullptr) entry = new CaptureEntry();
  if (entry->valid) {
    *out = entry;
    return Status::Ok();
  }
  if (entry->context != nullptr) {
    MemoryContext old = entry->context;
    PgGuard([&] { MemoryContextDelete(old); });
    entry->context = nullptr;
  }
  PgGuard([&] { entry->context = AllocSetContextCreate(TopMemoryContext, "syncline capture", ALLOCSET_SMALL_SIZES); });
  bool found = false;
  Status status = FindTrackedByRelid(relid, entry->context, &entry->table, &found);
  if (!status.ok()) return status;
  if (!found)
    return Status(Code::kUndefinedTable, "table " + QualifiedName(entry->table) +
                                             " has syncline's capture trigger but is not tracked; call syncline.track "
                                             "or drop the trigger");
  entry->pin_output = false;
  for (int index : entry->table.pk)
    entry->pin_output |= OutputDependsOnSettings(entry->table.columns[index].base);
  if (entry->table.scope >= 0)
    entry->pin_output |= OutputDependsOnSettings(entry->table.columns[entry->table.scope].base);
  entry->notify_payload.clear();
  core::JsonWriter writer(&entry->notify_payload);
  writer.BeginObject();
  writer.Key("table");
  writer.String(entry->table.name);
  writer.EndObject();
  entry->valid = true;
  *out = entry;
  return Status::Ok();
}

void PreparePlans() {
  if (upsert_plan != nullptr) return;
  // A new version of the row: clock + 1, a stamp above both the candidate
  // and the row's previous stamp (both saturating), this node, the writing
  // transaction. A tombstone keeps the scope its row had.
  const std::string next_clock = "clock = " + NextInt8("r.clock") + ", ";
  const std::string on_conflict = "ON CONFLICT (tid, pk) DO UPDATE SET " + next_clock +
                                  "hlc = pg_catalog.int8larger(EXCLUDED.hlc, " + NextInt8("r.hlc") +
                                  "), node = 0, "
                                  "deleted = EXCLUDED.deleted, scope = CASE WHEN EXCLUDED.deleted THEN r.scope ELSE "
                                  "EXCLUDED.scope END, xid = EXCLUDED.xid, seq = EXCLUDED.seq ";
  const std::string version = "pg_catalog.pg_current_xact_id(), "
                              "pg_catalog.nextval('syncline.rows_seq'::pg_catalog.regclass)";
  // A version this transaction wrote is not turned from live to deleted or
  // back without a look at the table: triggers that fire before this one
  // (a user's row trigger deleting or re-inserting the row this statement
  // wrote; their own statements were captured first), or a delete and a
  // re-insert of one key in two statements of one transaction. Rows held
  // back that way are looked up (VersionWriter::Recheck).
  const std::string hold_back = "WHERE NOT (r.xid OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id() AND "
                                "r.deleted IS DISTINCT FROM EXCLUDED.deleted) ";
  const std::string insert_one = "INSERT INTO syncline.rows AS r (tid, pk, clock, hlc, node, deleted, scope, xid, seq) "
                                 "VALUES ($1, $2, 1, $3, 0, $4, $5, " +
                                 version + ") " + on_conflict;
  const std::vector<Oid> one_types = {INT4OID, TEXTOID, INT8OID, BOOLOID, TEXTOID};
  upsert_plan = Prepare(insert_one + hold_back + "RETURNING r.hlc", one_types, /*keep=*/true);
  revive_plan = Prepare(insert_one + "RETURNING r.hlc", one_types, /*keep=*/true);
  // The same for many rows at once, one array per column.
  upsert_many_plan = Prepare(
      "INSERT INTO syncline.rows AS r (tid, pk, clock, hlc, node, deleted, scope, xid, seq) "
      "SELECT $1, c.pk, 1, c.hlc, 0, c.deleted, c.scope, " +
          version +
          " FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.int8[]), "
          "pg_catalog.unnest($4::pg_catalog.bool[]), pg_catalog.unnest($5::pg_catalog.text[])) AS c(pk, hlc, deleted, "
          "scope) " +
          on_conflict + hold_back + "RETURNING r.hlc, r.pk",
      {INT4OID, TEXTARRAYOID, INT8ARRAYOID, BOOLARRAYOID, TEXTARRAYOID}, /*keep=*/true);
  truncate_plan = Prepare(
      "UPDATE syncline.rows AS r SET " + next_clock + "hlc = pg_catalog.int8larger($2, " + NextInt8("r.hlc") +
          "), node = 0, deleted = true, "
          "xid = pg_catalog.pg_current_xact_id(), seq = pg_catalog.nextval('syncline.rows_seq'::pg_catalog.regclass) "
          "WHERE r.tid OPERATOR(pg_catalog.=) $1 AND NOT r.deleted AND r.xid OPERATOR(pg_catalog.<>) "
          "pg_catalog.pg_current_xact_id() RETURNING hlc",
      {INT4OID, INT8OID}, /*keep=*/true);
}

void Notify(const CaptureEntry& entry, const std::string& scope) {
  if (!entry.table.notify) return;
  std::string payload = entry.notify_payload;
  if (!scope.empty()) payload = payload.substr(0, payload.size() - 1) + ",\"scope\":" + scope + "}";
  const char* text = payload.c_str();
  // NOTIFY drops duplicate payloads within a transaction.
  PgGuard([&] { Async_Notify("syncline", text); });
}

// The new row versions of one statement, written to syncline.rows a chunk
// at a time: one execution per chunk instead of one per row is most of what
// statement-level capture saves.
class VersionWriter {
 public:
  explicit VersionWriter(const CaptureEntry& entry) : entry_(entry) {}

  void Add(const std::string& key, bool deleted, const std::string& scope) {
    if (BeingApplied(entry_.table.relid, key)) return;  // a merged change keeps its origin's version
    // ON CONFLICT may not meet a row twice in one command (possible only
    // with a deferrable primary key): such a key starts a new chunk.
    if (!in_chunk_.insert(key).second) {
      Flush();
      in_chunk_.insert(key);
    }
    keys_.push_back(key);
    stamps_.push_back(NextStamp());
    deleted_.push_back(deleted);
    scopes_.push_back(scope);
    if (entry_.table.notify) notify_scopes_.insert(scope);
    if (keys_.size() >= kChunkRows) Flush();
  }

  void Flush() {
    if (keys_.empty()) return;
    if (keys_.size() == 1)
      WriteOne();
    else
      WriteMany();
    keys_.clear();
    stamps_.clear();
    deleted_.clear();
    scopes_.clear();
    in_chunk_.clear();
  }

  // One NOTIFY per scope the statement touched.
  void Notify() {
    for (const std::string& scope : notify_scopes_)
      syncline::pg::Notify(entry_, scope);
  }

 private:
  static constexpr std::size_t kChunkRows = 1000;

  void WriteOne() {
    Datum values[5];
    char nulls[6] = "     ";
    const char* key_text = keys_[0].c_str();
    const char* scope_text = scopes_[0].c_str();
    bool no_scope = scopes_[0].empty();
    PgGuard([&] {
      values[1] = CStringGetTextDatum(key_text);
      values[4] = no_scope ? (Datum)0 : CStringGetTextDatum(scope_text);
    });
    values[0] = Int32GetDatum(entry_.table.tid);
    values[2] = Int64GetDatum(static_cast<int64>(stamps_[0]));
    values[3] = BoolGetDatum(deleted_[0]);
    if (no_scope) nulls[4] = 'n';
    uint64 written = 0;
    {
      AsExtensionOwner owner;
      written = Execute(upsert_plan, values, nulls, false);
    }
    if (written > 0) ReceiveStamp(static_cast<core::Hlc>(ResultInt64(0, 1)));
    PgGuard([] { SPI_freetuptable(SPI_tuptable); });
    if (written == 0) Recheck(0);
  }

  // A row held back (see hold_back): live if it is in the table, deleted if
  // not.
  void Recheck(std::size_t i) {
    const bool exists = RowExists(keys_[i]);
    Datum values[5];
    char nulls[6] = "     ";
    const char* key_text = keys_[i].c_str();
    const char* scope_text = scopes_[i].c_str();
    bool no_scope = scopes_[i].empty();
    PgGuard([&] {
      values[1] = CStringGetTextDatum(key_text);
      values[4] = no_scope ? (Datum)0 : CStringGetTextDatum(scope_text);
    });
    values[0] = Int32GetDatum(entry_.table.tid);
    values[2] = Int64GetDatum(static_cast<int64>(stamps_[i]));
    values[3] = BoolGetDatum(!exists);
    if (no_scope) nulls[4] = 'n';
    AsExtensionOwner owner;
    Execute(revive_plan, values, nulls, false);
    ReceiveStamp(static_cast<core::Hlc>(ResultInt64(0, 1)));
    PgGuard([] { SPI_freetuptable(SPI_tuptable); });
  }

  bool RowExists(const std::string& key) {
    const TableInfo& table = entry_.table;
    if (exists_plan_ == nullptr) {
      std::string where;
      std::vector<Oid> types;
      for (std::size_t k = 0; k < table.pk.size(); ++k) {
        const ColumnType& column = table.columns[table.pk[k]];
        where += (k > 0 ? " AND " : "") + KeyEquals(column, "$" + std::to_string(k + 1));
        types.push_back(column.base);
      }
      exists_plan_ = Prepare("SELECT 1 FROM " + QualifiedName(table) + " WHERE " + where, types);
    }
    // The key was written by RowKey: one that does not read back is a bug.
    std::vector<core::Value> values;
    if (!core::DecodeKey(key, &values).ok() || values.size() != table.pk.size())
      throw std::runtime_error("capture cannot read back its own key " + key);
    std::vector<Datum> datums(values.size());
    std::string nulls(values.size(), ' ');
    for (std::size_t k = 0; k < values.size(); ++k) {
      bool isnull = false;
      if (!ValueToDatum(table.columns[table.pk[k]], values[k], &datums[k], &isnull).ok() || isnull)
        throw std::runtime_error("capture cannot read back its own key " + key);
    }
    // Not read-only: that would reuse the statement's snapshot, taken
    // before its own writes and those of the triggers it fired.
    AsExtensionOwner owner;
    uint64 found = Execute(exists_plan_, datums.data(), nulls.data(), false, 1);
    PgGuard([] { SPI_freetuptable(SPI_tuptable); });
    return found > 0;
  }

  void WriteMany() {
    const int count = static_cast<int>(keys_.size());
    Datum values[5];
    values[0] = Int32GetDatum(entry_.table.tid);
    PgGuard([&] {
      if (chunk_context_ == nullptr)
        chunk_context_ = AllocSetContextCreate(CurrentMemoryContext, "syncline capture chunk", ALLOCSET_DEFAULT_SIZES);
      MemoryContext old = MemoryContextSwitchTo(chunk_context_);
      auto* keys = static_cast<Datum*>(palloc(count * sizeof(Datum)));
      auto* stamps = static_cast<Datum*>(palloc(count * sizeof(Datum)));
      auto* deleted = static_cast<Datum*>(palloc(count * sizeof(Datum)));
      auto* scopes = static_cast<Datum*>(palloc(count * sizeof(Datum)));
      auto* scope_nulls = static_cast<bool*>(palloc(count * sizeof(bool)));
      for (int i = 0; i < count; ++i) {
        keys[i] = CStringGetTextDatum(keys_[i].c_str());
        stamps[i] = Int64GetDatum(static_cast<int64>(stamps_[i]));
        deleted[i] = BoolGetDatum(deleted_[i]);
        scope_nulls[i] = scopes_[i].empty();
        scopes[i] = scope_nulls[i] ? (Datum)0 : CStringGetTextDatum(scopes_[i].c_str());
      }
      int dims[1] = {count};
      int lower_bounds[1] = {1};
      values[1] = PointerGetDatum(construct_array(keys, count, TEXTOID, -1, false, TYPALIGN_INT));
      values[2] =
          PointerGetDatum(construct_array(stamps, count, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
      values[3] = PointerGetDatum(construct_array(deleted, count, BOOLOID, 1, true, TYPALIGN_CHAR));
      values[4] = PointerGetDatum(
          construct_md_array(scopes, scope_nulls, 1, dims, lower_bounds, TEXTOID, -1, false, TYPALIGN_INT));
      MemoryContextSwitchTo(old);
    });
    uint64 written = 0;
    {
      AsExtensionOwner owner;
      written = Execute(upsert_many_plan, values, "     ", false);
    }
    std::unordered_set<std::string> held_back;
    if (written < keys_.size()) held_back = std::unordered_set<std::string>(keys_.begin(), keys_.end());
    for (uint64 r = 0; r < written; ++r) {
      ReceiveStamp(static_cast<core::Hlc>(ResultInt64(r, 1)));
      if (!held_back.empty()) held_back.erase(ResultText(r, 2));
    }
    PgGuard([&] {
      SPI_freetuptable(SPI_tuptable);
      MemoryContextReset(chunk_context_);
    });
    for (std::size_t i = 0; i < keys_.size() && !held_back.empty(); ++i)
      if (held_back.count(keys_[i]) > 0) Recheck(i);
  }

  const CaptureEntry& entry_;
  std::vector<std::string> keys_;
  std::vector<core::Hlc> stamps_;
  std::vector<bool> deleted_;
  std::vector<std::string> scopes_;
  std::unordered_set<std::string> in_chunk_;
  std::set<std::string> notify_scopes_;
  MemoryContext chunk_context_ = nullptr;  // a child of the SPI session's context
  SPIPlanPtr exists_plan_ = nullptr;
};

// Rows of a transition table, read through a read pointer of their own: the
// table's first pointer is where other triggers' scans of it start.
class TransitionRows {
 public:
  TransitionRows(Tuplestorestate* store, TupleDesc desc) : store_(store) {
    PgGuard([&] {
      pointer_ = tuplestore_alloc_read_pointer(store_, EXEC_FLAG_REWIND);
      tuplestore_select_read_pointer(store_, pointer_);
      tuplestore_rescan(store_);
      tuplestore_select_read_pointer(store_, 0);
      // A copy of the descriptor is not reference-counted: nothing to
      // release, the slot goes with the SPI session's memory. It keeps the
      // constraints' copy too: the values of columns added (with a default)
      // after a row was written are there, not in the row.
      slot_ = MakeSingleTupleTableSlot(CreateTupleDescCopyConstr(desc), &TTSOpsMinimalTuple);
    });
  }

  // The next row into slot(); false after the last.
  bool Next() {
    bool found = false;
    PgGuard([&] {
      tuplestore_select_read_pointer(store_, pointer_);
      found = tuplestore_gettupleslot(store_, true, false, slot_);
      tuplestore_select_read_pointer(store_, 0);
    });
    return found;
  }

  TupleTableSlot* slot() const { return slot_; }

 private:
  Tuplestorestate* store_;
  int pointer_ = 0;
  TupleTableSlot* slot_ = nullptr;
};

// relhassubclass stays set after the last child is dropped (until VACUUM or
// ANALYZE): pg_inherits has the truth.
bool HasInheritanceChildren(Oid relid) {
  bool children = false;
  PgGuard([&] {
    List* found = find_inheritance_children(relid, NoLock);
    children = found != NIL;
    list_free(found);
  });
  return children;
}

Status ScopeMoved(const TableInfo& table) {
  // A row's scope says who receives its changes and its tombstone; moving
  // it to another scope would leave a stale copy with the old one.
  return Status(Code::kInvalidInput, "table " + QualifiedName(table) + ": the scope column \"" +
                                         table.columns[table.scope].name +
                                         "\" of a row cannot change (delete the row and insert it anew)");
}

// An UPDATE: a new version of every updated row, and a tombstone for every
// key that the statement moved a row away from, written before the rows'
// new keys. Old and new keys are matched as sets, not by position, so that
// rows swapping keys come out right.
Status CaptureUpdate(const TableInfo& table, TransitionRows& old_rows, TransitionRows& new_rows,
                     VersionWriter& writer) {
  std::vector<std::pair<std::string, std::string>> moved_from, moved_to;  // key, scope
  std::string old_key, key, old_scope, scope;
  RowMemory memory;
  while (old_rows.Next()) {
    if (!new_rows.Next()) return Status(Code::kInternal, "an UPDATE's transition tables differ in length");
    {
      RowMemory::Scope in_row = memory.Use();
      Status status = RowKey(table, old_rows.slot(), &old_key);
      if (status.ok()) status = RowKey(table, new_rows.slot(), &key);
      if (!status.ok()) return status;
      old_scope = RowScope(table, old_rows.slot());
      scope = RowScope(table, new_rows.slot());
    }
    if (old_key == key) {
      if (old_scope != scope) return ScopeMoved(table);
      writer.Add(key, false, scope);
    } else {
      moved_from.emplace_back(old_key, old_scope);
      moved_to.emplace_back(key, scope);
    }
  }
  if (moved_from.empty()) return Status::Ok();
  std::unordered_map<std::string, const std::string*> new_scopes;
  for (const auto& [new_key, scope] : moved_to)
    new_scopes.emplace(new_key, &scope);
  for (const auto& [gone, scope] : moved_from) {
    auto it = new_scopes.find(gone);
    if (it == new_scopes.end())
      writer.Add(gone, true, scope);
    else if (*it->second != scope)
      return ScopeMoved(table);  // another row took over this key: still this scope's row
  }
  for (const auto& [new_key, scope] : moved_to)
    writer.Add(new_key, false, scope);
  return Status::Ok();
}

// One AFTER ... FOR EACH STATEMENT trigger per event, each with the
// statement's transition tables (docs/postgres.md, "Capture").
Status CaptureStatement(FunctionCallInfo fcinfo, Datum* result) {
  *result = PointerGetDatum(nullptr);
  if (!CALLED_AS_TRIGGER(fcinfo)) return Status(Code::kInternal, "not called as a trigger");
  auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (!TRIGGER_FIRED_AFTER(data->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(data->tg_event))
    return Status(Code::kInternal, "must be an AFTER ... FOR EACH STATEMENT trigger");
  const bool inserted = TRIGGER_FIRED_BY_INSERT(data->tg_event);
  const bool updated = TRIGGER_FIRED_BY_UPDATE(data->tg_event);
  const bool deleted = TRIGGER_FIRED_BY_DELETE(data->tg_event);
  if ((inserted || updated) && data->tg_newtable == nullptr) return Status(Code::kInternal, "no NEW TABLE");
  if ((updated || deleted) && data->tg_oldtable == nullptr) return Status(Code::kInternal, "no OLD TABLE");
  if (!inserted && !updated && !deleted) return Status(Code::kInternal, "unexpected trigger event");

  SpiSession spi;
  CaptureEntry* entry = nullptr;
  Status status = Entry(data->tg_relation, &entry);
  if (!status.ok()) return status;
  const TableInfo& table = entry->table;
  // A statement on a parent table passes its children's rows in the
  // transition tables too, indistinguishable from the parent's own.
  if (data->tg_relation->rd_rel->relhassubclass && HasInheritanceChildren(RelationGetRelid(data->tg_relation)))
    return Status(Code::kInvalidInput, "table " + QualifiedName(table) +
                                           " has inheritance children, which syncline cannot tell apart from its "
                                           "own rows; untrack it");
  PreparePlans();
  TupleDesc desc = RelationGetDescr(data->tg_relation);
  // Keys are compared as text: a date or time key must have one text form
  // whatever DateStyle and TimeZone this session uses.
  std::optional<CanonicalOutput> pinned;
  if (entry->pin_output) pinned.emplace();

  VersionWriter writer(*entry);
  std::string key;
  if (updated) {
    TransitionRows old_rows(data->tg_oldtable, desc), new_rows(data->tg_newtable, desc);
    status = CaptureUpdate(table, old_rows, new_rows, writer);
    if (!status.ok()) return status;
  } else {
    TransitionRows rows(inserted ? data->tg_newtable : data->tg_oldtable, desc);
    RowMemory memory;
    std::string scope;
    while (rows.Next()) {
      {
        RowMemory::Scope in_row = memory.Use();
        status = RowKey(table, rows.slot(), &key);
        if (!status.ok()) return status;
        scope = RowScope(table, rows.slot());
      }
      writer.Add(key, deleted, scope);
    }
  }
  writer.Flush();
  writer.Notify();
  return Status::Ok();
}

// TRUNCATE fires no row triggers: every live row of the table gets a
// tombstone, so the truncation syncs like the DELETE it amounts to.
Status CaptureTruncate(FunctionCallInfo fcinfo, Datum* result) {
  *result = PointerGetDatum(nullptr);
  if (!CALLED_AS_TRIGGER(fcinfo)) return Status(Code::kInternal, "not called as a trigger");
  auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (!TRIGGER_FIRED_BY_TRUNCATE(data->tg_event)) return Status(Code::kInternal, "must be an ON TRUNCATE trigger");
  SpiSession spi;
  CaptureEntry* entry = nullptr;
  Status status = Entry(data->tg_relation, &entry);
  if (!status.ok()) return status;
  PreparePlans();
  Datum values[2] = {Int32GetDatum(entry->table.tid), Int64GetDatum(static_cast<int64>(NextStamp()))};
  uint64 rows = 0;
  {
    AsExtensionOwner owner;
    rows = Execute(truncate_plan, values, "  ", false);
  }
  for (uint64 r = 0; r < rows; ++r)
    ReceiveStamp(static_cast<core::Hlc>(ResultInt64(r, 1)));
  // Live versions this transaction wrote: the row may be back already (a
  // user's TRUNCATE trigger that fired first and inserted it); VersionWriter
  // looks them up.
  std::vector<std::pair<std::string, std::string>> written_here;  // key, scope
  {
    AsExtensionOwner owner;
    SPIPlanPtr plan =
        Prepare("SELECT pk, scope FROM syncline.rows WHERE tid OPERATOR(pg_catalog.=) $1 AND NOT deleted AND xid "
                "OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id()",
                {INT4OID});
    uint64 found = Execute(plan, values, " ", false);
    for (uint64 r = 0; r < found; ++r)
      written_here.emplace_back(ResultText(r, 1), ResultText(r, 2));
  }
  VersionWriter writer(*entry);
  for (const auto& [key, scope] : written_here)
    writer.Add(key, true, scope);
  writer.Flush();
  Notify(*entry, "");
  return Status::Ok();
}

}  // namespace

core::Hlc NextStamp() {
  Backend& state = backend();
  if (!state.clock_loaded) {
    AsExtensionOwner owner;
    if (ExecuteSql("SELECT value::pg_catalog.int8 FROM syncline.meta WHERE key OPERATOR(pg_catalog.=) 'hlc'", true) > 0)
      state.clock = static_cast<core::Hlc>(ResultInt64(0, 1));
    state.clock_loaded = true;
  }
  state.clock = core::HlcNext(state.clock, 0, core::WallClockMs());
  return state.clock;
}

void ReceiveStamp(core::Hlc remote) {
  if (remote > backend().clock) backend().clock = remote;
}

std::string LocalNodeId() {
  AsExtensionOwner owner;
  if (ExecuteSql("SELECT value FROM syncline.meta WHERE key OPERATOR(pg_catalog.=) 'node_id'", true) == 0)
    throw std::runtime_error("syncline.meta has no node id");
  return ResultText(0, 1);
}

}  // namespace syncline::pg

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void) {
  CacheRegisterRelcacheCallback(syncline::pg::InvalidateRelation, (Datum)0);
  CacheRegisterSyscacheCallback(EXTENSIONOID, syncline::pg::InvalidateExtensionOwner, (Datum)0);
  RegisterXactCallback(syncline::pg::ResetOnAbort, nullptr);
  RegisterSubXactCallback(syncline::pg::ResetOnSubAbort, nullptr);
  RegisterXactCallback(syncline::pg::boundary::ForgetOnAbort, nullptr);
  RegisterSubXactCallback(syncline::pg::boundary::ForgetOnSubAbort, nullptr);
}
}

SYNCLINE_PG_FUNCTION(syncline_capture, "syncline.capture", syncline::pg::CaptureStatement)
SYNCLINE_PG_FUNCTION(syncline_capture_truncate, "syncline.capture_truncate", syncline::pg::CaptureTruncate)
