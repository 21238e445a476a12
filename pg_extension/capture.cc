// The capture triggers (docs/postgres.md, "Capture"): short, C++, with a
// plan prepared once per backend and a per-table cache that a relcache
// callback marks stale (after PgQ).
#include <optional>
#include <stdexcept>
#include <unordered_map>

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
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) backend().applying = 0;
}

void ResetOnSubAbort(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  if (event == SUBXACT_EVENT_ABORT_SUB) backend().applying = 0;
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
  // and the row's previous stamp, this node, the writing transaction.
  upsert_plan =
      Prepare("INSERT INTO syncline.rows AS r (tid, pk, clock, hlc, node, deleted, scope, xid, seq) "
              "VALUES ($1, $2, 1, $3, 0, $4, $5, pg_catalog.pg_current_xact_id(), "
              "pg_catalog.nextval('syncline.rows_seq'::pg_catalog.regclass)) "
              "ON CONFLICT (tid, pk) DO UPDATE SET clock = r.clock OPERATOR(pg_catalog.+) 1, "
              "hlc = pg_catalog.int8larger($3, r.hlc OPERATOR(pg_catalog.+) 1), node = 0, deleted = $4, "
              "scope = CASE WHEN $4 THEN r.scope ELSE EXCLUDED.scope END, xid = EXCLUDED.xid, seq = EXCLUDED.seq "
              "RETURNING hlc",
              {INT4OID, TEXTOID, INT8OID, BOOLOID, TEXTOID}, /*keep=*/true);
  truncate_plan = Prepare(
      "UPDATE syncline.rows AS r SET clock = r.clock OPERATOR(pg_catalog.+) 1, "
      "hlc = pg_catalog.int8larger($2, r.hlc OPERATOR(pg_catalog.+) 1), node = 0, deleted = true, "
      "xid = pg_catalog.pg_current_xact_id(), seq = pg_catalog.nextval('syncline.rows_seq'::pg_catalog.regclass) "
      "WHERE r.tid OPERATOR(pg_catalog.=) $1 AND NOT r.deleted RETURNING hlc",
      {INT4OID, INT8OID}, /*keep=*/true);
}

void Record(const CaptureEntry& entry, const std::string& key, bool deleted, const std::string& scope) {
  core::Hlc candidate = NextStamp();
  Datum values[5];
  char nulls[6] = "     ";
  const char* key_text = key.c_str();
  const char* scope_text = scope.c_str();
  PgGuard([&] {
    values[1] = CStringGetTextDatum(key_text);
    values[4] = scope.empty() ? (Datum)0 : CStringGetTextDatum(scope_text);
  });
  values[0] = Int32GetDatum(entry.table.tid);
  values[2] = Int64GetDatum(static_cast<int64>(candidate));
  values[3] = BoolGetDatum(deleted);
  if (scope.empty()) nulls[4] = 'n';
  {
    AsExtensionOwner owner;
    Execute(upsert_plan, values, nulls, false);
  }
  ReceiveStamp(static_cast<core::Hlc>(ResultInt64(0, 1)));
}

void Notify(const CaptureEntry& entry, const std::string& scope) {
  if (!entry.table.notify) return;
  std::string payload = entry.notify_payload;
  if (!scope.empty()) payload = payload.substr(0, payload.size() - 1) + ",\"scope\":" + scope + "}";
  const char* text = payload.c_str();
  // NOTIFY drops duplicate payloads within a transaction.
  PgGuard([&] { Async_Notify("syncline", text); });
}

Status CaptureRow(FunctionCallInfo fcinfo, Datum* result) {
  *result = PointerGetDatum(nullptr);
  if (!CALLED_AS_TRIGGER(fcinfo)) return Status(Code::kInternal, "not called as a trigger");
  auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (!TRIGGER_FIRED_AFTER(data->tg_event) || !TRIGGER_FIRED_FOR_ROW(data->tg_event))
    return Status(Code::kInternal, "must be an AFTER ... FOR EACH ROW trigger");
  if (backend().applying > 0) return Status::Ok();  // merged changes keep their origin's stamps

  SpiSession spi;
  CaptureEntry* entry = nullptr;
  Status status = Entry(data->tg_relation, &entry);
  if (!status.ok()) return status;
  PreparePlans();
  const TableInfo& table = entry->table;
  TupleDesc desc = RelationGetDescr(data->tg_relation);
  // Keys are compared as text: a date or time key must have one text form
  // whatever DateStyle and TimeZone this session uses.
  std::optional<CanonicalOutput> pinned;
  if (entry->pin_output) pinned.emplace();

  std::string key, old_key, scope, old_scope;
  if (TRIGGER_FIRED_BY_INSERT(data->tg_event)) {
    status = RowKey(table, data->tg_trigtuple, desc, &key);
    if (!status.ok()) return status;
    scope = RowScope(table, data->tg_trigtuple, desc);
    Record(*entry, key, false, scope);
  } else if (TRIGGER_FIRED_BY_DELETE(data->tg_event)) {
    status = RowKey(table, data->tg_trigtuple, desc, &key);
    if (!status.ok()) return status;
    scope = RowScope(table, data->tg_trigtuple, desc);
    Record(*entry, key, true, scope);
  } else if (TRIGGER_FIRED_BY_UPDATE(data->tg_event)) {
    status = RowKey(table, data->tg_trigtuple, desc, &old_key);
    if (status.ok()) status = RowKey(table, data->tg_newtuple, desc, &key);
    if (!status.ok()) return status;
    old_scope = RowScope(table, data->tg_trigtuple, desc);
    scope = RowScope(table, data->tg_newtuple, desc);
    // A row's scope says who receives its changes and its tombstone; moving
    // it to another scope would leave a stale copy with the old one.
    if (old_scope != scope)
      return Status(Code::kInvalidInput, "table " + QualifiedName(table) + ": the scope column \"" +
                                             table.columns[table.scope].name +
                                             "\" of a row cannot change (delete the row and insert it anew)");
    // An update that changes the key is a delete of the old key and an
    // upsert of the new one.
    if (old_key != key) Record(*entry, old_key, true, old_scope);
    Record(*entry, key, false, scope);
  } else {
    return Status(Code::kInternal, "unexpected trigger event");
  }
  Notify(*entry, scope);
  return Status::Ok();
}

// TRUNCATE fires no row triggers: every live row of the table gets a
// tombstone, so the truncation syncs like the DELETE it amounts to.
Status CaptureTruncate(FunctionCallInfo fcinfo, Datum* result) {
  *result = PointerGetDatum(nullptr);
  if (!CALLED_AS_TRIGGER(fcinfo)) return Status(Code::kInternal, "not called as a trigger");
  auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (!TRIGGER_FIRED_BY_TRUNCATE(data->tg_event)) return Status(Code::kInternal, "must be an ON TRUNCATE trigger");
  if (backend().applying > 0) return Status::Ok();
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
  RegisterXactCallback(syncline::pg::ResetOnAbort, nullptr);
  RegisterSubXactCallback(syncline::pg::ResetOnSubAbort, nullptr);
}
}

SYNCLINE_PG_FUNCTION(syncline_capture, "syncline.capture", syncline::pg::CaptureRow)
SYNCLINE_PG_FUNCTION(syncline_capture_truncate, "syncline.capture_truncate", syncline::pg::CaptureTruncate)
