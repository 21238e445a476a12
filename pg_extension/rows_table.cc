// syncline.rows through the access methods (rows_table.h). Everything that
// calls PostgreSQL runs in plain functions below one PgGuard each: they hold
// no C++ objects, so an error's longjmp skips no destructor.
#include "pg_extension/rows_table.h"

#include <exception>
#include <stdexcept>

#include "pg_extension/pg_boundary.h"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_collation.h"
#include "commands/sequence.h"
#include "storage/lmgr.h"
#include "utils/fmgroids.h"
#include "utils/xid8.h"
}

namespace syncline::pg {

// Column numbers of syncline.rows, looked up by name: the install script
// is the one place that defines the table.
struct RowsRelations {
  bool valid = false;
  Oid rows = InvalidOid, key_index = InvalidOid, sequence = InvalidOid;
  AttrNumber tid = 0, pk = 0, clock = 0, hlc = 0, node = 0, deleted = 0, scope = 0, xid = 0, seq = 0;
  int natts = 0;
};

namespace {

RowsRelations* relations = nullptr;  // in TopMemoryContext: nothing runs at load or unload

const char* const kMissing = "syncline.rows is not as the install script made it";

AttrNumber Column(TupleDesc desc, const char* name) {
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute attribute = TupleDescAttr(desc, i);
    if (!attribute->attisdropped && strcmp(NameStr(attribute->attname), name) == 0) return attribute->attnum;
  }
  elog(ERROR, "%s: no column \"%s\"", kMissing, name);
  return 0;
}

void Resolve(RowsRelations* out) {
  Oid schema = get_namespace_oid("syncline", false);
  out->rows = get_relname_relid("rows", schema);
  out->sequence = get_relname_relid("rows_seq", schema);
  if (!OidIsValid(out->rows) || !OidIsValid(out->sequence)) elog(ERROR, "%s: no table or sequence", kMissing);
  Relation rel = table_open(out->rows, AccessShareLock);
  TupleDesc desc = RelationGetDescr(rel);
  out->natts = desc->natts;
  out->tid = Column(desc, "tid");
  out->pk = Column(desc, "pk");
  out->clock = Column(desc, "clock");
  out->hlc = Column(desc, "hlc");
  out->node = Column(desc, "node");
  out->deleted = Column(desc, "deleted");
  out->scope = Column(desc, "scope");
  out->xid = Column(desc, "xid");
  out->seq = Column(desc, "seq");
  out->key_index = RelationGetPrimaryKeyIndex(rel);
  table_close(rel, NoLock);
  if (!OidIsValid(out->key_index)) elog(ERROR, "%s: no primary key", kMissing);
  Relation index = index_open(out->key_index, AccessShareLock);
  const bool shaped = IndexRelationGetNumberOfKeyAttributes(index) == 2 &&
                      index->rd_index->indkey.values[0] == out->tid && index->rd_index->indkey.values[1] == out->pk;
  index_close(index, NoLock);
  if (!shaped) elog(ERROR, "%s: its primary key is not (tid, pk)", kMissing);
  out->valid = true;
}

}  // namespace

// One statement's open relations: plain pointers, set up and torn down by
// the guarded functions.
struct RowsOpen {
  Relation rel;
  Relation key_index;
  EState* estate;
  ResultRelInfo* info;
  TupleTableSlot* found;  // the row's current version
  TupleTableSlot* fresh;  // the version being written
  IndexScanDesc scan;
  SnapshotData* dirty;
  ScanKeyData keys[2];
};

namespace {
using Open = RowsOpen;

void OpenRows(const RowsRelations* r, Open* open) {
  open->rel = table_open(r->rows, RowExclusiveLock);
  open->estate = CreateExecutorState();
  MemoryContext old = MemoryContextSwitchTo(open->estate->es_query_cxt);
  open->info = makeNode(ResultRelInfo);
  // Range table index 0: no range table, so ExecInsertIndexTuples asks for
  // no updated-columns set.
  InitResultRelInfo(open->info, open->rel, 0, nullptr, 0);
  ExecOpenIndices(open->info, false);
  open->key_index = nullptr;
  for (int i = 0; i < open->info->ri_NumIndices; ++i)
    if (RelationGetRelid(open->info->ri_IndexRelationDescs[i]) == r->key_index)
      open->key_index = open->info->ri_IndexRelationDescs[i];
  if (open->key_index == nullptr) elog(ERROR, "%s: its primary key is not open", kMissing);
  open->found = table_slot_create(open->rel, nullptr);
  open->fresh = MakeSingleTupleTableSlot(RelationGetDescr(open->rel), &TTSOpsVirtual);
  open->dirty = static_cast<SnapshotData*>(palloc0(sizeof(SnapshotData)));
  InitDirtySnapshot(*open->dirty);
  open->scan = index_beginscan(open->rel, open->key_index, open->dirty, 2, 0);
  ScanKeyInit(&open->keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, (Datum)0);
  ScanKeyInit(&open->keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, (Datum)0);
  open->keys[1].sk_collation = open->key_index->rd_indcollation[1];
  MemoryContextSwitchTo(old);
}

void CloseRows(Open* open) {
  index_endscan(open->scan);
  ExecDropSingleTupleTableSlot(open->found);
  ExecDropSingleTupleTableSlot(open->fresh);
  ExecCloseIndices(open->info);
  FreeExecutorState(open->estate);
  table_close(open->rel, NoLock);  // the lock is held to the end of the transaction
}

// The current version of (tid, pk) into open->found, after waiting out a
// transaction still writing it (as logical replication's apply does).
// The scan runs in the statement's memory: btree keeps what it allocates
// (the killed-items list) from one rescan to the next.
bool FindVersion(Open* open, Datum tid, Datum pk) {
  open->keys[0].sk_argument = tid;
  open->keys[1].sk_argument = pk;
  MemoryContext old = MemoryContextSwitchTo(open->estate->es_query_cxt);
  bool found = false;
  for (;;) {
    index_rescan(open->scan, open->keys, 2, nullptr, 0);
    found = index_getnext_slot(open->scan, ForwardScanDirection, open->found);
    if (!found) break;
    TransactionId writer = TransactionIdIsValid(open->dirty->xmin) ? open->dirty->xmin : open->dirty->xmax;
    if (!TransactionIdIsValid(writer)) break;
    XactLockTableWait(writer, open->rel, &open->found->tts_tid, XLTW_None);
  }
  MemoryContextSwitchTo(old);
  return found;
}

int64 NextInt8(int64 value) { return (value < PG_INT64_MAX - 1 ? value : PG_INT64_MAX - 1) + 1; }

struct Version {
  int32 tid;
  const char* key;
  int key_length;
  int64 stamp;
  bool deleted;
  const char* scope;  // null: none
  int scope_length;
  bool hold_back;
  bool written;  // out
  int64 hlc;     // out: the stamp written
};

void WriteVersion(const RowsRelations* r, Open* open, Version* v) {
  const Datum tid = Int32GetDatum(v->tid);
  const Datum pk = PointerGetDatum(cstring_to_text_with_len(v->key, v->key_length));
  const FullTransactionId me = GetTopFullTransactionId();
  TupleTableSlot* fresh = open->fresh;
  for (;;) {
    ExecClearTuple(fresh);
    Datum* values = fresh->tts_values;
    bool* nulls = fresh->tts_isnull;
    for (int i = 0; i < r->natts; ++i)
      nulls[i] = true;
    const bool exists = FindVersion(open, tid, pk);
    int64 clock = 1, hlc = v->stamp;
    nulls[r->scope - 1] = v->scope == nullptr;
    if (v->scope != nullptr)
      values[r->scope - 1] = PointerGetDatum(cstring_to_text_with_len(v->scope, v->scope_length));
    if (exists) {
      TupleTableSlot* found = open->found;
      slot_getallattrs(found);
      const bool was_deleted = DatumGetBool(found->tts_values[r->deleted - 1]);
      const FullTransactionId writer = DatumGetFullTransactionId(found->tts_values[r->xid - 1]);
      if (v->hold_back && FullTransactionIdEquals(writer, me) && was_deleted != v->deleted) {
        v->written = false;
        return;
      }
      clock = NextInt8(DatumGetInt64(found->tts_values[r->clock - 1]));
      const int64 above = NextInt8(DatumGetInt64(found->tts_values[r->hlc - 1]));
      if (above > hlc) hlc = above;
      if (v->deleted) {  // a tombstone keeps the row's scope
        nulls[r->scope - 1] = found->tts_isnull[r->scope - 1];
        if (!nulls[r->scope - 1])
          values[r->scope - 1] = PointerGetDatum(PG_DETOAST_DATUM_COPY(found->tts_values[r->scope - 1]));
      }
    }
    values[r->tid - 1] = tid;
    values[r->pk - 1] = pk;
    values[r->clock - 1] = Int64GetDatum(clock);
    values[r->hlc - 1] = Int64GetDatum(hlc);
    values[r->node - 1] = Int32GetDatum(0);
    values[r->deleted - 1] = BoolGetDatum(v->deleted);
    values[r->xid - 1] = FullTransactionIdGetDatum(me);
    values[r->seq - 1] = Int64GetDatum(nextval_internal(r->sequence, false));
    for (AttrNumber a : {r->tid, r->pk, r->clock, r->hlc, r->node, r->deleted, r->xid, r->seq})
      nulls[a - 1] = false;
    ExecStoreVirtualTuple(fresh);
    const CommandId command = GetCurrentCommandId(true);
    if (exists) {
      TM_FailureData failure;
      LockTupleMode mode;
      bool update_indexes = false;
      TM_Result result = table_tuple_update(open->rel, &open->found->tts_tid, fresh, command, InvalidSnapshot,
                                            InvalidSnapshot, true, &failure, &mode, &update_indexes);
      if (result == TM_Updated || result == TM_Deleted) continue;  // another writer got there first: look again
      if (result != TM_Ok) elog(ERROR, "syncline.rows: unexpected result %d updating a row's version", result);
      if (update_indexes) ExecInsertIndexTuples(open->info, fresh, open->estate, true, false, nullptr, NIL);
    } else {
      table_tuple_insert(open->rel, fresh, command, 0, nullptr);
      ExecInsertIndexTuples(open->info, fresh, open->estate, false, false, nullptr, NIL);
    }
    v->written = true;
    v->hlc = hlc;
    return;
  }
}

}  // namespace

void InvalidateRowsTable(Oid relid) {
  if (relations != nullptr && (relid == InvalidOid || relid == relations->rows)) relations->valid = false;
}

RowsTable::RowsTable() {
  PgGuard([&] {
    if (relations == nullptr)
      relations = static_cast<RowsRelations*>(MemoryContextAllocZero(TopMemoryContext, sizeof(RowsRelations)));
    if (!relations->valid) Resolve(relations);
    relations_ = relations;
    RowsOpen* open = static_cast<RowsOpen*>(palloc0(sizeof(RowsOpen)));
    OpenRows(relations_, open);
    open_ = open;
    row_memory_ = AllocSetContextCreate(CurrentMemoryContext, "syncline rows", ALLOCSET_SMALL_SIZES);
  });
}

RowsTable::~RowsTable() {
  // While an error unwinds, the transaction is failing: its abort releases
  // what is open, and nothing here may run with a lock a failed call left.
  if (open_ == nullptr || std::uncaught_exceptions() > 0) return;
  RowsOpen* open = open_;
  MemoryContext memory = row_memory_;
  PgGuardInDestructor([&] {
    CloseRows(open);
    MemoryContextDelete(memory);
  });
}

std::optional<core::Hlc> RowsTable::Write(int32 tid, const std::string& key, core::Hlc stamp, bool deleted,
                                          const std::string& scope, bool hold_back) {
  // Writing a key again in one statement: the update must see the version
  // this object wrote, which a new command id makes visible. The first
  // write gets one too, as SPI gives each statement.
  if (written_.empty() || !written_.insert(key).second) {
    written_.insert(key);
    PgGuard([] { CommandCounterIncrement(); });
  }
  Version v{tid,
            key.data(),
            static_cast<int>(key.size()),
            static_cast<int64>(stamp > static_cast<core::Hlc>(PG_INT64_MAX) ? PG_INT64_MAX : stamp),
            deleted,
            scope.empty() ? nullptr : scope.data(),
            static_cast<int>(scope.size()),
            hold_back,
            false,
            0};
  const RowsRelations* r = relations_;
  RowsOpen* open = open_;
  MemoryContext memory = row_memory_;
  PgGuard([&] {
    MemoryContext old = MemoryContextSwitchTo(memory);
    WriteVersion(r, open, &v);
    MemoryContextSwitchTo(old);
    MemoryContextReset(memory);
  });
  if (!v.written) return std::nullopt;
  return static_cast<core::Hlc>(v.hlc);
}

}  // namespace syncline::pg
