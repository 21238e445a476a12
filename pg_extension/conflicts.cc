#include "pg_extension/conflicts.h"

#include "pg_extension/pg_boundary.h"
#include "pg_extension/spi.h"

namespace syncline::pg {

using core::Code;
using core::Status;

void LogConflict(const ConflictEntry& entry, SPIPlanPtr* plan) {
  const core::Change& sent = *entry.sent;
  const core::Refusal& refusal = *entry.refusal;
  const std::string row = sent.op == core::Op::kUpsert ? core::ColumnsJson(sent.row) : std::string();
  AsExtensionOwner owner;
  if (*plan == nullptr)
    *plan = Prepare("INSERT INTO syncline.conflicts (node_id, role_name, table_name, pk, op, \"row\", hlc, origin, "
                    "scope, sqlstate, reason, answer, forget) VALUES ($1, $2, $3, $4::pg_catalog.jsonb, $5, "
                    "$6::pg_catalog.jsonb, $7, $8, $9::pg_catalog.jsonb, $10, $11, $12, $13)",
                    {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
                     TEXTOID, BOOLOID});
  Datum args[13] = {TextDatum(entry.device),
                    TextDatum(entry.role),
                    TextDatum(sent.table),
                    TextDatum(core::ColumnsJson(sent.pk)),
                    TextDatum(sent.op == core::Op::kUpsert ? "upsert" : "delete"),
                    TextDatum(row),
                    TextDatum(core::HlcToText(sent.hlc)),
                    TextDatum(sent.node),
                    TextDatum(entry.scope),
                    TextDatum(refusal.sqlstate),
                    TextDatum(refusal.reason.message()),
                    TextDatum(refusal.answered ? "restamped" : "none"),
                    BoolGetDatum(refusal.forget)};
  const char nulls[14] = {' ', ' ', ' ', ' ', ' ', row.empty() ? 'n' : ' ', ' ', ' ', entry.scope.empty() ? 'n' : ' ',
                          ' ', ' ', ' ', ' ', '\0'};
  Execute(*plan, args, nulls, false);
}

Status BindSource(const std::string& source, std::string* role) {
  bool super = false;
  const char* name = nullptr;
  PgGuard([&] {
    super = superuser();
    name = GetUserNameFromId(GetUserId(), false);
  });
  *role = name;
  AsExtensionOwner owner;
  SPIPlanPtr bind =
      Prepare("INSERT INTO syncline.devices AS d (node_id, role_name) VALUES ($1, $2) ON CONFLICT (node_id) DO UPDATE "
              "SET last_push = pg_catalog.now() RETURNING d.role_name",
              {TEXTOID, TEXTOID});
  Datum args[2] = {TextDatum(source), TextDatum(*role)};
  Execute(bind, args, "  ", false);
  const std::string bound = ResultText(0, 1);
  if (bound == *role || super) return Status::Ok();
  return Status(Code::kPermissionDenied,
                "batch: node " + source + " pushes as role \"" + bound + "\", not \"" + *role + "\"")
      .WithHint("Each device needs a node id of its own; an administrator can rebind one by deleting its row from "
                "syncline.devices.");
}

}  // namespace syncline::pg
