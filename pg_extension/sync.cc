// pull_since and apply_push for PostgreSQL. The batch format and the
// conflict rule are those of docs/protocol.md; gap-free pulls are described
// in docs/postgres.md.
#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <set>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/merge.h"
#include "core/node_id.h"
#include "core/version_order.h"
#include "pg_extension/backend.h"
#include "pg_extension/pg_boundary.h"
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
  ~RegisteredSnapshot() { UnregisterSnapshot(snapshot_); }
  Snapshot get() const { return snapshot_; }

 private:
  Snapshot snapshot_ = nullptr;
};

// Positions of PostgreSQL cursors: "<xid>.<seq>", the last version delivered.
struct Position {
  uint64 xid = 0;
  int64 seq = 0;
};

bool ParsePosition(const std::string& text, Position* out) {
  std::size_t dot = text.find('.');
  if (dot == std::string::npos) return false;
  const char* begin = text.data();
  auto a = std::from_chars(begin, begin + dot, out->xid);
  auto b = std::from_chars(begin + dot + 1, begin + text.size(), out->seq);
  return a.ec == std::errc() && a.ptr == begin + dot && b.ec == std::errc() && b.ptr == begin + text.size();
}

std::string PositionText(const Position& position) {
  return std::to_string(position.xid) + "." + std::to_string(position.seq);
}

struct PullTable {
  TableInfo info;
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
  for (std::size_t i = 0; i < out->info.columns.size(); ++i)
    columns += (i > 0 ? ", " : "") + Quote(out->info.columns[i].name);
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

// Calls tables' authorisation hooks (docs/security.md) as the caller,
// once per function and scope value.
class Authorizer {
 public:
  explicit Authorizer(Snapshot snapshot = InvalidSnapshot) : snapshot_(snapshot) {}

  // A NULL scope (a tombstone of a row never seen here) is never authorised.
  Status Allowed(const std::string& function, const std::optional<std::string>& scope, bool* allowed) {
    *allowed = false;
    if (!scope) return Status::Ok();
    auto key = std::make_pair(function, *scope);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      *allowed = it->second;
      return Status::Ok();
    }
    // regprocedure text "app.member_of(jsonb)": call it by its name.
    std::string name = function.substr(0, function.rfind('('));
    SPIPlanPtr plan = Prepare("SELECT " + name + "($1::pg_catalog.jsonb) IS TRUE", {TEXTOID});
    Datum args[1] = {TextDatum(*scope)};
    Execute(plan, args, " ", true, 0, snapshot_);
    bool isnull = false;
    *allowed = DatumGetBool(ResultDatum(0, 1, &isnull)) && !isnull;
    cache_[key] = *allowed;
    return Status::Ok();
  }

 private:
  Snapshot snapshot_;
  std::map<std::pair<std::string, std::string>, bool> cache_;
};

// A row of a pull's page on its way into the batch.
struct PageEntry {
  PullTable* table = nullptr;  // null: left out of the batch
  std::vector<Value> key;
  bool visible = false;  // a live row the caller can read
  std::vector<core::ColumnValue> row;
};

// Reads the live rows `indexes` of a page from their table as the caller:
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
      ReadRow(info, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &entry.row);
      entry.visible = true;
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
    ReadRow(info, SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &entry.row);
    entry.visible = true;
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
    Position horizon;
    {
      AsExtensionOwner owner;
      SPIPlanPtr plan = Prepare("SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text", {});
      Execute(plan, nullptr, nullptr, true, 0, snapshot.get());
      std::string xmin = ResultText(0, 1);
      std::from_chars(xmin.data(), xmin.data() + xmin.size(), horizon.xid);
    }
    Position after;
    if (cursor_text) {
      core::Cursor cursor;
      status = core::DecodeIssuedCursor(*cursor_text, node_id, filter, &cursor);
      if (!status.ok()) return status;
      if (!ParsePosition(cursor.position, &after) || after.xid > horizon.xid) return core::NeverIssued(cursor.position);
    }

    std::string where = "(r.xid, r.seq) > ($1::pg_catalog.xid8, $2) AND r.xid < $3::pg_catalog.xid8";
    std::vector<Oid> types = {TEXTOID, INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID};
    std::vector<Datum> args = {TextDatum(std::to_string(after.xid)),   Int64GetDatum(after.seq),
                               TextDatum(std::to_string(horizon.xid)), Int64GetDatum(limit + 1),
                               TextDatum(options.exclude_origin),      TextDatum(options.scope)};
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
          Prepare("SELECT r.tid, r.pk, r.clock, r.hlc, r.node, r.deleted, n.node_id, r.xid::text, "
                  "r.seq, r.scope FROM " +
                      from + " LEFT JOIN syncline.nodes n ON n.ref = r.node ORDER BY r.xid, r.seq LIMIT $4",
                  types);
      rows = Execute(plan, args.data(), nulls.data(), true, 0, snapshot.get());
    }
    // The page's rows, read before the tables' queries replace SPI_tuptable.
    struct PageRow {
      int32 tid;
      std::string pk, node;
      int64 clock, hlc;
      bool deleted;
      Position position;
      std::optional<std::string> scope;
    };
    std::vector<PageRow> page;
    bool has_more = rows > static_cast<uint64>(limit);
    for (uint64 r = 0; r < rows && r < static_cast<uint64>(limit); ++r) {
      PageRow row;
      row.tid = static_cast<int32>(ResultInt64(r, 1));
      row.pk = ResultText(r, 2);
      row.clock = ResultInt64(r, 3);
      row.hlc = ResultInt64(r, 4);
      row.node = ResultInt64(r, 5) == 0 ? node_id : ResultText(r, 7);
      bool isnull = false;
      row.deleted = DatumGetBool(ResultDatum(r, 6, &isnull));
      std::string xid = ResultText(r, 8);
      std::from_chars(xid.data(), xid.data() + xid.size(), row.position.xid);
      row.position.seq = ResultInt64(r, 9);
      bool scope_null = false;
      ResultDatum(r, 10, &scope_null);
      if (!scope_null) row.scope = ResultText(r, 10);
      page.push_back(std::move(row));
    }

    // Each page row's table, key, and (live rows) the row as the caller may
    // read it; rows are read a table at a time.
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
    for (std::size_t i = 0; i < page.size(); ++i) {
      const PageRow& row = page[i];
      PageEntry& entry = entries[i];
      // Left out: a scope the hook refuses, a row the caller may not read.
      if (entry.table == nullptr || (!row.deleted && !entry.visible)) continue;
      const TableInfo& table = entry.table->info;
      change.table = table.name;
      change.op = row.deleted ? core::Op::kDelete : core::Op::kUpsert;
      change.clock = row.clock;
      change.hlc = static_cast<core::Hlc>(row.hlc);
      change.node = row.node;
      change.pk.clear();
      for (std::size_t k = 0; k < entry.key.size(); ++k)
        change.pk.push_back({table.columns[table.pk[k]].name,
                             // The key as stored (a float8 key 2.0), not its key form.
                             row.deleted ? entry.key[k] : entry.row[table.pk[k]].value});
      change.row = std::move(entry.row);
      writer.Add(change);
    }
    Position end = has_more ? page.back().position : Position{horizon.xid, 0};
    if (!has_more && (end.xid < after.xid || (end.xid == after.xid && end.seq < after.seq))) end = after;
    batch = writer.Finish(core::EncodeCursor({node_id, filter, PositionText(end)}), has_more);
  }
  *result = JsonbFromText(batch);
  return Status::Ok();
}

}  // namespace

}  // namespace syncline::pg

SYNCLINE_PG_FUNCTION(syncline_pull_since, "syncline.pull_since", syncline::pg::PullSince)

namespace syncline::pg {
namespace {

struct ApplyTable {
  TableInfo info;
  SPIPlanPtr upsert = nullptr;
  SPIPlanPtr remove = nullptr;
  SPIPlanPtr select_row = nullptr;
  std::string notify_payload;
};

Status PrepareApplyTable(ApplyTable* table) {
  const TableInfo& info = table->info;
  std::string columns, values, updates, keys, where;
  std::vector<Oid> types, key_types;
  for (std::size_t i = 0; i < info.columns.size(); ++i) {
    const std::string column = Quote(info.columns[i].name);
    columns += (i > 0 ? ", " : "") + column;
    values += (i > 0 ? ", $" : "$") + std::to_string(i + 1);
    // Parameters of the base type: the planner then adds the domain check.
    types.push_back(info.columns[i].base);
    bool in_key = std::find(info.pk.begin(), info.pk.end(), static_cast<int>(i)) != info.pk.end();
    if (!in_key) updates += (updates.empty() ? "" : ", ") + column + " = EXCLUDED." + column;
  }
  for (std::size_t k = 0; k < info.pk.size(); ++k) {
    const ColumnType& column = info.columns[info.pk[k]];
    keys += (k > 0 ? ", " : "") + Quote(column.name);
    where += (k > 0 ? " AND " : "") + KeyEquals(column, "$" + std::to_string(k + 1));
    key_types.push_back(column.base);
  }
  const std::string name = QualifiedName(info);
  table->upsert = Prepare("INSERT INTO " + name + " (" + columns + ") VALUES (" + values + ") ON CONFLICT (" + keys +
                              ") DO " + (updates.empty() ? "NOTHING" : "UPDATE SET " + updates),
                          types);
  table->remove = Prepare("DELETE FROM " + name + " WHERE " + where, key_types);
  table->select_row = Prepare("SELECT " + columns + " FROM " + name + " WHERE " + where, key_types);
  core::JsonWriter writer(&table->notify_payload);
  writer.BeginObject();
  writer.Key("table");
  writer.String(info.name);
  writer.EndObject();
  return Status::Ok();
}

// A row's metadata as an apply sees it.
struct RowMeta {
  bool stored = false;
  core::Hlc hlc = 0;
  std::string node, scope;  // scope: canonical JSON, "" for none
  bool deleted = false;
  bool in_table = false;  // syncline.rows held the row when the apply read it
  std::string version;    // its (xid, seq) then, as "xid.seq"
};

// A metadata row an apply writes (an empty scope keeps the stored one).
struct MetaValues {
  int64 clock = 0;
  core::Hlc hlc = 0;
  int64 node_ref = 0;
  bool deleted = false;
  std::string scope;
};

struct PendingWrite {
  int32 tid;
  std::string key;
  MetaValues values;
  bool in_table;        // update the row read, or insert a new one
  std::string version;  // the version read, which the update expects
  bool live;
};

constexpr std::size_t kWriteChunk = 1000;

class Applier {
 public:
  Applier(const core::Batch& batch, std::string local_node) : batch_(batch), local_node_(std::move(local_node)) {}

  Status Prepare() {
    AsExtensionOwner owner;
    if (ExecuteSql("SELECT value::pg_catalog.int8 FROM syncline.meta WHERE key OPERATOR(pg_catalog.=) 'max_drift_ms'",
                   true) > 0)
      max_drift_ms_ = ResultInt64(0, 1);
    wall_ms_ = core::WallClockMs();
    const std::string read =
        "SELECT r.pk, r.hlc, r.node, r.deleted, n.node_id, r.scope, r.xid::pg_catalog.text || '.' || r.seq FROM "
        "syncline.rows r LEFT JOIN syncline.nodes n ON n.ref = r.node WHERE r.tid = $1 AND ";
    read_meta_ = pg::Prepare(read + "r.pk = $2", {INT4OID, TEXTOID});
    read_metas_ = pg::Prepare(read + "r.pk = ANY ($2)", {INT4OID, TEXTARRAYOID});
    const std::string columns =
        "FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
        "pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), "
        "pg_catalog.unnest($7), pg_catalog.unnest($8)) AS c(tid, pk, clock, hlc, node, deleted, "
        "scope, version)";
    const std::vector<Oid> types = {INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
                                    INT4ARRAYOID, BOOLARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
    const std::string version =
        "pg_catalog.pg_current_xact_id(), pg_catalog.nextval('syncline.rows_seq'::pg_catalog.regclass)";
    // Decisions are made against the metadata as read, without locks (a bad
    // change is reported before any wait). The writes check that nothing
    // changed since: rows that were missing are inserted if still missing,
    // rows that were there are updated only at the version read; a row
    // neither wrote is a conflict (WriteMetadata counts).
    insert_metas_ = pg::Prepare("INSERT INTO syncline.rows (tid, pk, clock, hlc, node, deleted, scope, xid, seq) "
                                "SELECT c.tid, c.pk, c.clock, c.hlc, c.node, c.deleted, c.scope, " +
                                    version + " " + columns + " ON CONFLICT (tid, pk) DO NOTHING RETURNING pk",
                                types);
    update_metas_ =
        pg::Prepare("UPDATE syncline.rows AS r SET clock = c.clock, hlc = c.hlc, node = c.node, deleted = c.deleted, "
                    "scope = coalesce(c.scope, r.scope), xid = pg_catalog.pg_current_xact_id(), "
                    "seq = pg_catalog.nextval('syncline.rows_seq'::pg_catalog.regclass) " +
                        columns +
                        " WHERE r.tid = c.tid AND r.pk = c.pk AND r.xid::pg_catalog.text || '.' || r.seq = c.version "
                        "RETURNING r.pk",
                    types);
    node_ref_ = pg::Prepare(
        "WITH added AS (INSERT INTO syncline.nodes (node_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING ref) "
        "SELECT ref FROM added UNION ALL SELECT ref FROM syncline.nodes WHERE node_id = $1",
        {TEXTOID});
    return Status::Ok();
  }

  Status Apply(const core::Change& change) {
    ApplyTable* table = nullptr;
    Status status = Table(change.table, &table);
    if (!status.ok()) return status;
    const TableInfo& info = table->info;

    // The key: exactly the table's primary key columns, in canonical form
    // (a UUID in upper case is the same row).
    std::vector<Value> key(info.pk.size());
    std::vector<Datum> key_datums(info.pk.size());
    std::string key_nulls(info.pk.size(), ' ');
    std::vector<bool> seen(info.pk.size(), false);
    for (const core::ColumnValue& column : change.pk) {
      std::size_t k = 0;
      while (k < info.pk.size() && info.columns[info.pk[k]].name != column.column)
        ++k;
      if (k == info.pk.size())
        return Status(Code::kUndefinedColumn,
                      "\"pk\" names column \"" + column.column + "\", which is not in the table's primary key");
      bool isnull = false;
      status = ValueToDatum(info.columns[info.pk[k]], column.value, &key_datums[k], &isnull);
      if (!status.ok()) return status;
      if (isnull) return Status(Code::kInvalidInput, "primary key column \"" + column.column + "\" is null");
      key[k] = DatumToValue(info.columns[info.pk[k]], key_datums[k], false);
      seen[k] = true;
    }
    for (std::size_t k = 0; k < info.pk.size(); ++k) {
      if (!seen[k])
        return Status(Code::kUndefinedColumn,
                      "\"pk\" lacks primary key column \"" + info.columns[info.pk[k]].name + "\"");
    }
    std::string key_text;
    status = core::EncodeKey(key, &key_text);
    if (!status.ok()) return status;
    // The key as sent, when its canonical form differs (a UUID in upper
    // case): the sender holds the row under that key, so the canonical row
    // must also come back to it as a delete of that key.
    std::string sent_key_text;
    if (change.op == core::Op::kUpsert) {
      std::vector<Value> sent(info.pk.size());
      for (const core::ColumnValue& column : change.pk) {
        for (std::size_t k = 0; k < info.pk.size(); ++k)
          if (info.columns[info.pk[k]].name == column.column) sent[k] = column.value;
      }
      status = core::EncodeKey(sent, &sent_key_text);
      if (!status.ok()) return status;
      if (sent_key_text == key_text) sent_key_text.clear();
    }

    // The row: every column, converted; `canonical` is what PostgreSQL will
    // store, which may differ from what was sent (char padding, numeric
    // scale, float4 precision, timestamp precision, jsonb formatting ...).
    std::vector<Datum> datums;
    std::string nulls;
    std::vector<Value> canonical;
    bool rewritten = false;
    std::string scope;
    if (change.op == core::Op::kUpsert) {
      datums.assign(info.columns.size(), (Datum)0);
      nulls.assign(info.columns.size(), ' ');
      canonical.assign(info.columns.size(), Value());
      std::vector<bool> have(info.columns.size(), false);
      for (const core::ColumnValue& column : change.row) {
        std::size_t c = 0;
        while (c < info.columns.size() && info.columns[c].name != column.column)
          ++c;
        if (c == info.columns.size()) return Status(Code::kUndefinedColumn, "unknown column \"" + column.column + "\"");
        bool isnull = false;
        status = ValueToDatum(info.columns[c], column.value, &datums[c], &isnull);
        if (!status.ok()) return status;
        if (isnull) nulls[c] = 'n';
        canonical[c] = DatumToValue(info.columns[c], datums[c], isnull);
        if (!core::SameValue(canonical[c], column.value)) rewritten = true;
        have[c] = true;
      }
      for (std::size_t c = 0; c < info.columns.size(); ++c) {
        if (!have[c]) return Status(Code::kUndefinedColumn, "\"row\" lacks column \"" + info.columns[c].name + "\"");
      }
      if (info.scope >= 0) {
        core::JsonWriter writer(&scope);
        core::WriteValue(writer, canonical[info.scope]);
      }
    }

    status = core::CheckDrift(change, batch_.source, wall_ms_, max_drift_ms_);
    if (!status.ok()) return status;
    ReceiveStamp(change.hlc);

    // Compare with the row's current version (stored, or written by an
    // earlier change of this batch).
    RowMeta known;
    status = Known(info.tid, key_text, &known);
    if (!status.ok()) return status;
    const bool stored = known.stored;
    const core::Hlc stored_hlc = known.hlc;
    const std::string& stored_node = known.node;
    const std::string stored_scope = known.scope;
    const bool stored_deleted = known.deleted;
    if (stored) {
      int order = core::CompareStamps(change.hlc, change.node, stored_hlc, stored_node);
      if (order < 0) return Skip();
      if (order == 0) {
        bool same = false;
        status = SameContent(*table, change, key_datums, key_nulls, canonical, stored_deleted, &same);
        if (!status.ok()) return status;
        if (!same)
          return Status(Code::kCorruptBatch, "stamp " + core::HlcToText(change.hlc) + "/" + change.node +
                                                 " is already known for this row with different content");
        return Skip();
      }
    }
    if (change.node == local_node_) return core::CopiedDatabase("docs/postgres.md, \"Backups and copies\"");
    // A row's scope never changes (it says who receives the row and its
    // tombstone), and a table's authorisation hook must allow the scope the
    // change touches.
    if (change.op == core::Op::kUpsert && stored && !stored_scope.empty() && !scope.empty() && stored_scope != scope)
      return Status(Code::kInvalidInput,
                    "the row's scope is " + stored_scope + "; a change cannot move it to " + scope);
    if (!info.authorize.empty()) {
      std::optional<std::string> touched;
      if (change.op == core::Op::kUpsert)
        touched = scope;
      else if (stored && !stored_scope.empty())
        touched = stored_scope;
      if (touched || change.op == core::Op::kUpsert) {
        bool allowed = false;
        status = authorizer_.Allowed(info.authorize, touched, &allowed);
        if (!status.ok()) return status;
        if (!allowed)
          return Status(Code::kConstraint,
                        "not authorised for scope " + touched.value_or("null") + " (by " + info.authorize + ")");
      }
    }

    // Write as the caller: its privileges and row-level security apply.
    ApplyingRow applying_row(info.relid, key_text);
    if (change.op == core::Op::kUpsert) {
      Execute(table->upsert, datums.data(), nulls.data(), false);
    } else if (Execute(table->remove, key_datums.data(), key_nulls.data(), false) == 0) {
      bool exists = false;
      {
        AsExtensionOwner owner;
        exists = Execute(table->select_row, key_datums.data(), key_nulls.data(), true, 1) > 0;
      }
      if (exists)
        return Status(Code::kConstraint, "the row exists but the current role may not delete it (row-level security)");
    }

    // The metadata keeps the origin's version, unless PostgreSQL stored a
    // different canonical form: then that form becomes a new local version,
    // newer than the one received, and flows back to every replica.
    int64 node_ref = 0;
    int64 clock = change.clock;
    core::Hlc hlc = change.hlc;
    // The rewrite's stamp is the least one above the received version: it
    // beats that version (and nothing older was stored), yet still loses to
    // any edit made after it on another node, as the received one would.
    if (rewritten) {
      hlc = change.hlc + 1;
      ReceiveStamp(hlc);
      clock = change.clock + 1;
      ++rewritten_;
    } else {
      status = NodeRef(change.node, &node_ref);
      if (!status.ok()) return status;
    }
    if (change.op == core::Op::kDelete) scope = stored_scope;
    Write(info.tid, key_text, {clock, hlc, node_ref, change.op == core::Op::kDelete, scope},
          node_ref == 0 ? local_node_ : change.node);
    if (!sent_key_text.empty()) {
      Write(info.tid, sent_key_text, {change.clock + 1, change.hlc + 1, 0, true, scope}, local_node_);
      if (!rewritten) ++rewritten_;
    }
    if (info.notify) {
      std::string payload = table->notify_payload;
      if (!scope.empty()) payload = payload.substr(0, payload.size() - 1) + ",\"scope\":" + scope + "}";
      notifications_.insert(std::move(payload));
    }
    ++applied_;
    return Status::Ok();
  }

  // Reads, in one statement per table, the metadata of every row the batch
  // names (by the key as sent, which is nearly always its canonical form;
  // Known() reads any other key on its own).
  Status Prefetch() {
    std::map<int32, std::vector<std::string>> keys;
    for (const core::Change& change : batch_.changes) {
      ApplyTable* table = nullptr;
      if (!Table(change.table, &table).ok() || change.pk.size() != table->info.pk.size()) continue;  // Apply says why
      const TableInfo& info = table->info;
      std::vector<Value> sent(info.pk.size());
      std::size_t matched = 0;
      for (const core::ColumnValue& column : change.pk) {
        for (std::size_t k = 0; k < info.pk.size(); ++k) {
          if (info.columns[info.pk[k]].name == column.column) {
            sent[k] = column.value;
            ++matched;
          }
        }
      }
      std::string text;
      if (matched == info.pk.size() && core::EncodeKey(sent, &text).ok()) keys[info.tid].push_back(std::move(text));
    }
    AsExtensionOwner owner;
    for (auto& [tid, texts] : keys) {
      for (const std::string& text : texts)
        known_[{tid, text}] = RowMeta{};
      Datum args[2] = {Int32GetDatum(tid), TextArray(texts)};
      uint64 rows = Execute(read_metas_, args, "  ", false);
      for (uint64 r = 0; r < rows; ++r)
        known_[{tid, ResultText(r, 1)}] = ResultMeta(r);
    }
    return Status::Ok();
  }

  Status WriteMetadata(const std::vector<const PendingWrite*>& writes, SPIPlanPtr plan) {
    AsExtensionOwner owner;
    for (std::size_t start = 0; start < writes.size(); start += kWriteChunk) {
      const std::size_t count = std::min(kWriteChunk, writes.size() - start);
      std::vector<std::string> keys, scopes, versions;
      std::vector<Datum> tids, clocks, hlcs, nodes, deleted;
      for (std::size_t i = start; i < start + count; ++i) {
        const PendingWrite& write = *writes[i];
        versions.push_back(write.version);
        tids.push_back(Int32GetDatum(write.tid));
        keys.push_back(write.key);
        clocks.push_back(Int64GetDatum(write.values.clock));
        hlcs.push_back(Int64GetDatum(static_cast<int64>(write.values.hlc)));
        nodes.push_back(Int32GetDatum(static_cast<int32>(write.values.node_ref)));
        deleted.push_back(BoolGetDatum(write.values.deleted));
        scopes.push_back(write.values.scope);
      }
      Datum args[8] = {ScalarArray(tids, INT4OID),
                       TextArray(keys),
                       ScalarArray(clocks, INT8OID),
                       ScalarArray(hlcs, INT8OID),
                       ScalarArray(nodes, INT4OID),
                       ScalarArray(deleted, BOOLOID),
                       TextArray(scopes, /*empty_is_null=*/true),
                       TextArray(versions, /*empty_is_null=*/true)};
      uint64 written = Execute(plan, args, "        ", false);
      if (written < count) {
        std::set<std::string> done;
        for (uint64 r = 0; r < written; ++r)
          done.insert(ResultText(r, 1));
        std::string key;
        for (const std::string& k : keys)
          if (done.count(k) == 0 && key.empty()) key = k;
        return Status(Code::kConflict, "row " + key +
                                           " changed in a concurrent transaction after this apply read it; apply the "
                                           "batch again");
      }
    }
    return Status::Ok();
  }

  // Writes the metadata this apply has left (Write), in bulk.
  Status Flush() {
    for (bool in_table : {true, false}) {
      std::vector<const PendingWrite*> writes;
      for (const PendingWrite& write : pending_)
        if (write.live && write.in_table == in_table) writes.push_back(&write);
      Status status = WriteMetadata(writes, in_table ? update_metas_ : insert_metas_);
      if (!status.ok()) return status;
    }
    for (const std::string& payload : notifications_) {
      const char* text = payload.c_str();
      PgGuard([&] { Async_Notify("syncline", text); });
    }
    return Status::Ok();
  }

  Status RecordCursor(const core::Cursor& cursor) {
    AsExtensionOwner owner;
    SPIPlanPtr read =
        pg::Prepare("SELECT position FROM syncline.peers WHERE node_id = $1 AND filter = $2", {TEXTOID, TEXTOID});
    Datum args[4] = {TextDatum(cursor.node), TextDatum(cursor.filter), TextDatum(core::EncodeCursor(cursor)),
                     TextDatum(cursor.position)};
    // A page delivered late (after a newer one) must not move the cursor back.
    if (Execute(read, args, "  ", false) > 0 && core::ComparePositions(cursor.position, ResultText(0, 1)) <= 0)
      return Status::Ok();
    SPIPlanPtr write = pg::Prepare(
        "INSERT INTO syncline.peers (node_id, filter, cursor, position) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (node_id, filter) DO UPDATE SET cursor = EXCLUDED.cursor, position = EXCLUDED.position",
        {TEXTOID, TEXTOID, TEXTOID, TEXTOID});
    Execute(write, args, "    ", false);
    return Status::Ok();
  }

  int64 applied() const { return applied_; }
  int64 skipped() const { return skipped_; }
  int64 rewritten() const { return rewritten_; }

 private:
  Status Skip() {
    ++skipped_;
    return Status::Ok();
  }

  Status Table(const std::string& name, ApplyTable** out) {
    auto it = tables_.find(name);
    if (it != tables_.end()) {
      *out = &it->second;
      return Status::Ok();
    }
    ApplyTable table;
    bool found = false;
    Status status = FindTrackedByName(name, CurrentMemoryContext, &table.info, &found);
    if (!status.ok()) return status;
    if (!found) return Status(Code::kUndefinedTable, "no tracked table of this name");
    status = PrepareApplyTable(&table);
    if (!status.ok()) return status;
    *out = &tables_.emplace(name, std::move(table)).first->second;
    return Status::Ok();
  }

  Status SameContent(const ApplyTable& table, const core::Change& change, std::vector<Datum>& key_datums,
                     std::string& key_nulls, const std::vector<Value>& canonical, bool stored_deleted, bool* same) {
    *same = (change.op == core::Op::kDelete) == stored_deleted;
    if (!*same || change.op == core::Op::kDelete) return Status::Ok();
    AsExtensionOwner owner;
    if (Execute(table.select_row, key_datums.data(), key_nulls.data(), true, 1) == 0) {
      *same = false;
      return Status::Ok();
    }
    TupleDesc desc = SPI_tuptable->tupdesc;
    HeapTuple tuple = SPI_tuptable->vals[0];
    for (std::size_t c = 0; c < table.info.columns.size() && *same; ++c) {
      bool isnull = false;
      Datum datum = (Datum)0;
      int attnum = static_cast<int>(c + 1);
      PgGuard([&] { datum = SPI_getbinval(tuple, desc, attnum, &isnull); });
      *same = core::SameValue(DatumToValue(table.info.columns[c], datum, isnull), canonical[c]);
    }
    return Status::Ok();
  }

  // A row's metadata: what Prefetch read, what an earlier change of the
  // batch wrote, or else read now.
  Status Known(int32 tid, const std::string& key, RowMeta* out) {
    auto it = known_.find({tid, key});
    if (it != known_.end()) {
      *out = it->second;
      return Status::Ok();
    }
    Datum args[2] = {Int32GetDatum(tid), TextDatum(key)};
    AsExtensionOwner owner;
    *out = Execute(read_meta_, args, "  ", false) > 0 ? ResultMeta(0) : RowMeta{};
    known_[{tid, key}] = *out;
    return Status::Ok();
  }

  RowMeta ResultMeta(uint64 row) const {
    RowMeta meta;
    meta.stored = true;
    meta.hlc = static_cast<core::Hlc>(ResultInt64(row, 2));
    meta.node = ResultInt64(row, 3) == 0 ? local_node_ : ResultText(row, 5);
    bool isnull = false;
    meta.deleted = DatumGetBool(ResultDatum(row, 4, &isnull));
    meta.scope = ResultText(row, 6);
    meta.in_table = true;
    meta.version = ResultText(row, 7);
    return meta;
  }

  // A new version of a row's metadata, written by Flush; later changes of
  // the batch see it at once. A row written twice keeps its last write, in
  // the place of that write.
  void Write(int32 tid, const std::string& key, const MetaValues& values, const std::string& node) {
    RowMeta& known = known_[{tid, key}];
    const std::string scope = values.scope.empty() ? known.scope : values.scope;
    known = RowMeta{true, values.hlc, node, scope, values.deleted, known.in_table, known.version};
    auto [slot, added] = pending_index_.emplace(std::make_pair(tid, key), pending_.size());
    if (!added) {
      pending_[slot->second].live = false;
      slot->second = pending_.size();
    }
    pending_.push_back({tid, key, values, known.in_table, known.version, true});
  }

  static Datum ScalarArray(const std::vector<Datum>& values, Oid type) {
    Datum array = (Datum)0;
    PgGuard([&] {
      int16 length = 0;
      bool by_value = false;
      char align = 0;
      get_typlenbyvalalign(type, &length, &by_value, &align);
      array = PointerGetDatum(construct_array(const_cast<Datum*>(values.data()), static_cast<int>(values.size()), type,
                                              length, by_value, align));
    });
    return array;
  }

  static Datum TextArray(const std::vector<std::string>& texts, bool empty_is_null = false) {
    Datum array = (Datum)0;
    const int count = static_cast<int>(texts.size());
    PgGuard([&] {
      auto* elements = static_cast<Datum*>(palloc(sizeof(Datum) * (count > 0 ? count : 1)));
      auto* nulls = static_cast<bool*>(palloc(sizeof(bool) * (count > 0 ? count : 1)));
      for (int i = 0; i < count; ++i) {
        nulls[i] = empty_is_null && texts[i].empty();
        elements[i] = nulls[i] ? (Datum)0 : CStringGetTextDatum(texts[i].c_str());
      }
      int dims[1] = {count};
      int lower_bounds[1] = {1};
      array =
          PointerGetDatum(construct_md_array(elements, nulls, 1, dims, lower_bounds, TEXTOID, -1, false, TYPALIGN_INT));
    });
    return array;
  }

  Status NodeRef(const std::string& node, int64* ref) {
    if (node == local_node_) {
      *ref = 0;
      return Status::Ok();
    }
    auto it = node_refs_.find(node);
    if (it != node_refs_.end()) {
      *ref = it->second;
      return Status::Ok();
    }
    Datum args[1] = {TextDatum(node)};
    AsExtensionOwner owner;
    if (Execute(node_ref_, args, " ", false) == 0) return Status(Code::kInternal, "cannot register node " + node);
    *ref = ResultInt64(0, 1);
    node_refs_[node] = *ref;
    return Status::Ok();
  }

  const core::Batch& batch_;
  std::string local_node_;
  int64 max_drift_ms_ = core::kDefaultMaxDriftMs;
  int64 wall_ms_ = 0;
  SPIPlanPtr read_meta_ = nullptr, read_metas_ = nullptr, insert_metas_ = nullptr, update_metas_ = nullptr,
             node_ref_ = nullptr;
  std::map<std::pair<int32, std::string>, RowMeta> known_;
  std::vector<PendingWrite> pending_;
  std::map<std::pair<int32, std::string>, std::size_t> pending_index_;
  std::set<std::string> notifications_;
  std::map<std::string, ApplyTable> tables_;
  std::map<std::string, int64> node_refs_;
  Authorizer authorizer_;
  int64 applied_ = 0, skipped_ = 0, rewritten_ = 0;
};

// The order to apply a batch's changes in so that foreign keys that cannot
// be deferred hold after every statement: upserts first, parents before
// children; then deletes, children before parents. Changes to different rows
// commute under the conflict rule and one row's changes keep their order
// (the sort is stable and a row has one table), so the result is the same.
// (A table referencing itself keeps the batch's order.)
std::vector<std::size_t> ForeignKeyOrder(const core::Batch& batch) {
  std::vector<std::size_t> order(batch.changes.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::map<std::string, int> rank;
  for (const core::Change& change : batch.changes)
    rank[change.table] = 0;
  if (rank.size() < 2) return order;
  std::vector<std::pair<std::string, std::string>> edges;  // child, parent
  {
    AsExtensionOwner owner;
    uint64 rows =
        ExecuteSql("SELECT c.table_name, p.table_name FROM pg_catalog.pg_constraint k "
                   "JOIN syncline.tables c ON pg_catalog.to_regclass(pg_catalog.quote_ident(c.table_schema) || '.' || "
                   "pg_catalog.quote_ident(c.table_name)) = k.conrelid "
                   "JOIN syncline.tables p ON pg_catalog.to_regclass(pg_catalog.quote_ident(p.table_schema) || '.' || "
                   "pg_catalog.quote_ident(p.table_name)) = k.confrelid "
                   "WHERE k.contype = 'f' AND k.conrelid <> k.confrelid",
                   true);
    for (uint64 r = 0; r < rows; ++r)
      edges.emplace_back(ResultText(r, 1), ResultText(r, 2));
  }
  // A table's rank is the length of its longest chain of parents (cycles
  // stop growing after as many rounds as there are tables).
  for (std::size_t round = 0; round < rank.size(); ++round) {
    bool changed = false;
    for (const auto& [child, parent] : edges) {
      auto c = rank.find(child), p = rank.find(parent);
      if (c != rank.end() && p != rank.end() && c->second < p->second + 1) {
        c->second = p->second + 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  auto key = [&](std::size_t i) {
    const core::Change& change = batch.changes[i];
    int r = rank[change.table];
    return change.op == core::Op::kUpsert ? std::make_pair(0, r) : std::make_pair(1, -r);
  };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  return order;
}

Status ApplyPush(FunctionCallInfo fcinfo, Datum* result) {
  core::Batch batch;
  Status status = core::DecodeBatch(JsonbText(PG_GETARG_DATUM(0)), &batch);
  if (!status.ok()) return status;
  core::Cursor cursor;
  if (!batch.cursor.empty()) {
    status = core::DecodeCursor(batch.cursor, &cursor);
    if (!status.ok()) return status.WithPrefix("batch: ");
    if (cursor.node != batch.source)
      return Status(Code::kInvalidInput,
                    "batch: cursor was issued by node " + cursor.node + ", not by the batch's source " + batch.source);
  }
  std::string summary;
  {
    SpiSession spi;
    Applying applying;
    Applier applier(batch, LocalNodeId());
    status = applier.Prepare();
    if (status.ok()) status = applier.Prefetch();
    for (std::size_t i : ForeignKeyOrder(batch)) {
      if (!status.ok()) break;
      const std::string context = core::ChangeContext(i, batch.changes[i].table);
      try {
        status = applier.Apply(batch.changes[i]);
      } catch (PgError& error) {
        // PostgreSQL's own message (a constraint, an input syntax, a
        // privilege), prefixed with the change at fault.
        PrefixError(error, "syncline.apply_push: " + context);
        throw;
      }
      if (!status.ok()) status = status.WithPrefix(context);
    }
    if (!status.ok()) return status;
    status = applier.Flush();
    if (!status.ok()) return status;
    if (!batch.cursor.empty()) {
      status = applier.RecordCursor(cursor);
      if (!status.ok()) return status;
    }
    {
      AsExtensionOwner owner;
      SPIPlanPtr save =
          Prepare("UPDATE syncline.meta SET value = pg_catalog.int8larger(value::pg_catalog.int8, $1)::text "
                  "WHERE key OPERATOR(pg_catalog.=) 'hlc'",
                  {INT8OID});
      Datum clock[1] = {Int64GetDatum(static_cast<int64>(backend().clock))};
      Execute(save, clock, " ", false);
    }
    summary = core::ApplySummary({applier.applied(), applier.skipped(), applier.rewritten()}, batch.source,
                                 batch.cursor.empty() ? "" : core::EncodeCursor(cursor));
  }
  *result = JsonbFromText(summary);
  return Status::Ok();
}

}  // namespace
}  // namespace syncline::pg

SYNCLINE_PG_FUNCTION(syncline_apply_push, "syncline.apply_push", syncline::pg::ApplyPush)
