// apply_push for PostgreSQL: the SQL entry points, which decode a batch and
// run the core merge (core/merge.h) through PgStore (apply_store.h). How it
// reads and writes is described in docs/postgres.md, "apply_push(batch)".
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/changeset.h"
#include "core/hlc.h"
#include "core/merge.h"
#include "pg_extension/apply_store.h"
#include "pg_extension/backend.h"
#include "pg_extension/conflicts.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/spi.h"

namespace syncline::pg {

using core::Status;

namespace {

// The batch text, as the function's argument holds it (not copied).
Status ApplyText(std::string_view text, Datum* result) {
  Status status = WritableServer("push to the primary");
  if (!status.ok()) return status;
  core::Batch batch;
  status = core::DecodeBatch(text, &batch);
  if (!status.ok()) return status;
  std::string summary;
  {
    SpiSession spi;
    Applying applying;
    core::MergeOptions options;
    options.local_node = LocalNodeId();
    options.wall_ms = core::WallClockMs();
    options.copied_database_docs = "docs/postgres.md, \"Backups and copies\"";
    options.count_rewritten = true;
    {
      AsExtensionOwner owner;
      if (ExecuteSql("SELECT value::pg_catalog.int8 FROM syncline.meta WHERE key OPERATOR(pg_catalog.=) "
                     "'max_drift_ms'",
                     true) > 0)
        options.max_drift_ms = ResultInt64(0, 1);
    }
    options.role = core::MergeRole::kServer;
    std::string role;
    status = BindSource(batch.source, &role);
    if (!status.ok()) return status;
    PgStore store(batch, options.local_node, role);
    store.PrepareStatements();
    core::MergeResult result;
    ErrorData* error = nullptr;
    try {
      status = core::Merge(batch, store, options, &result);
    } catch (PgError& caught) {
      error = caught.data;
    } catch (...) {
      store.EndConversions();
      throw;
    }
    store.EndConversions();
    // PostgreSQL's own error (a constraint, an input syntax, a privilege),
    // prefixed with the change at fault.
    if (error == nullptr && !status.ok() && result.failed != static_cast<std::size_t>(-1))
      error = store.KeptError(result.failed);
    if (error != nullptr) {
      std::optional<std::size_t> at = error == store.KeptError(result.failed) ? result.failed : store.current();
      PgError raised{error};
      if (at) PrefixError(raised, "syncline.apply_push: " + core::ChangeContext(*at, batch.changes[*at].table));
      throw raised;
    }
    if (!status.ok()) return status;
    {
      AsExtensionOwner owner;
      SPIPlanPtr save =
          pg::Prepare("UPDATE syncline.meta SET value = pg_catalog.int8larger(value::pg_catalog.int8, $1)::text "
                      "WHERE key OPERATOR(pg_catalog.=) 'hlc'",
                      {INT8OID});
      Datum clock[1] = {Int64GetDatum(static_cast<int64>(backend().clock))};
      Execute(save, clock, " ", false);
    }
    summary = std::move(result.summary);
  }
  *result = JsonbFromText(summary);
  return Status::Ok();
}

Status ApplyPush(FunctionCallInfo fcinfo, Datum* result) {
  const char* data = nullptr;
  int size = 0;
  Datum arg = PG_GETARG_DATUM(0);
  PgGuard([&] {
    text* batch = DatumGetTextPP(arg);  // detoasting may raise an error
    data = VARDATA_ANY(batch);
    size = VARSIZE_ANY_EXHDR(batch);
  });
  return ApplyText(std::string_view(data, static_cast<std::size_t>(size)), result);
}

// apply_push(jsonb), for batches at hand in psql: the same, through jsonb's text.
Status ApplyPushJsonb(FunctionCallInfo fcinfo, Datum* result) {
  return ApplyText(JsonbText(PG_GETARG_DATUM(0)), result);
}

}  // namespace
}  // namespace syncline::pg

SYNCLINE_PG_FUNCTION(syncline_apply_push, "syncline.apply_push", syncline::pg::ApplyPush)
SYNCLINE_PG_FUNCTION(syncline_apply_push_jsonb, "syncline.apply_push", syncline::pg::ApplyPushJsonb)
