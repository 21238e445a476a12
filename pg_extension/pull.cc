// pull_since for PostgreSQL. The batch format is that of docs/protocol.md;
// gap-free pulls are described in docs/postgres.md.
#include <charconv>
#include <map>
#include <optional>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/node_id.h"
#include "pg_extension/apply_sets.h"
#include "pg_extension/authorize.h"
#include "pg_extension/backend.h"
#include "pg_extension/gc.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/positions.h"
#include "pg_extension/schema.h"
#include "pg_extension/spi.h"
#include "pg_extension/tables.h"

namespace syncline::pg {

using core::Code;
using core::Status;
using core::Value;

namespace {

// A snapshot registered for the life of the object.
class RegisteredSnapshot {
 public:
  RegisteredSnapshot() {
    PgGuard([&] { snapshot_ = RegisterSnapshot(GetTransactionSnapshot()); });
  }
  // UnregisterSnapshot may raise an error (a snapshot not registered), which
  // must not longjmp through an unwinding C++ frame.
  ~RegisteredSnapshot() {
    Snapshot snapshot = snapshot_;
    PgGuardInDestructor([snapshot] { UnregisterSnapshot(snapshot); });
  }
  Snapshot get() const { return snapshot_; }

 private:
  Snapshot snapshot_ = nullptr;
};

struct PullTable {
  TableInfo info;
  std::vector<std::string> column_names;  // for column stamps
  SPIPlanPtr select_row = nullptr;
  // Every requested row of a page in one statement: the keys go in as one
  // array per key column, each row comes back with its key's position.
  // Null when a key column's type has no array type.
  SPIPlanPtr select_rows = nullptr;
  std::vector<Oid> key_array_types;
};

Status LoadPullTable(int32 tid, PullTable* out) {
  bool found = false;
  Status status = FindTrackedById(tid, CurrentMemoryContext, &out->info, &found);
  if (!status.ok()) return status;
  if (!found) return Status(Code::kInternal, "metadata names table id " + std::to_string(tid) + ", not tracked");
  std::string columns, where;
  std::vector<Oid> types;
  for (std::size_t i = 0; i < out->info.columns.size(); ++i) {
    columns += (i > 0 ? ", " : "") + Quote(out->info.columns[i].name);
    out->column_names.push_back(out->info.columns[i].name);
  }
  for (std::size_t k = 0; k < out->info.pk.size(); ++k) {
    const ColumnType& column = out->info.columns[out->info.pk[k]];
    where += (k > 0 ? " AND " : "") + KeyEquals(column, "$" + std::to_string(k + 1));
    types.push_back(column.base);
  }
  out->select_row = Prepare("SELECT " + columns + " FROM " + QualifiedName(out->info) + " WHERE " + where, types);
  std::string unnest, key_names, match, row_columns;
  for (std::size_t k = 0; k < out->info.pk.size(); ++k) {
    Oid array_type = InvalidOid;
    Oid base = out->info.columns[out->info.pk[k]].base;
    PgGuard([&] { array_type = get_array_type(base); });
    if (array_type == InvalidOid) return Status::Ok();
    out->key_array_types.push_back(array_type);
    const std::string n = std::to_string(k + 1);
    unnest += (k > 0 ? ", " : "") + std::string("pg_catalog.unnest($") + n + ")";
    key_names += "k" + n + ", ";
    match += (k > 0 ? " AND " : "") + KeyEquals(out->info.columns[out->info.pk[k]], "k.k" + n);
  }
  for (std::size_t i = 0; i < out->info.columns.size(); ++i)
    row_columns += ", t." + Quote(out->info.columns[i].name);
  // One primary key lookup per key: OFFSET 0 keeps the planner from turning
  // the lateral subquery into a join that scans the whole table.
  out->select_rows = Prepare("SELECT k.position" + row_columns + " FROM ROWS FROM (" + unnest +
                                 ") WITH ORDINALITY AS k(" + key_names + "position) CROSS JOIN LATERAL (SELECT " +
                                 columns + " FROM " + QualifiedName(out->info) + " WHERE " + match + " OFFSET 0) t",
                             out->key_array_types);
  return Status::Ok();
}

// A row read by a pull: its columns as the changeset carries them.
void ReadRow(const TableInfo& table, HeapTuple tuple, TupleDesc desc, int first_attnum,
             std::vector<core::ColumnValue>* row) {
  row->clear();
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    bool isnull = false;
    Datum datum = (Datum)0;
    int attnum = first_attnum + static_cast<int>(c);
    PgGuard([&] { datum = SPI_getbinval(tuple, desc, attnum, &isnull); });
    row->push_back({table.columns[c].name, DatumToValue(table.columns[c], datum, isnull)});
  }
}

Status KeyDatums(const TableInfo& table, const std::vector<Value>& key, std::vector<Datum>* values,
                 std::string* nulls) {
  values->assign(key.size(), (Datum)0);
  nulls->assign(key.size(), ' ');
  for (std::size_t k = 0; k < key.size(); ++k) {
    bool isnull = false;
    Status status = ValueToDatum(table.columns[table.pk[k]], key[k], &(*values)[k], &isnull);
    if (!status.ok()) return status;
    if (isnull) (*nulls)[k] = 'n';
  }
  return Status::Ok();
}

// A row of a pull's page on its way into the batch.
struct PageEntry {
  PullTable* table = nullptr;  // null: left out of the batch
  std::vector<Value> key;
  // A live row the caller can read: its tuple in a result of SPI's (kept
  // until the session ends; values stored out of line stay there until read)
  // and where its columns start. Null: none.
  HeapTuple tuple = nullptr;
  TupleDesc desc = nullptr;
  int first_attnum = 1;
};

// Finds the live rows `indexes` of a page in their table as the caller:
// privileges and row-level security decide what it may see, and a row it may
// not see is left out of its pull.
Status ReadRows(PullTable& table, const std::vector<std::size_t>& indexes, Snapshot snapshot,
                std::vector<PageEntry>* entries) {
  const TableInfo& info = table.info;
  std::vector<Datum> key;
  std::string key_nulls;
  if (table.select_rows == nullptr) {
    for (std::size_t index : indexes) {
      PageEntry& entry = (*entries)[index];
      Status status = KeyDatums(info, entry.key, &key, &key_nulls);
      if (!status.ok()) return status;
      if (Execute(table.select_row, key.data(), key_nulls.data(), true, 1, snapshot) == 0) continue;
      entry.tuple = SPI_tuptable->vals[0];
      entry.desc = SPI_tuptable->tupdesc;
    }
    return Status::Ok();
  }
  const int count = static_cast<int>(indexes.size());
  std::vector<std::vector<Datum>> key_columns(info.pk.size(), std::vector<Datum>(indexes.size()));
  for (std::size_t j = 0; j < indexes.size(); ++j) {
    Status status = KeyDatums(info, (*entries)[indexes[j]].key, &key, &key_nulls);
    if (!status.ok()) return status;
    for (std::size_t k = 0; k < info.pk.size(); ++k)
      key_columns[k][j] = key[k];
  }
  std::vector<Datum> arrays(info.pk.size());
  for (std::size_t k = 0; k < info.pk.size(); ++k) {
    Oid type = info.columns[info.pk[k]].base;
    Datum* elements = key_columns[k].data();
    PgGuard([&] {
      int16 length = 0;
      bool by_value = false;
      char align = 0;
      get_typlenbyvalalign(type, &length, &by_value, &align);
      arrays[k] = PointerGetDatum(construct_array(elements, count, type, length, by_value, align));
    });
  }
  const std::string nulls(info.pk.size(), ' ');
  uint64 found = Execute(table.select_rows, arrays.data(), nulls.data(), true, 0, snapshot);
  for (uint64 r = 0; r < found; ++r) {
    std::size_t position = static_cast<std::size_t>(ResultInt64(r, 1));
    if (position < 1 || position > indexes.size()) return Status(Code::kInternal, "pull read a row it did not ask for");
    PageEntry& entry = (*entries)[indexes[position - 1]];
    entry.tuple = SPI_tuptable->vals[r];
    entry.desc = SPI_tuptable->tupdesc;
    entry.first_attnum = 2;
  }
  return Status::Ok();
}

Status PullSince(FunctionCallInfo fcinfo, Datum* result) {
  std::optional<std::string> cursor_text;
  if (!PG_ARGISNULL(0)) {
    char* cursor_cstring = nullptr;
    Datum arg = PG_GETARG_DATUM(0);
    PgGuard([&] { cursor_cstring = TextDatumGetCString(arg); });  // detoasting may raise an error
    cursor_text = cursor_cstring;
  }
  int64 limit = PG_ARGISNULL(1) ? 1000 : PG_GETARG_INT32(1);
  if (limit < 1) return Status(Code::kInvalidInput, "limit must be at least 1, got " + std::to_string(limit));
  core::PullOptions options;
  Status status = core::ParsePullOptions(PG_ARGISNULL(2) ? "" : JsonbText(PG_GETARG_DATUM(2)), &options);
  if (!status.ok()) return status;
  const std::string filter = core::FilterFingerprint(options);

  std::string batch;
  {
    SpiSession spi;
    std::string node_id = LocalNodeId();
    // One snapshot for the page, its horizon and every row read.
    RegisteredSnapshot snapshot;
    uint64 horizon = 0;  // the first xid this pull may not deliver yet
    {
      AsExtensionOwner owner;
      SPIPlanPtr plan = Prepare("SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text", {});
      Execute(plan, nullptr, nullptr, true, 0, snapshot.get());
      std::string xmin = ResultText(0, 1);
      std::from_chars(xmin.data(), xmin.data() + xmin.size(), horizon);
    }
    // Taken after the snapshot: everything the page delivers was written before it.
    const WalPoint wal = CurrentWalPoint();
    Position after;
    // Deletes below the collected horizon are gone: a reader whose cursor
    // was issued below a horizon older than this one resyncs.
    std::string collected;
    const bool has_collected = ReadGcHorizon(&collected, snapshot.get());
    if (cursor_text) {
      core::Cursor cursor;
      status = core::DecodeIssuedCursor(*cursor_text, node_id, filter, &cursor);
      if (!status.ok()) return status;
      if (!ParsePosition(cursor.position, &after)) return core::NeverIssued(cursor.position);
      status = CheckTimeline(after, wal);
      if (!status.ok()) return status;
      if (after.xid > horizon) return CursorAhead(after, horizon, wal);
      const std::string floor = after.issued_under.empty() ? VersionText(after) : after.issued_under;
      if (has_collected && core::ComparePositions(floor, collected) < 0)
        return core::CursorBeforeHorizon(cursor.position, collected);
    }

    // The server's schema version, and (from extension version 0.2 on) the
    // column stamps a format-2 reader gets.
    int64 schema_version = 0;
    const bool has_schema =
        (options.schema >= 0 || options.format >= 2) && ReadSchemaVersion(&schema_version, snapshot.get());
    const bool column_stamps = has_schema && options.format >= 2;
    std::string where = "(r.xid, r.seq) > ($1::pg_catalog.xid8, $2) AND r.xid < $3::pg_catalog.xid8";
    std::vector<Oid> types = {TEXTOID, INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID};
    std::vector<Datum> args = {TextDatum(std::to_string(after.xid)), Int64GetDatum(after.seq),
                               TextDatum(std::to_string(horizon)),   Int64GetDatum(limit + 1),
                               TextDatum(options.exclude_origin),    TextDatum(options.scope)};
    std::string nulls = "      ";
    if (options.local_only) where += " AND r.node = 0";
    if (!options.exclude_origin.empty()) {
      if (options.exclude_origin == node_id)
        where += " AND r.node <> 0";
      else
        where += " AND r.node IS DISTINCT FROM (SELECT ref FROM syncline.nodes WHERE node_id = $5)";
    }
    // The version order comes in two halves (sql/syncline--0.1.sql): a pull
    // of everything merges the versions of rows without and with a scope; a
    // scoped pull, the scope's versions and those of tables tracked without
    // a scope (shared by every scope). Each half is read in order through
    // its index and cut at the page size before the merge.
    std::pair<const char*, const char*> halves = {"r.scope IS NULL", "r.scope IS NOT NULL"};
    if (options.has_scope)
      halves = {"r.scope = $6",
                "r.scope IS NULL AND r.tid IN (SELECT tid FROM syncline.tables WHERE scope_column IS NULL)"};
    std::string from;
    for (const char* half : {halves.first, halves.second})
      from += std::string(from.empty() ? "(" : " UNION ALL ") + "(SELECT * FROM syncline.rows r WHERE " + half +
              " AND " + where + " ORDER BY r.xid, r.seq LIMIT $4)";
    from += ") r";
    uint64 rows = 0;
    {
      AsExtensionOwner owner;
      SPIPlanPtr plan =
          Prepare(std::string("SELECT r.tid, r.pk, r.clock, r.hlc, r.node, r.deleted, r.xid::text, r.seq, r.scope, ") +
                      (column_stamps ? "r.cols" : "NULL::pg_catalog.bytea") + " FROM " + from +
                      " ORDER BY r.xid, r.seq LIMIT $4",
                  types);
      rows = Execute(plan, args.data(), nulls.data(), true, 0, snapshot.get());
    }
    // The page's rows, read before the tables' queries replace SPI_tuptable.
    struct PageRow {
      int32 tid;
      int32 node_ref;
      std::string pk, node;
      int64 clock, hlc;
      bool deleted;
      Position position;
      std::optional<std::string> scope;
      std::string cols;
    };
    std::vector<PageRow> page;
    bool has_more = rows > static_cast<uint64>(limit);
    for (uint64 r = 0; r < rows && r < static_cast<uint64>(limit); ++r) {
      PageRow row;
      row.tid = static_cast<int32>(ResultInt64(r, 1));
      row.pk = ResultText(r, 2);
      row.clock = ResultInt64(r, 3);
      row.hlc = ResultInt64(r, 4);
      row.node_ref = static_cast<int32>(ResultInt64(r, 5));
      bool isnull = false;
      row.deleted = DatumGetBool(ResultDatum(r, 6, &isnull));
      std::string xid = ResultText(r, 7);
      std::from_chars(xid.data(), xid.data() + xid.size(), row.position.xid);
      row.position.seq = ResultInt64(r, 8);
      bool scope_null = false;
      ResultDatum(r, 9, &scope_null);
      if (!scope_null) row.scope = ResultText(r, 9);
      row.cols = ResultBytes(r, 10);
      page.push_back(std::move(row));
    }
    // Node ids, once per page for the refs it holds (a join would rescan
    // syncline.nodes for every row).
    {
      std::map<int32, std::string> node_ids{{0, node_id}};
      std::vector<Datum> refs;
      for (const PageRow& row : page)
        if (node_ids.emplace(row.node_ref, std::string()).second) refs.push_back(Int32GetDatum(row.node_ref));
      if (!refs.empty()) {
        AsExtensionOwner owner;
        SPIPlanPtr plan = Prepare("SELECT ref, node_id FROM syncline.nodes WHERE ref = ANY ($1)", {INT4ARRAYOID});
        Datum args[1] = {ScalarArray(refs, INT4OID)};
        uint64 found = Execute(plan, args, " ", true, 0, snapshot.get());
        for (uint64 r = 0; r < found; ++r)
          node_ids[static_cast<int32>(ResultInt64(r, 1))] = ResultText(r, 2);
      }
      for (PageRow& row : page)
        row.node = node_ids[row.node_ref];
    }

    // Each page row's table, key, and (live rows) the row as the caller may
    // read it; rows are found a table at a time.
    std::map<int32, PullTable> tables;
    Authorizer authorizer(snapshot.get());
    std::vector<PageEntry> entries(page.size());
    std::map<int32, std::vector<std::size_t>> live;
    for (std::size_t i = 0; i < page.size(); ++i) {
      const PageRow& row = page[i];
      auto it = tables.find(row.tid);
      if (it == tables.end()) {
        it = tables.emplace(row.tid, PullTable{}).first;
        status = LoadPullTable(row.tid, &it->second);
        if (!status.ok()) return status;
      }
      const TableInfo& table = it->second.info;
      // The table's authorisation hook decides, for rows and tombstones
      // alike, whether the caller may see this scope.
      if (!table.authorize.empty()) {
        bool allowed = false;
        status = authorizer.Allowed(table.authorize, row.scope, &allowed);
        if (!status.ok()) return status;
        if (!allowed) continue;
      }
      PageEntry& entry = entries[i];
      entry.table = &it->second;
      status = core::DecodeKey(row.pk, &entry.key);
      if (!status.ok()) return status;
      if (entry.key.size() != table.pk.size())
        return Status(Code::kInternal,
                      "table " + QualifiedName(table) + ": metadata key " + row.pk + " does not match the primary key");
      if (!row.deleted) live[row.tid].push_back(i);
    }
    for (const auto& [tid, indexes] : live) {
      status = ReadRows(tables[tid], indexes, snapshot.get(), &entries);
      if (!status.ok()) return status;
    }

    core::BatchWriter writer(node_id);
    core::Change change;
    // A row's values are converted as it is written, in memory freed before
    // the next row: a page of large rows holds one of them at a time, besides
    // the batch, which stops at max_bytes.
    RowMemory row_memory;
    std::size_t covered = page.size();  // the page rows the batch accounts for
    for (std::size_t i = 0; i < page.size(); ++i) {
      const PageRow& row = page[i];
      const PageEntry& entry = entries[i];
      // Left out: a scope the hook refuses, a row the caller may not read.
      if (entry.table == nullptr || (!row.deleted && entry.tuple == nullptr)) continue;
      const TableInfo& table = entry.table->info;
      RowMemory::Scope in_row = row_memory.Use();
      change.table = table.name;
      change.op = row.deleted ? core::Op::kDelete : core::Op::kUpsert;
      change.clock = row.clock;
      change.hlc = static_cast<core::Hlc>(row.hlc);
      change.node = row.node;
      change.row.clear();
      if (!row.deleted) ReadRow(table, entry.tuple, entry.desc, entry.first_attnum, &change.row);
      change.pk.clear();
      for (std::size_t k = 0; k < entry.key.size(); ++k)
        change.pk.push_back({table.columns[table.pk[k]].name,
                             // The key as stored (a float8 key 2.0), not its key form.
                             row.deleted ? entry.key[k] : change.row[table.pk[k]].value});
      change.column_stamps.clear();
      change.has_delete_stamp = false;
      if (column_stamps && table.merge == core::MergeMode::kColumn) {
        status = core::AddColumnStamps(entry.table->column_names, row.cols, &change);
        if (!status.ok())
          return status.WithPrefix("table " + QualifiedName(table) + ", row " + row.pk + ": column stamps: ");
      }
      // A page full in bytes ends before this change; the next one begins at it.
      bool added = false;
      status = writer.AddToPage(change, options.max_bytes, &added);
      if (!status.ok()) return status;
      if (!added) {
        covered = i;
        has_more = true;
        break;
      }
    }
    Position end = has_more ? page[covered - 1].position : Position{horizon, 0};
    if (!has_more && (end.xid < after.xid || (end.xid == after.xid && end.seq < after.seq))) end = after;
    end.timeline = wal.timeline;
    end.lsn = wal.lsn;
    end.issued_under.clear();
    if (has_collected && core::ComparePositions(VersionText(end), collected) < 0) end.issued_under = collected;
    // A reader that names its schema version learns the server's, and gets
    // the schema document while it is behind (docs/protocol.md, "Schema changes").
    if (options.schema >= 0 && has_schema)
      writer.SetSchema(schema_version,
                       schema_version > options.schema ? SchemaDocument(options.schema, snapshot.get()) : "");
    const std::string end_text = PositionText(end);
    batch = writer.Finish(core::EncodeCursor({node_id, filter, end_text}), has_more);
  }
  PgGuard([&] { *result = PointerGetDatum(cstring_to_text_with_len(batch.data(), static_cast<int>(batch.size()))); });
  return Status::Ok();
}

}  // namespace

}  // namespace syncline::pg

SYNCLINE_PG_FUNCTION(syncline_pull_since, "syncline.pull_since", syncline::pg::PullSince)
