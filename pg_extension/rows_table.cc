// syncline.rows through the access methods (rows_table.h). Everything that
// calls PostgreSQL runs in plain functions below one PgGuard each: they hold
// no C++ objects, so an error's longjmp skips no destructor.
#include "pg_extension/rows_table.h"

#include <exception>

#include "core/merge.h"
#include "pg_extension/pg_boundary.h"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_collation.h"
#include "commands/sequence.h"
#include "optimizer/optimizer.h"
#include "storage/lmgr.h"
#include "utils/fmgroids.h"
#include "utils/xid8.h"
}

namespace syncline::pg {

constexpr int kMaxIndexes = 8;

// What a statement needs to know of syncline.rows, built once per backend
// (again after a relcache reset of the table) in a context of its own:
// column numbers, looked up by name (the install script is the one place
// that defines the table), and per index its IndexInfo and compiled
// predicate, which the executor would otherwise rebuild for every statement.
struct RowsRelations {
  MemoryContext context;  // holds this struct too
  uint64 generation;      // the count of resets it was built after
  Oid rows, sequence;
  AttrNumber tid, pk, clock, hlc, node, deleted, scope, xid, seq;
  AttrNumber cols;  // 0 under extension version 0.1, which has no column stamps
  int natts;
  int nindexes;
  int key_index;  // position of the primary key (tid, pk) among the indexes
  Oid index_oids[kMaxIndexes];
  IndexInfo* infos[kMaxIndexes];
  ExprState* predicates[kMaxIndexes];  // null: not partial
  ExprContext* econtext;               // evaluates the predicates
};

// One statement's open relations: plain pointers, set up and torn down by
// the guarded functions.
struct RowsOpen {
  MemoryContext memory;  // the statement's: slots, scan
  Relation rel;
  Relation indexes[kMaxIndexes];
  TupleTableSlot* found;  // the row's current version
  TupleTableSlot* fresh;  // the version being written
  IndexScanDesc scan;
  SnapshotData* dirty;
  ScanKeyData keys[2];
};

namespace {

using Open = RowsOpen;

// The current cache. Plain pointers and scalars: nothing runs at load or
// unload.
RowsRelations* relations = nullptr;
uint64 resets = 0;    // relcache resets of syncline.rows (or of every relation) so far
int open_tables = 0;  // RowsTable objects alive: a cache in use is not freed

const char* const kMissing = "syncline.rows is not as the install script made it";

AttrNumber Column(TupleDesc desc, const char* name, bool required = true) {
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute attribute = TupleDescAttr(desc, i);
    if (!attribute->attisdropped && strcmp(NameStr(attribute->attname), name) == 0) return attribute->attnum;
  }
  if (required) elog(ERROR, "%s: no column \"%s\"", kMissing, name);
  return 0;
}

// Fills the cache from the open, locked table.
void Describe(Relation rel, RowsRelations* out) {
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
  out->cols = Column(desc, "cols", false);
  const Oid key_index = RelationGetPrimaryKeyIndex(rel);
  List* indexes = RelationGetIndexList(rel);
  if (list_length(indexes) > kMaxIndexes) elog(ERROR, "%s: more than %d indexes", kMissing, kMaxIndexes);
  out->nindexes = 0;
  out->key_index = -1;
  out->econtext = CreateStandaloneExprContext();
  ListCell* cell;
  foreach (cell, indexes) {
    const int i = out->nindexes++;
    out->index_oids[i] = lfirst_oid(cell);
    Relation index = index_open(out->index_oids[i], AccessShareLock);
    IndexInfo* info = BuildIndexInfo(index);
    const bool key_shaped = IndexRelationGetNumberOfKeyAttributes(index) == 2 &&
                            index->rd_index->indkey.values[0] == out->tid &&
                            index->rd_index->indkey.values[1] == out->pk;
    index_close(index, NoLock);
    if (out->index_oids[i] == key_index) {
      if (!key_shaped) elog(ERROR, "%s: its primary key is not (tid, pk)", kMissing);
      out->key_index = i;
    }
    if (info->ii_Expressions != NIL || info->ii_ExclusionOps != nullptr)
      elog(ERROR, "%s: an index on an expression or an exclusion constraint", kMissing);
    out->infos[i] = info;
    out->predicates[i] =
        info->ii_Predicate == NIL
            ? nullptr
            : ExecInitQual(reinterpret_cast<List*>(expression_planner(reinterpret_cast<Expr*>(info->ii_Predicate))),
                           nullptr);
  }
  if (out->key_index < 0) elog(ERROR, "%s: no primary key", kMissing);
}

// Opens and locks syncline.rows, and (re)builds the cache when a relcache
// reset made it stale. The table is locked before the cache is trusted, so
// DDL another transaction committed is seen. A cache is built in the
// caller's memory and kept only once complete: an error leaves the old one,
// stale, in place.
Relation OpenRowsRelation() {
  for (;;) {
    const bool current = relations != nullptr && relations->generation == resets;
    Oid rows = current ? relations->rows : InvalidOid;
    Oid sequence = current ? relations->sequence : InvalidOid;
    if (!current) {
      Oid schema = get_namespace_oid("syncline", false);
      rows = get_relname_relid("rows", schema);
      sequence = get_relname_relid("rows_seq", schema);
      if (!OidIsValid(rows) || !OidIsValid(sequence)) elog(ERROR, "%s: no table or sequence", kMissing);
    }
    Relation rel = table_open(rows, RowExclusiveLock);
    if (current && relations->generation == resets) return rel;
    const uint64 generation = resets;  // a reset during Describe makes the new cache stale at once
    MemoryContext context = AllocSetContextCreate(CurrentMemoryContext, "syncline rows cache", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(context);
    RowsRelations* built = static_cast<RowsRelations*>(palloc0(sizeof(RowsRelations)));
    built->context = context;
    built->rows = rows;
    built->sequence = sequence;
    Describe(rel, built);
    built->generation = generation;
    MemoryContextSwitchTo(old);
    MemoryContextSetParent(context, TopMemoryContext);
    // A cache a capture in this backend still uses stays (a few kilobytes,
    // once per DDL on syncline.rows during a capture).
    if (relations != nullptr && open_tables == 0) MemoryContextDelete(relations->context);
    relations = built;
    if (relations->generation == resets) return rel;
    table_close(rel, NoLock);
  }
}

void OpenRows(const RowsRelations* r, Relation rel, Open* open) {
  open->memory = AllocSetContextCreate(CurrentMemoryContext, "syncline rows statement", ALLOCSET_SMALL_SIZES);
  MemoryContext old = MemoryContextSwitchTo(open->memory);
  open->rel = rel;
  // The primary key now; a version index when a version first goes into it
  // (a table's rows go into either the scoped or the unscoped ones).
  open->indexes[r->key_index] = index_open(r->index_oids[r->key_index], RowExclusiveLock);
  open->found = table_slot_create(rel, nullptr);
  open->fresh = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
  open->dirty = static_cast<SnapshotData*>(palloc0(sizeof(SnapshotData)));
  InitDirtySnapshot(*open->dirty);
  Relation key_index = open->indexes[r->key_index];
  open->scan = index_beginscan(rel, key_index, open->dirty, 2, 0);
  ScanKeyInit(&open->keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, (Datum)0);
  ScanKeyInit(&open->keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, (Datum)0);
  open->keys[1].sk_collation = key_index->rd_indcollation[1];
  MemoryContextSwitchTo(old);
}

void CloseRows(const RowsRelations* r, Open* open) {
  index_endscan(open->scan);
  ExecDropSingleTupleTableSlot(open->found);
  ExecDropSingleTupleTableSlot(open->fresh);
  // The locks are held to the end of the transaction, as any writer's.
  for (int i = 0; i < r->nindexes; ++i)
    if (open->indexes[i] != nullptr) index_close(open->indexes[i], NoLock);
  table_close(open->rel, NoLock);
  MemoryContextDelete(open->memory);
}

// The index entries of the version just written: what ExecInsertIndexTuples
// does, without an executor state. An update never changes the key, so its
// primary key entry is flagged unchanged, which lets btree remove older
// duplicates bottom-up before it splits a page.
void InsertIndexEntries(const RowsRelations* r, Open* open, bool update, bool key_done) {
  Datum values[INDEX_MAX_KEYS];
  bool isnull[INDEX_MAX_KEYS];
  ExprContext* econtext = r->econtext;
  econtext->ecxt_scantuple = open->fresh;
  for (int i = 0; i < r->nindexes; ++i) {
    if (key_done && i == r->key_index) continue;
    if (r->predicates[i] != nullptr && !ExecQual(r->predicates[i], econtext)) continue;
    IndexInfo* info = r->infos[i];
    if (open->indexes[i] == nullptr) open->indexes[i] = index_open(r->index_oids[i], RowExclusiveLock);
    FormIndexDatum(info, open->fresh, nullptr, values, isnull);
    index_insert(open->indexes[i], values, isnull, &open->fresh->tts_tid, open->rel,
                 info->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, update && i == r->key_index, info);
  }
  econtext->ecxt_scantuple = nullptr;
  ResetExprContext(econtext);
}

// The primary key entry of a version written without a look for an older
// one: false when one may exist (the entry is in; the caller takes the
// version back). btree does this check as it inserts, without waiting.
bool InsertKeyEntryIfNew(const RowsRelations* r, Open* open) {
  Datum values[INDEX_MAX_KEYS];
  bool isnull[INDEX_MAX_KEYS];
  IndexInfo* info = r->infos[r->key_index];
  FormIndexDatum(info, open->fresh, nullptr, values, isnull);
  return index_insert(open->indexes[r->key_index], values, isnull, &open->fresh->tts_tid, open->rel,
                      UNIQUE_CHECK_PARTIAL, false, info);
}

// The current version of (tid, pk) into open->found, after waiting out a
// transaction still writing it (as logical replication's apply does). The
// scan runs in the statement's memory: btree keeps what it allocates (the
// killed-items list) from one rescan to the next.
bool FindVersion(Open* open, Datum tid, Datum pk) {
  open->keys[0].sk_argument = tid;
  open->keys[1].sk_argument = pk;
  MemoryContext old = MemoryContextSwitchTo(open->memory);
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

struct Version {
  int32 tid;
  const char* key;
  int key_length;
  int64 stamp;
  bool deleted;
  const char* scope;  // null: none
  int scope_length;
  bool hold_back;
  bool probably_new;  // an inserted row: its key usually has no version yet
  // A column-merge row's update (RestampColumns): over a live version, the
  // write first stops with `needs_cols` and the version found; the caller
  // computes `cols` for it and writes again with `cols_for_found`.
  bool restamp;
  bool cols_for_found;  // in: `cols` are for the version in open->found
  const char* cols;     // in: null writes NULL
  int cols_length;
  bool needs_cols;  // out
  int64 found_hlc;  // out, with needs_cols: the version found
  int32 found_node;
  const char* found_cols;  // null: NULL
  int found_cols_length;
  bool written;  // out
  int64 hlc;     // out: the stamp written (with needs_cols: the stamp it will write)
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
    const bool exists = v->cols_for_found || (!v->probably_new && FindVersion(open, tid, pk));
    const char* cols = v->cols_for_found ? v->cols : nullptr;
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
      clock = core::NextClock(DatumGetInt64(found->tts_values[r->clock - 1]));
      const int64 above =
          static_cast<int64>(core::NextHlc(static_cast<core::Hlc>(DatumGetInt64(found->tts_values[r->hlc - 1]))));
      if (above > hlc) hlc = above;
      if (v->restamp && !v->cols_for_found && !was_deleted && !v->deleted) {
        v->needs_cols = true;
        v->hlc = hlc;
        v->found_hlc = DatumGetInt64(found->tts_values[r->hlc - 1]);
        v->found_node = DatumGetInt32(found->tts_values[r->node - 1]);
        v->found_cols = nullptr;
        v->found_cols_length = 0;
        if (r->cols != 0 && !found->tts_isnull[r->cols - 1]) {
          struct varlena* stored = PG_DETOAST_DATUM_PACKED(found->tts_values[r->cols - 1]);
          v->found_cols = VARDATA_ANY(stored);
          v->found_cols_length = static_cast<int>(VARSIZE_ANY_EXHDR(stored));
        }
        return;
      }
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
    if (cols != nullptr && r->cols != 0) {
      bytea* bytes = static_cast<bytea*>(palloc(v->cols_length + VARHDRSZ));
      SET_VARSIZE(bytes, v->cols_length + VARHDRSZ);
      memcpy(VARDATA(bytes), cols, v->cols_length);
      values[r->cols - 1] = PointerGetDatum(bytes);
      nulls[r->cols - 1] = false;
    }
    ExecStoreVirtualTuple(fresh);
    const CommandId command = GetCurrentCommandId(true);
    if (exists) {
      TM_FailureData failure;
      LockTupleMode mode;
      bool update_indexes = false;
      TM_Result result = table_tuple_update(open->rel, &open->found->tts_tid, fresh, command, InvalidSnapshot,
                                            InvalidSnapshot, true, &failure, &mode, &update_indexes);
      if (result == TM_Updated || result == TM_Deleted) {  // another writer got there first: look again
        v->cols_for_found = false;
        continue;
      }
      if (result != TM_Ok) elog(ERROR, "syncline.rows: unexpected result %d updating a row's version", result);
      if (update_indexes) InsertIndexEntries(r, open, true, false);
    } else if (v->probably_new) {
      // Written first, looked up after: the key's own index entry says
      // whether another version may exist, which saves the common case a
      // search of the primary key.
      table_tuple_insert(open->rel, fresh, command, 0, nullptr);
      if (!InsertKeyEntryIfNew(r, open)) {
        // One may (a tombstone, or a writer still at work): this version is
        // taken back, and written over that one the usual way.
        CommandCounterIncrement();
        simple_table_tuple_delete(open->rel, &fresh->tts_tid, InvalidSnapshot);
        v->probably_new = false;
        continue;
      }
      InsertIndexEntries(r, open, false, true);
    } else {
      table_tuple_insert(open->rel, fresh, command, 0, nullptr);
      InsertIndexEntries(r, open, false, false);
    }
    v->written = true;
    v->hlc = hlc;
    return;
  }
}

}  // namespace

void InvalidateRowsTable(Oid relid) {
  if (relations != nullptr && (relid == InvalidOid || relid == relations->rows)) ++resets;
}

RowsTable::RowsTable() {
  PgGuard([&] {
    Relation rel = OpenRowsRelation();
    RowsOpen* open = static_cast<RowsOpen*>(palloc0(sizeof(RowsOpen)));
    OpenRows(relations, rel, open);
    open_ = open;
    row_memory_ = AllocSetContextCreate(CurrentMemoryContext, "syncline rows", ALLOCSET_SMALL_SIZES);
  });
  relations_ = relations;
  ++open_tables;
}

RowsTable::~RowsTable() {
  --open_tables;
  // While an error unwinds, the transaction is failing: its abort releases
  // what is open, and nothing here may run with a lock a failed call left.
  if (std::uncaught_exceptions() > 0) return;
  const RowsRelations* r = relations_;
  RowsOpen* open = open_;
  MemoryContext memory = row_memory_;
  PgGuardInDestructor([&] {
    CloseRows(r, open);
    MemoryContextDelete(memory);
  });
}

std::optional<core::Hlc> RowsTable::Write(int32 tid, const std::string& key, core::Hlc stamp, bool deleted,
                                          const std::string& scope, bool hold_back, bool probably_new,
                                          const RestampColumns* restamp) {
  // Writing a key again in one statement: the update must see the version
  // this object wrote, which a new command id makes visible. The first
  // write gets one too, as SPI gives each statement.
  const bool first = written_.empty();
  if (!written_.insert(std::hash<std::string>()(key)).second || first) PgGuard([] { CommandCounterIncrement(); });
  Version v{};
  v.tid = tid;
  v.key = key.data();
  v.key_length = static_cast<int>(key.size());
  v.stamp = static_cast<int64>(stamp);
  v.deleted = deleted;
  v.scope = scope.empty() ? nullptr : scope.data();
  v.scope_length = static_cast<int>(scope.size());
  v.hold_back = hold_back;
  v.probably_new = probably_new;
  v.restamp = restamp != nullptr;
  const RowsRelations* r = relations_;
  RowsOpen* open = open_;
  MemoryContext memory = row_memory_;
  std::string cols;
  for (;;) {
    v.needs_cols = false;
    PgGuard([&] {
      MemoryContext old = MemoryContextSwitchTo(memory);
      WriteVersion(r, open, &v);
      MemoryContextSwitchTo(old);
      if (!v.needs_cols) MemoryContextReset(memory);  // else it holds found_cols
    });
    if (!v.needs_cols) break;
    const StoredStamps stored{static_cast<core::Hlc>(v.found_hlc), v.found_node,
                              std::string_view(v.found_cols, static_cast<std::size_t>(v.found_cols_length))};
    (*restamp)(stored, static_cast<core::Hlc>(v.hlc), &cols);
    v.cols = cols.empty() ? nullptr : cols.data();
    v.cols_length = static_cast<int>(cols.size());
    v.cols_for_found = true;
  }
  if (!v.written) return std::nullopt;
  return static_cast<core::Hlc>(v.hlc);
}

}  // namespace syncline::pg
