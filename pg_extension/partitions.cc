#include "pg_extension/partitions.h"

#include <set>
#include <unordered_set>
#include <utility>

#include "core/json.h"
#include "pg_extension/backend.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/rows_table.h"
#include "pg_extension/spi.h"
#include "pg_extension/tracking.h"

namespace syncline::pg {

using core::Code;
using core::Status;

std::vector<Partition> ListPartitions(Oid root) {
  AsExtensionOwner owner;  // reads syncline.tables
  SPIPlanPtr plan =
      Prepare("SELECT t.relid::pg_catalog.oid, pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' "
              "OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname), "
              "EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) t.relid "
              "AND g.tgname OPERATOR(pg_catalog.=) 'syncline_capture_insert'), "
              "EXISTS (SELECT 1 FROM syncline.tables s WHERE s.table_name OPERATOR(pg_catalog.=) c.relname::text "
              "AND s.table_schema OPERATOR(pg_catalog.=) n.nspname::text) "
              "FROM pg_catalog.pg_partition_tree($1::pg_catalog.regclass) t "
              "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid "
              "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
              "WHERE t.level OPERATOR(pg_catalog.>) 0 ORDER BY t.level, c.oid",
              {OIDOID});
  Datum args[1] = {ObjectIdGetDatum(root)};
  const uint64 rows = Execute(plan, args, " ", true);
  std::vector<Partition> partitions(rows);
  for (uint64 r = 0; r < rows; ++r) {
    bool isnull = false;
    partitions[r].relid = DatumGetObjectId(ResultDatum(r, 1, &isnull));
    partitions[r].name = ResultText(r, 2);
    partitions[r].captured = DatumGetBool(ResultDatum(r, 3, &isnull));
    partitions[r].tracked = DatumGetBool(ResultDatum(r, 4, &isnull));
  }
  return partitions;
}

Status CheckNoneTracked(const TableInfo& table, const std::vector<Partition>& partitions) {
  for (const Partition& partition : partitions)
    if (partition.tracked)
      return Status(Code::kInvalidInput, "table " + partition.name +
                                             " is tracked on its own and cannot be a partition "
                                             "of tracked table " +
                                             QualifiedName(table))
          .WithHint("Call syncline.untrack on " + partition.name + " first.");
  return Status::Ok();
}

Status TombstoneVanished(const TableInfo& table, int64* tombstoned) {
  *tombstoned = 0;
  std::unordered_set<std::string> present;
  Status status = ForEachKey(table, QualifiedName(table), [&](const std::string& key, const std::string&) {
    present.insert(key);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  std::vector<std::pair<std::string, std::string>> gone;  // key, scope
  {
    AsExtensionOwner owner;
    SPIPlanPtr plan =
        Prepare("SELECT pk, scope FROM syncline.rows WHERE tid OPERATOR(pg_catalog.=) $1 AND NOT deleted", {INT4OID});
    Datum args[1] = {Int32GetDatum(table.tid)};
    // Not read-only: the tombstones other capture triggers of this statement
    // wrote (a TRUNCATE of the root fires every partition's too) must count.
    const uint64 live = Execute(plan, args, " ", false);
    for (uint64 r = 0; r < live; ++r) {
      std::string key = ResultText(r, 1);
      if (present.count(key) == 0) gone.emplace_back(std::move(key), ResultText(r, 2));
    }
  }
  RowsTable rows;
  std::set<std::string> scopes;
  for (const auto& [key, scope] : gone) {
    std::optional<core::Hlc> written = rows.Write(table.tid, key, NextStamp(), true, scope, false, false);
    if (written) ReceiveStamp(*written);
    scopes.insert(scope);
    ++*tombstoned;
  }
  // Watching devices hear of it as of any write (docs/postgres.md, "NOTIFY").
  for (const std::string& scope : scopes) {
    if (!table.notify) break;
    std::string payload;
    core::JsonWriter writer(&payload);
    writer.BeginObject();
    writer.Key("table");
    writer.String(table.name);
    writer.EndObject();
    if (!scope.empty()) payload = payload.substr(0, payload.size() - 1) + ",\"scope\":" + scope + "}";
    const char* text = payload.c_str();
    PgGuard([&] { Async_Notify("syncline", text); });
  }
  return Status::Ok();
}

namespace {

// Tables with syncline's capture triggers that are no longer a tracked table
// or part of one: partitions detached from a tracked table.
std::vector<Partition> Detached() {
  AsExtensionOwner owner;
  const uint64 rows = ExecuteSql(
      "SELECT c.oid, pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) "
      "pg_catalog.quote_ident(c.relname) FROM pg_catalog.pg_trigger g "
      "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid "
      "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
      "WHERE g.tgname OPERATOR(pg_catalog.=) 'syncline_capture_insert' "
      "AND g.tgfoid OPERATOR(pg_catalog.=) 'syncline.capture()'::pg_catalog.regprocedure "
      "AND NOT EXISTS (SELECT 1 FROM syncline.tables s WHERE s.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid "
      "OR s.relid::pg_catalog.oid OPERATOR(pg_catalog.=) "
      "pg_catalog.pg_partition_root(c.oid::pg_catalog.regclass)::pg_catalog.oid)",
      true);
  std::vector<Partition> detached(rows);
  for (uint64 r = 0; r < rows; ++r) {
    bool isnull = false;
    detached[r].relid = DatumGetObjectId(ResultDatum(r, 1, &isnull));
    detached[r].name = ResultText(r, 2);
    detached[r].captured = true;
  }
  return detached;
}

// syncline.follow_partitions(tid, reconcile), from the event triggers after
// DDL on a tracked partitioned table or one of its partitions: capture
// triggers and a backfill for partitions created or attached, none for
// partitions detached, and tombstones for rows that left the table (with
// `reconcile`, or when a partition was detached).
Status FollowPartitions(FunctionCallInfo fcinfo, Datum* result) {
  *result = (Datum)0;
  if (backend().changing_triggers > 0) return Status::Ok();  // syncline's own DDL
  ChangingTriggers changing;
  const int32 tid = PG_GETARG_INT32(0);
  bool reconcile = PG_GETARG_BOOL(1);
  SpiSession spi;
  TableInfo table;
  bool found = false;
  Status status = FindTrackedById(tid, CurrentMemoryContext, &table, &found);
  if (!status.ok() || !found) return status;
  char kind = 0;
  const Oid relid = table.relid;
  PgGuard([&] { kind = get_rel_relkind(relid); });
  if (kind != RELKIND_PARTITIONED_TABLE) return Status::Ok();

  const std::vector<Partition> partitions = ListPartitions(table.relid);
  status = CheckNoneTracked(table, partitions);
  if (!status.ok()) return status;
  for (const Partition& partition : partitions) {
    if (!partition.captured) {
      InstallCaptureTriggers(partition.relid, partition.name);
      int64 backfilled = 0;
      status = Backfill(table, partition.name, &backfilled);
      if (!status.ok()) return status;
    }
    // A partition's capture cache holds the root's name: renames reach it.
    const Oid partition_relid = partition.relid;
    PgGuard([&] { CacheInvalidateRelcacheByRelid(partition_relid); });
  }
  for (const Partition& gone : Detached()) {
    ExecuteSql(DropCaptureTriggersSql(gone.relid, gone.name), false);
    reconcile = true;
  }
  if (reconcile) {
    int64 tombstoned = 0;
    status = TombstoneVanished(table, &tombstoned);
  }
  return status;
}

}  // namespace
}  // namespace syncline::pg

SYNCLINE_PG_FUNCTION(syncline_follow_partitions, "syncline.follow_partitions", syncline::pg::FollowPartitions)
