// track, untrack, peer_cursor, hlc_now.
#include <optional>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/json.h"
#include "core/node_id.h"
#include "pg_extension/backend.h"
#include "pg_extension/partitions.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/schema.h"
#include "pg_extension/spi.h"
#include "pg_extension/tables.h"
#include "pg_extension/tracking.h"

namespace syncline::pg {

using core::Code;
using core::Status;

namespace {

// Every trigger track() installs, as a text[] literal.
constexpr const char* kTriggerNames =
    "{syncline_capture_insert,syncline_capture_update,syncline_capture_delete,syncline_truncate}";

Status CheckOwner(Oid relid) {
  bool owner = false;
  PgGuard([&] { owner = pg_class_ownercheck(relid, GetUserId()); });
  if (!owner) {
    const char* name = nullptr;
    PgGuard([&] { name = get_rel_name(relid); });
    return Status(Code::kPermissionDenied, "must be owner of table " + Quote(name));
  }
  return Status::Ok();
}

struct TrackOptions {
  std::string scope;
  bool notify = true;
  std::string authorize;                 // function name as given
  std::optional<core::MergeMode> merge;  // none: a tracked table keeps its mode, a new one merges rows
};

Status ParseTrackOptions(const std::string& text, TrackOptions* out) {
  core::Json json;
  Status status = core::ParseJson(text, &json);
  if (!status.ok()) return status.WithPrefix("options: ");
  if (!json.is_object()) return Status(Code::kInvalidInput, "options: must be a JSON object");
  for (const auto& [key, value] : json.members) {
    if (key == "scope") {
      if (!value.is_string() || value.text.empty())
        return Status(Code::kInvalidInput, "options: \"scope\" must name a column");
      out->scope = value.text;
    } else if (key == "notify") {
      if (value.kind != core::Json::Kind::kTrue && value.kind != core::Json::Kind::kFalse)
        return Status(Code::kInvalidInput, "options: \"notify\" must be true or false");
      out->notify = value.kind == core::Json::Kind::kTrue;
    } else if (key == "authorize") {
      if (!value.is_string() || value.text.empty())
        return Status(Code::kInvalidInput,
                      "options: \"authorize\" must name a function (scope jsonb) returning boolean");
      out->authorize = value.text;
    } else if (key == "merge") {
      if (!value.is_string() || (value.text != "row" && value.text != "column"))
        return Status(Code::kInvalidInput, "options: \"merge\" must be \"row\" or \"column\"");
      out->merge = value.text == "column" ? core::MergeMode::kColumn : core::MergeMode::kRow;
    } else {
      return Status(Code::kInvalidInput,
                    "options: unknown option \"" + key + "\" (known: scope, notify, authorize, merge)");
    }
  }
  return Status::Ok();
}

// track() in steps, each needing an SPI session: validate the table,
// resolve the authorisation hook, register the table, install the capture
// triggers, backfill the metadata of the rows it has.

// Refuses a table syncline cannot track, and resolves the scope column.
Status ValidateTrackable(const TrackOptions& options, TableInfo* table) {
  const std::string name = QualifiedName(*table);
  if (table->pk.empty())
    return Status(Code::kInvalidInput, "table " + name + " has no primary key")
        .WithDetail("syncline identifies rows by their primary key.");
  if (table->schema == "syncline") return Status(Code::kInvalidInput, "syncline's own tables cannot be tracked");
  // Capture is per statement: a statement fires the statement triggers of
  // the table it names only, and its transition tables hold the rows of
  // that table's inheritance children too. A partitioned table is tracked
  // as a whole (its partitions get triggers of their own that capture for
  // it); a partition alone, or a table in an inheritance hierarchy, cannot
  // be.
  char kind = 0;
  Oid root = InvalidOid;
  PgGuard([&] {
    kind = get_rel_relkind(table->relid);
    if (get_rel_relispartition(table->relid)) {
      List* ancestors = get_partition_ancestors(table->relid);
      root = llast_oid(ancestors);
      list_free(ancestors);
    }
  });
  if (OidIsValid(root)) {
    const std::string root_name = RelationName(root);
    return Status(Code::kInvalidInput, "table " + name + " is a partition of " + root_name)
        .WithDetail("A partitioned table is tracked as a whole, with all its partitions.")
        .WithHint("Track " + root_name + ".");
  }
  if (kind == RELKIND_RELATION) {
    SPIPlanPtr family = Prepare("SELECT 1 FROM pg_catalog.pg_inherits WHERE inhparent OPERATOR(pg_catalog.=) $1 OR "
                                "inhrelid OPERATOR(pg_catalog.=) $1 LIMIT 1",
                                {OIDOID});
    Datum relid_arg[1] = {ObjectIdGetDatum(table->relid)};
    if (Execute(family, relid_arg, " ", true) > 0)
      return Status(Code::kInvalidInput, "table " + name + " uses table inheritance")
          .WithDetail("syncline tracks ordinary and declaratively partitioned tables (PARTITION BY), not tables "
                      "that inherit or are inherited from (INHERITS): capture cannot tell a parent's rows from its "
                      "children's.");
  }
  if (!options.scope.empty()) {
    for (std::size_t i = 0; i < table->columns.size(); ++i) {
      if (table->columns[i].name == options.scope) table->scope = static_cast<int>(i);
    }
    if (table->scope < 0)
      return Status(Code::kUndefinedColumn, "table " + name + " has no column \"" + options.scope + "\" to scope by");
  }
  return Status::Ok();
}

// The authorisation hook: a function (scope jsonb) RETURNS boolean that
// pulls and applies call as the caller (docs/security.md). `authorize` is
// its regprocedure text, "" when the options name none.
Status ResolveAuthorize(const TrackOptions& options, const TableInfo& table, std::string* authorize) {
  authorize->clear();
  if (options.authorize.empty()) return Status::Ok();
  if (table.scope < 0) return Status(Code::kInvalidInput, "options: \"authorize\" needs a \"scope\" column");
  SPIPlanPtr find =
      Prepare("SELECT p.oid::pg_catalog.regprocedure::text FROM pg_catalog.pg_proc p "
              "WHERE p.oid = pg_catalog.to_regprocedure($1 OPERATOR(pg_catalog.||) '(jsonb)') AND p.prorettype = "
              "'pg_catalog.bool'::pg_catalog.regtype",
              {TEXTOID});
  Datum arg[1] = {TextDatum(options.authorize)};
  if (Execute(find, arg, " ", true) == 0) {
    Status missing =
        Status(Code::kUndefinedTable, "options: no function " + options.authorize + "(jsonb) returning boolean");
    if (options.authorize.find('.') != std::string::npos) return missing;
    return missing.WithHint("Name it with its schema, e.g. public." + options.authorize + ".");
  }
  *authorize = ResultText(0, 1);
  return Status::Ok();
}

// The primary key's column names as a text[] literal.
std::string PrimaryKeyArray(const TableInfo& table) {
  std::string pk_columns = "{";
  for (std::size_t k = 0; k < table.pk.size(); ++k) {
    std::string column = table.columns[table.pk[k]].name;
    std::string escaped;
    for (char c : column) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    pk_columns += (k > 0 ? ",\"" : "\"") + escaped + "\"";
  }
  return pk_columns + "}";
}

// Adds the table to syncline.tables, or updates its row when tracked
// already, and sets its tid.
Status RegisterTable(const TrackOptions& options, const std::string& authorize, TableInfo* table) {
  AsExtensionOwner owner;
  SPIPlanPtr other = Prepare("SELECT table_schema FROM syncline.tables WHERE table_name = $1 AND table_schema <> $2",
                             {TEXTOID, TEXTOID});
  Datum names[2] = {TextDatum(table->name), TextDatum(table->schema)};
  if (Execute(other, names, "  ", true) > 0)
    return Status(Code::kInvalidInput,
                  "a table named " + Quote(table->name) + " is already tracked in schema " + Quote(ResultText(0, 1)))
        .WithDetail("Batches name tables unqualified, so tracked tables need names unique across schemas.");
  // 0.1's tables have no merge mode; a column-merge table needs 0.2's
  // syncline.rows.cols.
  int64 schema_version = 0;
  const bool has_merge = ReadSchemaVersion(&schema_version);
  if (!has_merge && options.merge == core::MergeMode::kColumn)
    return Status(Code::kInvalidInput, "column-level merge needs syncline 0.2 or later")
        .WithHint("ALTER EXTENSION syncline UPDATE");
  const std::string merge_text = options.merge == core::MergeMode::kColumn ? "column" : "row";
  std::string merge_before;  // "" when not tracked yet
  if (has_merge) {
    SPIPlanPtr before = Prepare("SELECT merge FROM syncline.tables WHERE table_name = $1", {TEXTOID});
    if (Execute(before, names, "  ", true) > 0) merge_before = ResultText(0, 1);
  }
  SPIPlanPtr upsert = Prepare(
      std::string("INSERT INTO syncline.tables AS t (table_schema, table_name, pk_columns, scope_column, notify, "
                  "authorize") +
          (has_merge ? ", merge" : "") + ") VALUES ($1, $2, $3::text[], $4, $5, $6" +
          (has_merge ? ", COALESCE($7, 'row')" : "") +
          ") ON CONFLICT (table_name) DO UPDATE SET pk_columns = EXCLUDED.pk_columns, scope_column = "
          "EXCLUDED.scope_column, notify = EXCLUDED.notify, authorize = EXCLUDED.authorize" +
          (has_merge ? ", merge = COALESCE($7, t.merge) RETURNING tid, merge" : " RETURNING tid, 'row'"),
      {TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID});
  Datum values[7] = {TextDatum(table->schema),
                     TextDatum(table->name),
                     TextDatum(PrimaryKeyArray(*table)),
                     options.scope.empty() ? (Datum)0 : TextDatum(options.scope),
                     BoolGetDatum(options.notify),
                     authorize.empty() ? (Datum)0 : TextDatum(authorize),
                     TextDatum(merge_text)};
  char nulls[8] = "       ";
  if (options.scope.empty()) nulls[3] = 'n';
  if (authorize.empty()) nulls[5] = 'n';
  if (!options.merge) nulls[6] = 'n';
  Execute(upsert, values, nulls, false);
  table->tid = static_cast<int32>(ResultInt64(0, 1));
  table->merge = ResultText(0, 2) == "column" ? core::MergeMode::kColumn : core::MergeMode::kRow;
  // Devices follow a change of mode with the server's schema (docs/column-merge.md).
  if (!merge_before.empty() && merge_before != ResultText(0, 2)) {
    SPIPlanPtr log = Prepare("SELECT syncline.log_schema($1, 'merge', $2)", {INT4OID, TEXTOID});
    Datum args[2] = {Int32GetDatum(table->tid), TextDatum(table->name)};
    Execute(log, args, "  ", false);
  }
  // Back to row merge: the rows' column stamps go (every column at its
  // row's version, which is what a row-merge row is).
  if (has_merge && options.merge == core::MergeMode::kRow)
    ExecuteSql("UPDATE syncline.rows SET cols = NULL WHERE tid = " + std::to_string(table->tid) +
                   " AND cols IS NOT NULL",
               false);
  return Status::Ok();
}

}  // namespace

// Statement-level triggers, one per event with its transition tables (one
// plan execution per statement, not per row), that fire whatever
// session_replication_role says: a write under "replica" is captured like
// any other. Re-tracking replaces them (DROP ... IF EXISTS would send a
// notice).
void InstallCaptureTriggers(Oid relid, const std::string& name) {
  std::string sql = DropCaptureTriggersSql(relid, name);
  const std::pair<const char*, std::string> capture_triggers[] = {
      {"syncline_capture_insert", "AFTER INSERT ON " + name + " REFERENCING NEW TABLE AS syncline_new"},
      {"syncline_capture_update",
       "AFTER UPDATE ON " + name + " REFERENCING OLD TABLE AS syncline_old NEW TABLE AS syncline_new"},
      {"syncline_capture_delete", "AFTER DELETE ON " + name + " REFERENCING OLD TABLE AS syncline_old"}};
  for (const auto& [trigger, event] : capture_triggers)
    sql += std::string("CREATE TRIGGER ") + trigger + " " + event +
           " FOR EACH STATEMENT EXECUTE FUNCTION syncline.capture();";
  sql += "CREATE TRIGGER syncline_truncate AFTER TRUNCATE ON " + name +
         " FOR EACH STATEMENT EXECUTE FUNCTION syncline.capture_truncate();";
  for (const char* trigger :
       {"syncline_capture_insert", "syncline_capture_update", "syncline_capture_delete", "syncline_truncate"})
    sql += "ALTER TABLE " + name + " ENABLE ALWAYS TRIGGER " + trigger + ";";
  ExecuteSql(sql, false);
}

std::string DropCaptureTriggersSql(Oid relid, const std::string& name) {
  SPIPlanPtr existing = Prepare(
      "SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = ANY ($2::pg_catalog.text[])",
      {OIDOID, TEXTOID});
  Datum existing_args[2] = {ObjectIdGetDatum(relid), TextDatum(kTriggerNames)};
  uint64 triggers = Execute(existing, existing_args, "  ", true);
  std::string sql;
  for (uint64 t = 0; t < triggers; ++t)
    sql += "DROP TRIGGER " + ResultText(t, 1) + " ON " + name + ";";
  return sql;
}

namespace {

// A local version for each row that has no live one (a tombstone is
// revived, a live version kept).
SPIPlanPtr PrepareBackfillInsert() {
  int64 schema_version = 0;
  const bool has_cols = ReadSchemaVersion(&schema_version);  // 0.2: a revived row's columns are all at its stamp
  AsExtensionOwner owner;
  return Prepare("INSERT INTO syncline.rows AS r (tid, pk, clock, hlc, node, deleted, scope, xid, seq) "
                 "VALUES ($1, $2, 1, $3, 0, false, $4, pg_catalog.pg_current_xact_id(), "
                 "pg_catalog.nextval('syncline.rows_seq'::pg_catalog.regclass)) "
                 "ON CONFLICT (tid, pk) DO UPDATE SET clock = " +
                     NextInt8("r.clock") + ", hlc = pg_catalog.int8larger($3, " + NextInt8("r.hlc") +
                     "), node = 0, deleted = false, scope = EXCLUDED.scope, xid = EXCLUDED.xid, seq = EXCLUDED.seq" +
                     (has_cols ? ", cols = NULL" : "") + " WHERE r.deleted",
                 {INT4OID, TEXTOID, INT8OID, TEXTOID});
}

}  // namespace

Status Backfill(const TableInfo& table, const std::string& source, int64* backfilled) {
  SPIPlanPtr insert = PrepareBackfillInsert();
  *backfilled = 0;
  return ForEachKey(table, source, [&](const std::string& key, const std::string& scope) {
    Datum values[4] = {Int32GetDatum(table.tid), TextDatum(key), Int64GetDatum(static_cast<int64>(NextStamp())),
                       scope.empty() ? (Datum)0 : TextDatum(scope)};
    char nulls[5] = "    ";
    if (scope.empty()) nulls[3] = 'n';
    AsExtensionOwner owner;
    *backfilled += static_cast<int64>(Execute(insert, values, nulls, false));
    return Status::Ok();
  });
}

namespace {

// What track() returns: the table, its key and scope, the rows backfilled.
std::string TrackSummary(const TableInfo& table, const TrackOptions& options, int64 backfilled) {
  std::string summary;
  core::JsonWriter out(&summary);
  out.BeginObject();
  out.Key("table");
  out.String(table.name);
  out.Key("schema");
  out.String(table.schema);
  out.Key("primary_key");
  out.BeginArray();
  for (int index : table.pk)
    out.String(table.columns[index].name);
  out.EndArray();
  out.Key("scope");
  if (options.scope.empty())
    out.Null();
  else
    out.String(options.scope);
  out.Key("merge");
  out.String(table.merge == core::MergeMode::kColumn ? "column" : "row");
  out.Key("backfilled");
  out.Int(backfilled);
  out.EndObject();
  return summary;
}

Status Track(FunctionCallInfo fcinfo, Datum* result) {
  Oid relid = PG_GETARG_OID(0);
  Status status = WritableServer("track tables on the primary");
  if (!status.ok()) return status;
  TrackOptions options;
  status = ParseTrackOptions(JsonbText(PG_GETARG_DATUM(1)), &options);
  if (!status.ok()) return status;
  if (GetDatabaseEncoding() != PG_UTF8)
    return Status(Code::kInvalidInput, "syncline needs a database with UTF8 encoding (batches are UTF-8)");
  status = CheckOwner(relid);
  if (!status.ok()) return status;

  std::string summary;
  {
    ChangingTriggers changing;  // the event triggers leave this DDL to us
    SpiSession spi;
    TableInfo table;
    std::string authorize;
    std::vector<Partition> partitions;
    int64 backfilled = 0;
    status = LoadShape(relid, CurrentMemoryContext, &table);
    if (status.ok()) status = ValidateTrackable(options, &table);
    if (status.ok()) partitions = ListPartitions(relid);
    if (status.ok()) status = CheckNoneTracked(table, partitions);
    if (status.ok()) status = ResolveAuthorize(options, table, &authorize);
    if (status.ok()) status = RegisterTable(options, authorize, &table);
    if (!status.ok()) return status;
    InstallCaptureTriggers(table.relid, QualifiedName(table));
    for (const Partition& partition : partitions)
      InstallCaptureTriggers(partition.relid, partition.name);
    status = Backfill(table, QualifiedName(table), &backfilled);
    if (!status.ok()) return status;
    summary = TrackSummary(table, options, backfilled);
  }
  *result = JsonbFromText(summary);
  return Status::Ok();
}

Status Untrack(FunctionCallInfo fcinfo, Datum* result) {
  Oid relid = PG_GETARG_OID(0);
  Status status = WritableServer("untrack tables on the primary");
  if (status.ok()) status = CheckOwner(relid);
  if (!status.ok()) return status;
  bool was_tracked = false;
  {
    ChangingTriggers changing;
    SpiSession spi;
    TableInfo table;
    status = FindTrackedByRelid(relid, CurrentMemoryContext, &table, &was_tracked);
    if (!status.ok()) return status;
    if (was_tracked) {
      std::string sql = DropCaptureTriggersSql(table.relid, QualifiedName(table));
      for (const Partition& partition : ListPartitions(table.relid))
        if (partition.captured) sql += DropCaptureTriggersSql(partition.relid, partition.name);
      ExecuteSql(sql, false);
      AsExtensionOwner owner;
      ExecuteSql("DELETE FROM syncline.rows WHERE tid = " + std::to_string(table.tid) +
                     "; DELETE FROM syncline.tables WHERE tid = " + std::to_string(table.tid),
                 false);
    }
  }
  *result = BoolGetDatum(was_tracked);
  return Status::Ok();
}

Status PeerCursor(FunctionCallInfo fcinfo, Datum* result) {
  const char* node = nullptr;
  Datum uuid = PG_GETARG_DATUM(0);
  PgGuard([&] { node = DatumGetCString(DirectFunctionCall1(uuid_out, uuid)); });
  core::PullOptions options;
  Status status = core::ParsePullOptions(JsonbText(PG_GETARG_DATUM(1)), &options);
  if (!status.ok()) return status;
  std::optional<std::string> cursor;
  {
    SpiSession spi;
    AsExtensionOwner owner;
    SPIPlanPtr plan =
        Prepare("SELECT cursor FROM syncline.peers WHERE node_id = $1 AND filter = $2", {TEXTOID, TEXTOID});
    Datum args[2] = {TextDatum(node), TextDatum(core::FilterFingerprint(options))};
    if (Execute(plan, args, "  ", true) > 0) cursor = ResultText(0, 1);
  }
  if (!cursor) {
    fcinfo->isnull = true;
    *result = (Datum)0;
    return Status::Ok();
  }
  *result = TextDatum(*cursor);
  return Status::Ok();
}

Status HlcNow(FunctionCallInfo, Datum* result) {
  std::string text;
  {
    SpiSession spi;
    text = core::HlcToText(NextStamp());
  }
  *result = TextDatum(text);
  return Status::Ok();
}

}  // namespace
}  // namespace syncline::pg

SYNCLINE_PG_FUNCTION(syncline_track, "syncline.track", syncline::pg::Track)
SYNCLINE_PG_FUNCTION(syncline_untrack, "syncline.untrack", syncline::pg::Untrack)
SYNCLINE_PG_FUNCTION(syncline_peer_cursor, "syncline.peer_cursor", syncline::pg::PeerCursor)
SYNCLINE_PG_FUNCTION(syncline_hlc_now, "syncline.hlc_now", syncline::pg::HlcNow)
