// The device's conflict log, syncline_conflicts (docs/sqlite.md,
// "Conflicts"): versions from the server this file could not store (logged
// by apply_push, and applied again by syncline_retry_conflicts), and the
// changes of this device the server refused (copied in by the client), whose
// rows syncline_forget drops when the server says its answer cannot reach
// this device by a pull.
#include "sqlite_extension/conflicts.h"

#include <optional>

#include "core/changeset.h"
#include "core/json.h"
#include "sqlite_extension/sqlite_util.h"
#include "sqlite_extension/sync.h"
#include "sqlite_extension/tracking.h"

namespace syncline::sqlite {

using core::Code;
using core::Status;
using core::Value;

namespace {

constexpr const char* kCreateConflictLog = R"sql(
CREATE TABLE IF NOT EXISTS syncline_conflicts(
  id INTEGER PRIMARY KEY,
  at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  side TEXT NOT NULL CHECK (side IN ('local', 'server')),
  server_id INTEGER UNIQUE,
  table_name TEXT NOT NULL,
  pk TEXT NOT NULL,
  op TEXT NOT NULL,
  "row" TEXT,
  hlc TEXT NOT NULL,
  origin TEXT NOT NULL,
  sqlstate TEXT NOT NULL,
  reason TEXT NOT NULL,
  answer TEXT NOT NULL,
  forget INTEGER NOT NULL DEFAULT 0,
  change TEXT,
  resolved_at TEXT
);
)sql";

}  // namespace

Status EnsureConflictLog(sqlite3* db) { return Exec(db, kCreateConflictLog); }

Status LogLocalRefusal(sqlite3* db, const core::Batch& batch, std::size_t index, const core::Refusal& refusal) {
  Status status = EnsureConflictLog(db);
  if (!status.ok()) return status;
  const core::Change& change = batch.changes[index];
  // The change as received, alone in a batch from the same source, so that
  // syncline_retry_conflicts can apply it again.
  core::BatchWriter writer(batch.source);
  writer.Add(change);
  Statement insert;
  status = insert.Prepare(db, "INSERT INTO syncline_conflicts(side, table_name, pk, op, \"row\", hlc, origin, "
                              "sqlstate, reason, answer, change) VALUES ('local', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                              "'skipped', ?9)");
  if (!status.ok()) return status;
  insert.BindText(1, change.table);
  insert.BindText(2, core::ColumnsJson(change.pk));
  insert.BindText(3, change.op == core::Op::kUpsert ? "upsert" : "delete");
  if (change.op == core::Op::kUpsert)
    insert.BindText(4, core::ColumnsJson(change.row));
  else
    insert.BindNull(4);
  insert.BindText(5, core::HlcToText(change.hlc));
  insert.BindText(6, change.node);
  insert.BindText(7, refusal.sqlstate);
  insert.BindText(8, refusal.reason.message());
  insert.BindText(9, writer.Finish("", false));
  return insert.Run();
}

Status Forget(ConnectionState& state, const std::string& table_name, const std::string& pk_json,
              const std::string& hlc_text, bool* dropped) {
  sqlite3* db = state.db;
  *dropped = false;
  Status status = EnsureMetadata(db);
  if (!status.ok()) return status;
  TableInfo table;
  bool found = false;
  status = FindTrackedTable(db, table_name, &table, &found);
  if (!status.ok() || !found) return status;  // no such table here: nothing to drop
  auto hlc = core::HlcFromText(hlc_text);
  if (!hlc) return Status(Code::kInvalidInput, "hlc must be 16 hex digits, got \"" + hlc_text + "\"");
  core::Json pk;
  status = core::ParseJson(pk_json, &pk);
  if (!status.ok() || !pk.is_object()) return Status(Code::kInvalidInput, "pk must be a JSON object of key columns");
  std::vector<Value> key(table.pk.size());
  for (std::size_t k = 0; k < table.pk.size(); ++k) {
    const core::Json* value = pk.Find(table.columns[table.pk[k]]);
    if (value == nullptr)
      return Status(Code::kInvalidInput, "pk lacks key column \"" + table.columns[table.pk[k]] + "\"");
    status = core::DecodeValue(*value, &key[k]);
    if (!status.ok()) return status.WithPrefix("pk: ");
  }
  Value meta_key;
  status = EncodeMetadataKey(key, &meta_key);
  if (!status.ok()) return status;
  // Only the version the server refused: a later edit here stands.
  Statement version;
  status = version.Prepare(db, "SELECT 1 FROM syncline_rows WHERE tid = ?1 AND pk = ?2 AND hlc = ?3 AND node = ?4");
  if (!status.ok()) return status;
  version.BindInt(1, table.tid);
  version.BindValue(2, meta_key);
  version.BindInt(3, static_cast<std::int64_t>(*hlc));
  version.BindInt(4, kLocalNodeRef);
  bool current = false;
  status = version.Step(&current);
  if (!status.ok() || !current) return status;
  Savepoint savepoint(db, "syncline_forget");
  if (!savepoint.status().ok()) return savepoint.status();
  Statement remove;
  status = remove.Prepare(db, "DELETE FROM " + QuoteIdentifier(table.name) + " WHERE " + KeyPredicate(table));
  if (!status.ok()) return status;
  for (std::size_t k = 0; k < key.size(); ++k)
    remove.BindValue(static_cast<int>(k + 1), key[k]);
  // Not a local write: capture leaves the row alone, as for an applied one.
  ++state.applying;
  state.applied_tid = table.tid;
  state.applied_key = &meta_key;
  status = remove.Run();
  state.applied_key = nullptr;
  --state.applying;
  if (!status.ok()) return status;
  // The metadata stays, at the same version (the version is a position the
  // server acknowledged), as a tombstone below every stamp: any version the
  // server sends beats it, and nothing is pushed again.
  Statement forget;
  status = forget.Prepare(db, "UPDATE syncline_rows SET hlc = 0, deleted = 1 WHERE tid = ?1 AND pk = ?2");
  if (!status.ok()) return status;
  forget.BindInt(1, table.tid);
  forget.BindValue(2, meta_key);
  status = forget.Run();
  if (!status.ok()) return status;
  *dropped = true;
  return savepoint.Release();
}

Status NoteServerConflict(ConnectionState& state, const std::string& entry_json, bool* dropped) {
  sqlite3* db = state.db;
  *dropped = false;
  core::Json entry;
  Status status = core::ParseJson(entry_json, &entry);
  if (!status.ok() || !entry.is_object())
    return Status(Code::kInvalidInput, "a server conflict entry must be a JSON object");
  // Members as the server's syncline.conflicts names them.
  auto text = [&](const char* name, std::string* out) -> Status {
    const core::Json* value = entry.Find(name);
    if (value == nullptr || (!value->is_string() && !value->is_number()))
      return Status(Code::kInvalidInput, std::string("the server conflict entry lacks \"") + name + "\"");
    *out = value->text;
    return Status::Ok();
  };
  // pk and row arrive as JSON text (strings), as the server stored them.
  auto json = [&](const char* name, std::string* out) {
    const core::Json* value = entry.Find(name);
    out->clear();
    if (value != nullptr && value->is_string()) *out = value->text;
  };
  std::string id, table, op, hlc, origin, sqlstate, reason, answer, pk, row;
  for (auto [name, out] : {std::pair{"id", &id},
                           {"table_name", &table},
                           {"op", &op},
                           {"hlc", &hlc},
                           {"origin", &origin},
                           {"sqlstate", &sqlstate},
                           {"reason", &reason},
                           {"answer", &answer}}) {
    status = text(name, out);
    if (!status.ok()) return status;
  }
  json("pk", &pk);
  json("row", &row);
  const core::Json* forget = entry.Find("forget");
  const bool must_forget = forget != nullptr && forget->kind == core::Json::Kind::kTrue;
  status = EnsureConflictLog(db);
  if (!status.ok()) return status;
  Statement insert;
  status = insert.Prepare(db, "INSERT OR IGNORE INTO syncline_conflicts(side, server_id, table_name, pk, op, \"row\", "
                              "hlc, origin, sqlstate, reason, answer, forget) VALUES ('server', ?1, ?2, ?3, ?4, ?5, "
                              "?6, ?7, ?8, ?9, ?10, ?11)");
  if (!status.ok()) return status;
  insert.BindInt(1, std::stoll(id));
  insert.BindText(2, table);
  insert.BindText(3, pk);
  insert.BindText(4, op);
  if (row.empty())
    insert.BindNull(5);
  else
    insert.BindText(5, row);
  insert.BindText(6, hlc);
  insert.BindText(7, origin);
  insert.BindText(8, sqlstate);
  insert.BindText(9, reason);
  insert.BindText(10, answer);
  insert.BindInt(11, must_forget ? 1 : 0);
  status = insert.Run();
  if (!status.ok() || !must_forget) return status;
  return Forget(state, table, pk, hlc, dropped);
}

Status PruneConflicts(sqlite3* db, std::int64_t resolved_days, std::int64_t kept_days, std::int64_t* pruned) {
  *pruned = 0;
  if (resolved_days < 0 || kept_days < 0) return Status(Code::kInvalidInput, "days must not be negative");
  Status status = EnsureConflictLog(db);
  if (!status.ok()) return status;
  Statement prune;
  status = prune.Prepare(db, "DELETE FROM syncline_conflicts WHERE (resolved_at IS NOT NULL AND resolved_at < "
                             "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' days')) OR at < "
                             "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?2 || ' days')");
  if (!status.ok()) return status;
  prune.BindInt(1, resolved_days);
  prune.BindInt(2, kept_days);
  status = prune.Run();
  if (status.ok()) *pruned = sqlite3_changes(db);
  return status;
}

Status ResubmitConflict(ConnectionState& state, std::int64_t id, const std::optional<std::string>& edited_row) {
  sqlite3* db = state.db;
  Status status = EnsureConflictLog(db);
  if (!status.ok()) return status;
  Statement entry;
  status = entry.Prepare(db, "SELECT table_name, \"row\" FROM syncline_conflicts WHERE id = ?1 AND side = 'server' "
                             "AND op = 'upsert' AND resolved_at IS NULL");
  if (!status.ok()) return status;
  entry.BindInt(1, id);
  bool found = false;
  status = entry.Step(&found);
  if (!status.ok()) return status;
  if (!found)
    return Status(Code::kInvalidInput,
                  "no open conflict #" + std::to_string(id) + " of a refused upsert of this device");
  const std::string table_name = entry.ColumnText(0);
  const std::string row_json = edited_row.value_or(entry.ColumnText(1));
  TableInfo table;
  status = FindTrackedTable(db, table_name, &table, &found);
  if (!status.ok()) return status;
  if (!found) return Status(Code::kUndefinedTable, "table \"" + table_name + "\" is not tracked here");
  core::Json row;
  status = core::ParseJson(row_json, &row);
  if (!status.ok() || !row.is_object()) return Status(Code::kInvalidInput, "the row must be a JSON object");
  std::vector<Value> values(table.columns.size());
  std::string columns, placeholders, updates;
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    const core::Json* value = row.Find(table.columns[c]);
    if (value == nullptr) return Status(Code::kInvalidInput, "the row lacks column \"" + table.columns[c] + "\"");
    status = core::DecodeValue(*value, &values[c]);
    if (!status.ok()) return status.WithPrefix("column \"" + table.columns[c] + "\": ");
    const std::string column = QuoteIdentifier(table.columns[c]);
    columns += (c > 0 ? ", " : "") + column;
    placeholders += (c > 0 ? ", ?" : "?") + std::to_string(c + 1);
    updates += (c > 0 ? ", " : "") + column + " = excluded." + column;
  }
  std::string keys;
  for (std::size_t k = 0; k < table.pk.size(); ++k)
    keys += (k > 0 ? ", " : "") + QuoteIdentifier(table.columns[table.pk[k]]);
  Savepoint savepoint(db, "syncline_resubmit");
  if (!savepoint.status().ok()) return savepoint.status();
  // An ordinary local write: captured, stamped now, pushed at the next sync.
  Statement write;
  status = write.Prepare(db, "INSERT INTO " + QuoteIdentifier(table.name) + " (" + columns + ") VALUES (" +
                                 placeholders + ") ON CONFLICT (" + keys + ") DO UPDATE SET " + updates);
  if (!status.ok()) return status;
  for (std::size_t c = 0; c < values.size(); ++c)
    write.BindValue(static_cast<int>(c + 1), values[c]);
  status = write.Run();
  if (!status.ok()) return status;
  Statement resolve;
  status = resolve.Prepare(db, "UPDATE syncline_conflicts SET resolved_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                               "WHERE id = ?1");
  if (!status.ok()) return status;
  resolve.BindInt(1, id);
  status = resolve.Run();
  if (!status.ok()) return status;
  return savepoint.Release();
}

Status RetryConflicts(ConnectionState& state, std::int64_t* resolved) {
  sqlite3* db = state.db;
  *resolved = 0;
  Status status = EnsureConflictLog(db);
  if (!status.ok()) return status;
  std::vector<std::pair<std::int64_t, std::string>> pending;
  {
    Statement select;
    status = select.Prepare(db, "SELECT id, change FROM syncline_conflicts WHERE side = 'local' AND resolved_at IS "
                                "NULL AND change IS NOT NULL ORDER BY id");
    bool row = false;
    while (status.ok() && (status = select.Step(&row)).ok() && row)
      pending.emplace_back(select.ColumnInt(0), select.ColumnText(1));
    if (!status.ok()) return status;
  }
  Statement resolve;
  status = resolve.Prepare(db, "UPDATE syncline_conflicts SET resolved_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                               "WHERE id = ?1");
  if (!status.ok()) return status;
  for (const auto& [id, batch] : pending) {
    // Applied, or beaten since by a newer version: resolved. Refused again:
    // logged again, and this entry goes (the new one replaces it).
    std::string summary;
    status = ApplyPush(state, batch, ApplyOptions{/*from_server=*/true}, &summary);
    if (!status.ok()) return status;
    core::Json answer;
    status = core::ParseJson(summary, &answer);
    if (!status.ok()) return status;
    const bool refused = answer.Find("refused") != nullptr;
    if (refused) {
      Statement drop;
      status = drop.Prepare(db, "DELETE FROM syncline_conflicts WHERE id = ?1");
      if (status.ok()) {
        drop.BindInt(1, id);
        status = drop.Run();
      }
    } else {
      resolve.BindInt(1, id);
      status = resolve.Run();
      resolve.Reset();
      ++*resolved;
    }
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

}  // namespace syncline::sqlite
