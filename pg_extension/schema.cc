#include "pg_extension/schema.h"

#include <map>
#include <vector>

#include "core/changeset.h"
#include "pg_extension/backend.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/spi.h"
#include "pg_extension/types.h"

namespace syncline::pg {

using core::Status;

bool ReadSchemaVersion(int64* version, Snapshot snapshot) {
  AsExtensionOwner owner;
  SPIPlanPtr plan =
      Prepare("SELECT value::pg_catalog.int8 FROM syncline.meta WHERE key OPERATOR(pg_catalog.=) 'schema_version'", {});
  if (Execute(plan, nullptr, nullptr, true, 0, snapshot) == 0) return false;
  *version = ResultInt64(0, 1);
  return true;
}

std::string SchemaDocument(int64 since, Snapshot snapshot) {
  AsExtensionOwner owner;
  SPIPlanPtr plan = Prepare("SELECT syncline.schema_document($1)", {INT8OID});
  Datum args[1] = {Int64GetDatum(since)};
  Execute(plan, args, " ", true, 0, snapshot);
  return ResultText(0, 1);
}

void LoadColumnHistory(int32 tid, core::MergeTable* table) {
  AsExtensionOwner owner;
  SPIPlanPtr plan = Prepare(
      "SELECT event, from_name, to_name, column_name FROM syncline.schema_log WHERE tid OPERATOR(pg_catalog.=) $1 "
      "AND event OPERATOR(pg_catalog.=) ANY ('{rename_column,drop_column,add_column}'::pg_catalog.text[]) "
      "ORDER BY version",
      {INT4OID});
  Datum args[1] = {Int32GetDatum(tid)};
  const uint64 events = Execute(plan, args, " ", true);
  // Every name a column has had, to the name it has now; "" once dropped. A
  // name taken again by an added column means that column from then on.
  std::map<std::string, std::string> now;
  for (uint64 e = 0; e < events; ++e) {
    const std::string event = ResultText(e, 1);
    if (event == "rename_column") {
      const std::string from = ResultText(e, 2), to = ResultText(e, 3);
      for (auto& [name, current] : now)
        if (current == from) current = to;
      now[from] = to;
    } else if (event == "drop_column") {
      const std::string column = ResultText(e, 4);
      for (auto& [name, current] : now)
        if (current == column) current.clear();
      now[column] = "";
    } else {
      now.erase(ResultText(e, 4));
    }
  }
  for (const auto& [name, current] : now) {
    if (current.empty()) {
      table->dropped.push_back(name);
      continue;
    }
    for (std::size_t c = 0; c < table->columns.size(); ++c)
      if (table->columns[c] == current) table->former_names.emplace_back(name, static_cast<int>(c));
  }
}

std::string RenamedTable(const std::string& name) {
  AsExtensionOwner owner;
  const uint64 events = ExecuteSql(
      "SELECT event, from_name, to_name, table_name FROM syncline.schema_log WHERE event OPERATOR(pg_catalog.=) "
      "ANY ('{rename_table,drop_table,untrack}'::pg_catalog.text[]) ORDER BY version",
      true);
  std::string current = name;
  bool renamed = false;
  for (uint64 e = 0; e < events && !current.empty(); ++e) {
    const std::string event = ResultText(e, 1);
    if (event == "rename_table" && ResultText(e, 2) == current) {
      current = ResultText(e, 3);
      renamed = true;
    } else if (event != "rename_table" && ResultText(e, 4) == current) {
      current.clear();
    }
  }
  return renamed ? current : "";
}

namespace {

// syncline.column_default(rel, attnum): the default as a changeset value when
// it folds to a constant; NULL when it does not (now(), a sequence, a
// volatile function), which devices cannot evaluate.
Status ColumnDefault(FunctionCallInfo fcinfo, Datum* result) {
  const Oid relid = PG_GETARG_OID(0);
  const AttrNumber attnum = PG_GETARG_INT16(1);
  bool constant = false, isnull = true, exists = false;
  Datum value = (Datum)0;
  Oid type = InvalidOid;
  int32 typmod = -1;
  PgGuard([&] {
    Relation rel = relation_open(relid, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    if (attnum >= 1 && attnum <= desc->natts && !TupleDescAttr(desc, attnum - 1)->attisdropped) {
      exists = true;
      type = TupleDescAttr(desc, attnum - 1)->atttypid;
      typmod = TupleDescAttr(desc, attnum - 1)->atttypmod;
      Node* expression = build_column_default(rel, attnum);
      if (expression == nullptr) {
        constant = true;
      } else {
        expression = eval_const_expressions(nullptr, expression);
        if (IsA(expression, Const)) {
          constant = true;
          isnull = castNode(Const, expression)->constisnull;
          value = castNode(Const, expression)->constvalue;
        }
      }
    }
    relation_close(rel, AccessShareLock);
  });
  if (!exists) return Status(core::Code::kUndefinedColumn, "no column " + std::to_string(attnum));
  if (!constant) {
    fcinfo->isnull = true;
    *result = (Datum)0;
    return Status::Ok();
  }
  ColumnType column;
  LoadColumnType(type, typmod, CurrentMemoryContext, &column);
  std::string json;
  core::JsonWriter writer(&json);
  core::WriteValue(writer, DatumToValue(column, value, isnull));
  *result = JsonbFromText(json);
  return Status::Ok();
}

}  // namespace
}  // namespace syncline::pg

SYNCLINE_PG_FUNCTION(syncline_column_default, "syncline.column_default", syncline::pg::ColumnDefault)
