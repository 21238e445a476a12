// The capture triggers (docs/postgres.md, "Capture"): short, C++, with a
// plan prepared once per backend and a per-table cache that a relcache
// callback marks stale (after PgQ).
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "core/changeset.h"
#include "core/column_merge.h"
#include "pg_extension/backend.h"
#include "pg_extension/column_stamps.h"
#include "pg_extension/partitions.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/rows_table.h"
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
  std::vector<std::string> column_names;  // a column-merge table's, for its column stamps
  std::string notify_payload;
};

// Heap objects reached through plain pointers: nothing with a constructor
// runs when the library loads, nothing with a destructor when it unloads.
std::unordered_map<Oid, CaptureEntry*>* capture_cache = nullptr;
SPIPlanPtr truncate_plan = nullptr;
SPIPlanPtr truncate_columns_plan = nullptr;  // also clears the column stamps (extension version 0.2)

void InvalidateRelation(Datum, Oid relid) {
  InvalidateRowsTable(relid);
  if (capture_cache == nullptr) return;
  if (relid == InvalidOid) {
    for (auto& entry : *capture_cache)
      entry.second->valid = false;
    return;
  }
  auto it = capture_cache->find(relid);
  if (it != capture_cache->end()) it->second->valid = false;
}

void ResetAtTransactionEnd(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE ||
      event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
    ForgetNodeIds();
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
    backend().applying = 0;
    backend().applied_keys = nullptr;
    backend().changing_triggers = 0;
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
  Status status;
  {
    PinnedSearchPath pinned;
    status = FindTrackedForCapture(relid, entry->context, &entry->table, &found);
  }
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
  entry->column_names.clear();
  if (entry->table.merge == core::MergeMode::kColumn)
    for (const ColumnType& column : entry->table.columns)
      entry->column_names.push_back(column.name);
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

// The plans TRUNCATE runs: the second for column-merge tables, which only
// extension version 0.2 has (its syncline.rows has column stamps).
std::string TruncateSql(bool column_merge) {
  return "UPDATE syncline.rows AS r SET clock = " + NextInt8("r.clock") + ", hlc = pg_catalog.int8larger($2, " +
         NextInt8("r.hlc") +
         "), node = 0, deleted = true, xid = pg_catalog.pg_current_xact_id(), "
         "seq = pg_catalog.nextval('syncline.rows_seq'::pg_catalog.regclass)" +
         (column_merge ? ", cols = NULL" : "") +
         " WHERE r.tid OPERATOR(pg_catalog.=) $1 AND NOT r.deleted AND r.xid OPERATOR(pg_catalog.<>) "
         "pg_catalog.pg_current_xact_id() RETURNING hlc";
}

SPIPlanPtr TruncatePlan(bool column_merge) {
  SPIPlanPtr& plan = column_merge ? truncate_columns_plan : truncate_plan;
  if (plan == nullptr) plan = Prepare(TruncateSql(column_merge), {INT4OID, INT8OID}, /*keep=*/true);
  return plan;
}

void Notify(const CaptureEntry& entry, const std::string& scope) {
  if (!entry.table.notify) return;
  std::string payload = entry.notify_payload;
  if (!scope.empty()) payload = payload.substr(0, payload.size() - 1) + ",\"scope\":" + scope + "}";
  const char* text = payload.c_str();
  // NOTIFY drops duplicate payloads within a transaction.
  PgGuard([&] { Async_Notify("syncline", text); });
}

// The new row versions of one statement, written to syncline.rows as they
// come (rows_table.h).
class VersionWriter {
 public:
  // `inserting`: the statement's rows are new to the table.
  VersionWriter(const CaptureEntry& entry, bool inserting) : entry_(entry), inserting_(inserting) {
    restamp_ = [this](const StoredStamps& stored, core::Hlc hlc, std::string* cols) {
      const core::Stamp before{stored.hlc, NodeIdOfRef(stored.node)};
      const core::Stamp now{hlc, NodeIdOfRef(0)};
      core::Status status = core::StampChangedColumns(stored.cols, entry_.column_names, before, *changed_, now, cols);
      if (!status.ok())
        throw std::runtime_error("table " + QualifiedName(entry_.table) +
                                 ": the column stamps of a row: " + status.message());
    };
  }

  // `changed`: an UPDATE of a column-merge row under the same key, which
  // stamps only these columns (ChangedColumns); otherwise the whole row is
  // at the new version.
  void Add(const std::string& key, bool deleted, const std::string& scope, const std::vector<bool>* changed = nullptr) {
    if (BeingApplied(entry_.table.relid, key)) return;  // a merged change keeps its origin's version
    changed_ = changed;
    std::optional<core::Hlc> written = rows_.Write(entry_.table.tid, key, NextStamp(), deleted, scope, true,
                                                   inserting_ && !deleted, changed != nullptr ? &restamp_ : nullptr);
    if (!written) written = Recheck(key, scope);
    ReceiveStamp(*written);
    if (entry_.table.notify) notify_scopes_.insert(scope);
  }

  // One NOTIFY per scope the statement touched.
  void Notify() {
    for (const std::string& scope : notify_scopes_)
      syncline::pg::Notify(entry_, scope);
  }

 private:
  // A version this transaction wrote is not turned from live to deleted or
  // back without a look at the table: triggers that fire before this one
  // (a user's row trigger deleting or re-inserting the row this statement
  // wrote; their own statements were captured first), or a delete and a
  // re-insert of one key in two statements of one transaction. Such a row
  // is live if it is in the table, deleted if not.
  core::Hlc Recheck(const std::string& key, const std::string& scope) {
    return *rows_.Write(entry_.table.tid, key, NextStamp(), !RowExists(key), scope, false, false);
  }

  bool RowExists(const std::string& key) {
    PinnedSearchPath pinned;
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

  const CaptureEntry& entry_;
  const bool inserting_;
  RowsTable rows_;
  RestampColumns restamp_;
  const std::vector<bool>* changed_ = nullptr;
  std::set<std::string> notify_scopes_;
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
  const bool column_merge = table.merge == core::MergeMode::kColumn;
  std::vector<bool> changed;
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
      if (column_merge && old_key == key) ChangedColumns(table, old_rows.slot(), new_rows.slot(), &changed);
    }
    if (old_key == key) {
      if (old_scope != scope) return ScopeMoved(table);
      writer.Add(key, false, scope, column_merge ? &changed : nullptr);
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
  // transition tables too, indistinguishable from the parent's own; a
  // partitioned table has no rows of its own.
  if (data->tg_relation->rd_rel->relhassubclass && data->tg_relation->rd_rel->relkind != RELKIND_PARTITIONED_TABLE &&
      HasInheritanceChildren(RelationGetRelid(data->tg_relation)))
    return Status(Code::kInvalidInput, "table " + QualifiedName(table) +
                                           " has inheritance children, which syncline cannot tell apart from its "
                                           "own rows; untrack it");
  TupleDesc desc = RelationGetDescr(data->tg_relation);
  // Keys are compared as text: a date or time key must have one text form
  // whatever DateStyle and TimeZone this session uses.
  std::optional<CanonicalOutput> pinned;
  if (entry->pin_output) pinned.emplace();

  VersionWriter writer(*entry, inserted);
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
  if (RelationGetRelid(data->tg_relation) != entry->table.relid) {
    // A partition: only its rows are gone, which the metadata cannot tell
    // from the others' without a look at the table.
    int64 tombstoned = 0;
    return TombstoneVanished(entry->table, &tombstoned);
  }
  Datum values[2] = {Int32GetDatum(entry->table.tid), Int64GetDatum(static_cast<int64>(NextStamp()))};
  uint64 rows = 0;
  {
    AsExtensionOwner owner;
    rows = Execute(TruncatePlan(entry->table.merge == core::MergeMode::kColumn), values, "  ", false);
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
  VersionWriter writer(*entry, false);
  for (const auto& [key, scope] : written_here)
    writer.Add(key, true, scope);
  Notify(*entry, "");
  return Status::Ok();
}

}  // namespace

core::Hlc NextStamp() {
  Backend& state = backend();
  if (!state.clock_loaded) {
    PinnedSearchPath pinned;
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

core::Status WritableServer(const char* what) {
  bool in_recovery = false;
  PgGuard([&] { in_recovery = RecoveryInProgress(); });
  if (!in_recovery) return core::Status::Ok();
  return core::Status(core::Code::kReadOnly, std::string("this server is a hot standby, which is read-only; ") + what);
}

}  // namespace syncline::pg

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void) {
  CacheRegisterRelcacheCallback(syncline::pg::InvalidateRelation, (Datum)0);
  CacheRegisterSyscacheCallback(EXTENSIONOID, syncline::pg::InvalidateExtensionOwner, (Datum)0);
  RegisterXactCallback(syncline::pg::ResetAtTransactionEnd, nullptr);
  RegisterSubXactCallback(syncline::pg::ResetOnSubAbort, nullptr);
  RegisterXactCallback(syncline::pg::boundary::ForgetOnAbort, nullptr);
  RegisterSubXactCallback(syncline::pg::boundary::ForgetOnSubAbort, nullptr);
}
}

SYNCLINE_PG_FUNCTION(syncline_capture, "syncline.capture", syncline::pg::CaptureStatement)
SYNCLINE_PG_FUNCTION(syncline_capture_truncate, "syncline.capture_truncate", syncline::pg::CaptureTruncate)
