#include "pg_extension/tables.h"

#include <algorithm>
#include <functional>

#include "core/changeset.h"
#include "pg_extension/spi.h"

namespace syncline::pg {

using core::Code;
using core::Status;
using core::Value;

std::string Quote(const std::string& identifier) {
  const char* quoted = nullptr;
  const char* text = identifier.c_str();
  PgGuard([&] { quoted = quote_identifier(text); });
  return quoted;
}

static_assert(core::kHlcMax == static_cast<core::Hlc>(INT64_MAX), "stamps saturate at the int8 maximum, as clocks do");

std::string NextInt8(const std::string& expression) {
  return "(pg_catalog.int8smaller(" + expression + ", " + std::to_string(INT64_MAX - 1) + ") OPERATOR(pg_catalog.+) 1)";
}

std::string QuoteLiteral(const std::string& literal) {
  const char* quoted = nullptr;
  const char* text = literal.c_str();
  PgGuard([&] { quoted = quote_literal_cstr(text); });
  return quoted;
}

std::string RelationName(Oid relid) {
  const char* name = nullptr;
  PgGuard([&] {
    char* rel = get_rel_name(relid);
    if (rel == nullptr) elog(ERROR, "syncline: relation %u vanished", relid);
    name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), rel);
  });
  return name;
}

std::string QualifiedName(const TableInfo& table) { return Quote(table.schema) + "." + Quote(table.name); }

Status LoadShape(Oid relid, MemoryContext context, TableInfo* out) {
  out->relid = relid;
  out->columns.clear();
  out->attnums.clear();
  out->pk.clear();
  static SPIPlanPtr plan = nullptr;
  if (plan == nullptr)
    plan = Prepare(
        "SELECT a.attnum, a.attname::text, a.atttypid, a.atttypmod, a.attnotnull, "
        "coalesce(pg_catalog.array_position(i.indkey::pg_catalog.int2[], a.attnum) "
        "OPERATOR(pg_catalog.-) pg_catalog.array_lower(i.indkey::pg_catalog.int2[], 1) OPERATOR(pg_catalog.+) 1, 0), "
        "n.nspname::text, c.relname::text, c.relkind::text "
        "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
        "LEFT JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) a.attrelid AND i.indisprimary "
        "WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped AND "
        "a.attgenerated OPERATOR(pg_catalog.=) '' "
        "ORDER BY a.attnum",
        {OIDOID}, /*keep=*/true);
  Datum args[1] = {ObjectIdGetDatum(relid)};
  uint64 rows = Execute(plan, args, " ", true);
  if (rows == 0) return Status(Code::kUndefinedTable, "relation " + std::to_string(relid) + " has no columns");
  std::vector<std::pair<int, int>> key_order;
  for (uint64 r = 0; r < rows; ++r) {
    ColumnType column;
    column.name = ResultText(r, 2);
    bool isnull = false;
    Oid type = DatumGetObjectId(ResultDatum(r, 3, &isnull));
    int32 typmod = DatumGetInt32(ResultDatum(r, 4, &isnull));
    column.not_null = DatumGetBool(ResultDatum(r, 5, &isnull));
    LoadColumnType(type, typmod, context, &column);
    int key_position = static_cast<int>(ResultInt64(r, 6));
    if (key_position > 0) key_order.emplace_back(key_position, static_cast<int>(out->columns.size()));
    out->attnums.push_back(static_cast<AttrNumber>(ResultInt64(r, 1)));
    out->columns.push_back(std::move(column));
    if (r == 0) {
      out->schema = ResultText(r, 7);
      out->name = ResultText(r, 8);
      std::string kind = ResultText(r, 9);
      // A partitioned table is read and written as one table: PostgreSQL
      // routes the rows to its partitions.
      if (kind != "r" && kind != "p")
        return Status(Code::kInvalidInput, QualifiedName(*out) + " is not an ordinary table (relkind " + kind + ")");
    }
  }
  std::sort(key_order.begin(), key_order.end());
  for (const auto& entry : key_order)
    out->pk.push_back(entry.second);
  return Status::Ok();
}

namespace {

Status FindTracked(const char* where, Oid arg_type, Datum arg, MemoryContext context, TableInfo* out, bool* found) {
  AsExtensionOwner owner;
  SPIPlanPtr plan = Prepare(std::string("SELECT tid, pg_catalog.to_regclass(pg_catalog.quote_ident(table_schema) "
                                        "OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) "
                                        "pg_catalog.quote_ident(table_name))::oid, scope_column, notify, "
                                        "table_schema, table_name, authorize, "
                                        // 0.1's tables have no merge column: row merge
                                        "pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->>) 'merge' "
                                        "FROM syncline.tables t WHERE ") +
                                where,
                            {arg_type});
  Datum args[1] = {arg};
  *found = Execute(plan, args, " ", true) > 0;
  if (!*found) return Status::Ok();
  int32 tid = static_cast<int32>(ResultInt64(0, 1));
  bool isnull = false;
  Datum relid = ResultDatum(0, 2, &isnull);
  std::string scope = ResultText(0, 3);
  bool notify = DatumGetBool(ResultDatum(0, 4, &isnull));
  std::string schema = ResultText(0, 5), name = ResultText(0, 6), authorize = ResultText(0, 7);
  const bool column_merge = ResultText(0, 8) == "column";
  if (isnull)
    return Status(Code::kUndefinedTable, "tracked table " + Quote(schema) + "." + Quote(name) +
                                             " no longer exists; call syncline.untrack or recreate it");
  Status status = LoadShape(DatumGetObjectId(relid), context, out);
  if (!status.ok()) return status;
  out->tid = tid;
  out->notify = notify;
  out->authorize = authorize;
  out->merge = column_merge ? core::MergeMode::kColumn : core::MergeMode::kRow;
  out->scope = -1;
  for (std::size_t i = 0; i < out->columns.size(); ++i) {
    if (!scope.empty() && out->columns[i].name == scope) out->scope = static_cast<int>(i);
  }
  return Status::Ok();
}

}  // namespace

Status FindTrackedByRelid(Oid relid, MemoryContext context, TableInfo* out, bool* found) {
  const char* nsp = nullptr;
  Datum arg = (Datum)0;
  PgGuard([&] {
    char* rel = get_rel_name(relid);
    nsp = get_namespace_name(get_rel_namespace(relid));
    if (rel == nullptr || nsp == nullptr) elog(ERROR, "syncline: relation %u vanished", relid);
    arg = CStringGetTextDatum(rel);
  });
  Status status = FindTracked("table_name OPERATOR(pg_catalog.=) $1", TEXTOID, arg, context, out, found);
  if (status.ok() && *found && out->schema != nsp) *found = false;
  return status;
}

Status FindTrackedForCapture(Oid relid, MemoryContext context, TableInfo* out, bool* found) {
  Status status = FindTrackedByRelid(relid, context, out, found);
  if (!status.ok() || *found) return status;
  // Not tracked itself: a partition (at any level) captures for the root of
  // its partition tree. Only a cache refill gets here, never a row.
  Oid root = InvalidOid;
  PgGuard([&] {
    if (!get_rel_relispartition(relid)) return;
    List* ancestors = get_partition_ancestors(relid);
    root = llast_oid(ancestors);
    list_free(ancestors);
  });
  if (!OidIsValid(root)) return status;
  status = FindTrackedByRelid(root, context, out, found);
  if (!status.ok() || !*found) return status;
  // The partition's rows come in its own tuple descriptor, whose attribute
  // numbers may differ from the root's (an attached table, dropped columns);
  // names and types are the same.
  for (std::size_t i = 0; i < out->columns.size(); ++i) {
    const char* column = out->columns[i].name.c_str();
    AttrNumber attnum = InvalidAttrNumber;
    PgGuard([&] { attnum = get_attnum(relid, column); });
    if (attnum == InvalidAttrNumber)
      return Status(Code::kInternal, "partition " + std::to_string(relid) + " has no column " + Quote(column));
    out->attnums[i] = attnum;
  }
  return status;
}

Status ForEachKey(const TableInfo& table, const std::string& source,
                  const std::function<Status(const std::string& key, const std::string& scope)>& each) {
  // The scan reads the key columns, then the scope column: the table's
  // shape with attribute numbers into that scan.
  std::string columns;
  for (std::size_t k = 0; k < table.pk.size(); ++k)
    columns += (k > 0 ? ", " : "") + Quote(table.columns[table.pk[k]].name);
  if (table.scope >= 0) columns += ", " + Quote(table.columns[table.scope].name);
  TableInfo key_shape = table;
  key_shape.attnums.assign(table.columns.size(), 0);
  for (std::size_t k = 0; k < table.pk.size(); ++k)
    key_shape.attnums[table.pk[k]] = static_cast<AttrNumber>(k + 1);
  if (table.scope >= 0) key_shape.attnums[table.scope] = static_cast<AttrNumber>(table.pk.size() + 1);

  SPIPlanPtr scan = Prepare("SELECT " + columns + " FROM " + source, {});
  Portal portal = nullptr;
  PgGuard([&] { portal = SPI_cursor_open(nullptr, scan, nullptr, nullptr, true); });
  CanonicalOutput pinned;  // dates and times as everywhere else
  std::string key;
  while (true) {
    uint64 fetched = 0;
    PgGuard([&] {
      SPI_cursor_fetch(portal, true, 1000);
      fetched = SPI_processed;
    });
    if (fetched == 0) break;
    SPITupleTable* chunk = SPI_tuptable;
    for (uint64 r = 0; r < fetched; ++r) {
      Status status = RowKey(key_shape, chunk->vals[r], chunk->tupdesc, &key);
      if (status.ok()) status = each(key, RowScope(key_shape, chunk->vals[r], chunk->tupdesc));
      if (!status.ok()) return status;
    }
    PgGuard([&] { SPI_freetuptable(chunk); });
  }
  PgGuard([&] { SPI_cursor_close(portal); });
  return Status::Ok();
}

Status FindTrackedByName(const std::string& name, MemoryContext context, TableInfo* out, bool* found) {
  Datum arg = (Datum)0;
  PgGuard([&] { arg = CStringGetTextDatum(name.c_str()); });
  return FindTracked("table_name OPERATOR(pg_catalog.=) $1", TEXTOID, arg, context, out, found);
}

Status FindTrackedById(int32 tid, MemoryContext context, TableInfo* out, bool* found) {
  return FindTracked("tid OPERATOR(pg_catalog.=) $1", INT4OID, Int32GetDatum(tid), context, out, found);
}

namespace {

// Reads attribute `attnum` of a row, a heap tuple or a slot.
template <typename Read> Status KeyOf(const TableInfo& table, Read read, std::string* key, std::vector<Value>* values) {
  std::vector<Value> key_values;
  key_values.reserve(table.pk.size());
  for (int index : table.pk) {
    bool isnull = false;
    Datum datum = read(table.attnums[index], &isnull);
    key_values.push_back(DatumToValue(table.columns[index], datum, isnull));
  }
  Status status = core::EncodeKey(key_values, key);
  if (values != nullptr) *values = std::move(key_values);
  return status;
}

template <typename Read> std::string ScopeOf(const TableInfo& table, Read read) {
  if (table.scope < 0) return "";
  bool isnull = false;
  Datum datum = read(table.attnums[table.scope], &isnull);
  std::string scope;
  core::JsonWriter writer(&scope);
  core::WriteValue(writer, DatumToValue(table.columns[table.scope], datum, isnull));
  return scope;
}

auto TupleReader(HeapTuple tuple, TupleDesc desc) {
  return [tuple, desc](AttrNumber attnum, bool* isnull) {
    Datum datum = (Datum)0;
    PgGuard([&] { datum = heap_getattr(tuple, attnum, desc, isnull); });
    return datum;
  };
}

auto SlotReader(TupleTableSlot* slot) {
  return [slot](AttrNumber attnum, bool* isnull) {
    Datum datum = (Datum)0;
    PgGuard([&] { datum = slot_getattr(slot, attnum, isnull); });
    return datum;
  };
}

}  // namespace

std::string KeyEquals(const ColumnType& column, const std::string& value) {
  char* schema = nullptr;
  char* name = nullptr;
  Oid base = column.base;
  PgGuard([&] {
    TypeCacheEntry* entry = lookup_type_cache(base, TYPECACHE_EQ_OPR);
    if (!OidIsValid(entry->eq_opr))
      ereport(ERROR,
              (errcode(ERRCODE_UNDEFINED_FUNCTION), errmsg("type %s of key column \"%s\" has no equality operator",
                                                           format_type_be(base), column.name.c_str())));
    HeapTuple tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(entry->eq_opr));
    if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for operator %u", entry->eq_opr);
    auto* form = reinterpret_cast<Form_pg_operator>(GETSTRUCT(tuple));
    schema = get_namespace_name(form->oprnamespace);
    name = pstrdup(NameStr(form->oprname));
    ReleaseSysCache(tuple);
  });
  return Quote(column.name) + " OPERATOR(" + Quote(schema) + "." + name + ") " + value;
}

Status RowKey(const TableInfo& table, HeapTuple tuple, TupleDesc desc, std::string* key, std::vector<Value>* values) {
  return KeyOf(table, TupleReader(tuple, desc), key, values);
}

Status RowKey(const TableInfo& table, TupleTableSlot* slot, std::string* key) {
  return KeyOf(table, SlotReader(slot), key, nullptr);
}

std::string RowScope(const TableInfo& table, HeapTuple tuple, TupleDesc desc) {
  return ScopeOf(table, TupleReader(tuple, desc));
}

std::string RowScope(const TableInfo& table, TupleTableSlot* slot) { return ScopeOf(table, SlotReader(slot)); }

}  // namespace syncline::pg
