// PgStore's reading side (apply_store.h): the statements it prepares, the
// tables a batch names, each change converted to PostgreSQL values, the
// metadata of the rows it names, same-content and scope checks, and the
// peers' positions. Writing is in apply_writes.cc.
#include "pg_extension/apply_store.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/json.h"
#include "core/value.h"
#include "pg_extension/apply_sets.h"
#include "pg_extension/backend.h"
#include "pg_extension/gc.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/schema.h"
#include "pg_extension/spi.h"
#include "pg_extension/tables.h"
#include "pg_extension/types.h"

namespace syncline::pg {

using core::Code;
using core::Status;
using core::Value;

void PgStore::PrepareStatements() {
  int64 schema_version = 0;
  has_schema_log_ = ReadSchemaVersion(&schema_version);
  AsExtensionOwner owner;
  // One primary key probe per key, whatever the statistics say (a filter
  // over the table's every row once cost O(rows) per batch): OFFSET 0
  // keeps the planner from turning the lateral subquery into a join.
  // Column stamps (syncline.rows.cols) from extension version 0.2 on.
  const std::string cols = has_schema_log_ ? "r.cols" : "NULL::pg_catalog.bytea";
  read_metas_ = pg::Prepare(
      "SELECT r.pk, r.hlc, r.node, r.deleted, n.node_id, r.scope, r.xid::pg_catalog.text || '.' || r.seq, " + cols +
          " FROM pg_catalog.unnest($2) AS k(pk) CROSS JOIN LATERAL (SELECT * FROM syncline.rows r WHERE r.tid = $1 "
          "AND r.pk = k.pk OFFSET 0) r LEFT JOIN syncline.nodes n ON n.ref = r.node",
      {INT4OID, TEXTARRAYOID});
  const std::string columns =
      std::string("FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
                  "pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), "
                  "pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9)) AS c(tid, pk, clock, hlc, "
                  "node, deleted, scope, version, cols)");
  const std::vector<Oid> types = {INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID,
                                  BOOLARRAYOID, TEXTARRAYOID, TEXTARRAYOID, BYTEAARRAYOID};
  const std::string version =
      "pg_catalog.pg_current_xact_id(), pg_catalog.nextval('syncline.rows_seq'::pg_catalog.regclass)";
  // Decisions are made against the metadata as read, without locks (a bad
  // change is reported before any wait). The writes check that nothing
  // changed since: rows that were missing are inserted if still missing,
  // rows that were there are updated only at the version read. A row the
  // update misses, or one the insert finds (a plain INSERT: cheaper than
  // ON CONFLICT, and the clash ends the apply anyway), is a conflict
  // (WriteChunks).
  insert_metas_ = pg::Prepare(std::string("INSERT INTO syncline.rows (tid, pk, clock, hlc, node, deleted, scope, ") +
                                  (has_schema_log_ ? "cols, " : "") +
                                  "xid, seq) SELECT c.tid, c.pk, c.clock, c.hlc, c.node, c.deleted, c.scope, " +
                                  (has_schema_log_ ? "c.cols, " : "") + version + " " + columns,
                              types);
  update_metas_ =
      pg::Prepare(std::string("UPDATE syncline.rows AS r SET clock = c.clock, hlc = c.hlc, node = c.node, deleted = "
                              "c.deleted, scope = coalesce(c.scope, r.scope), ") +
                      (has_schema_log_ ? "cols = c.cols, " : "") +
                      "xid = pg_catalog.pg_current_xact_id(), "
                      "seq = pg_catalog.nextval('syncline.rows_seq'::pg_catalog.regclass) " +
                      columns +
                      " WHERE r.tid = c.tid AND r.pk = c.pk AND r.xid::pg_catalog.text || '.' || r.seq = c.version "
                      "RETURNING r.pk",
                  types);
  node_ref_ = pg::Prepare(
      "WITH added AS (INSERT INTO syncline.nodes (node_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING ref) "
      "SELECT ref FROM added UNION ALL SELECT ref FROM syncline.nodes WHERE node_id = $1",
      {TEXTOID});
  find_node_ = pg::Prepare("SELECT ref FROM syncline.nodes WHERE node_id = $1", {TEXTOID});
}

ErrorData* PgStore::KeptError(std::size_t index) const {
  auto it = refusals_.find(index);
  return it == refusals_.end() ? nullptr : it->second;
}

Status PgStore::Table(const std::string& name, core::MergeTable** out) {
  auto it = tables_.find(name);
  if (it == tables_.end()) {
    SetTable table;
    bool found = false;
    Status status = FindTrackedByName(name, CurrentMemoryContext, &table.info, &found);
    if (!status.ok()) return status;
    // A device behind the server's schema may name a table by a name it
    // had (docs/postgres.md, "Schema changes").
    std::string renamed;
    if (!found && has_schema_log_ && !(renamed = RenamedTable(name)).empty()) {
      status = FindTrackedByName(renamed, CurrentMemoryContext, &table.info, &found);
      if (!status.ok()) return status;
    }
    if (!found) return Status(Code::kUndefinedTable, "no tracked table of this name");
    for (const ColumnType& column : table.info.columns)
      table.columns.push_back(column.name);
    table.pk = table.info.pk;
    // A column-merge change may carry some columns (the merge keeps the rest).
    table.merge = table.info.merge;
    table.partial_rows = table.merge == core::MergeMode::kColumn;
    // ... and its columns by former names, or lack columns added since:
    // the server keeps what it has (or the default) for those.
    if (has_schema_log_) {
      LoadColumnHistory(table.info.tid, &table);
      table.partial_rows = true;
    }
    PrepareSetTable(&table);
    it = tables_.emplace(name, std::move(table)).first;
  }
  *out = &it->second;
  return Status::Ok();
}

Status PgStore::Prepare(core::MergeChange& change) {
  current_ = change.index;
  if (!converting_) conversions_ = BeginSubtransaction();
  converting_ = true;
  Status status;
  ErrorData* error = nullptr;
  try {
    status = Convert(change);
  } catch (PgError& caught) {
    error = caught.data;
  }
  if (error == nullptr) return status;
  EndSubtransaction(conversions_, false);
  conversions_ = BeginSubtransaction();
  return Refusal(change.index, error);
}

void PgStore::EndConversions() {
  if (converting_) EndSubtransaction(conversions_, false);
  converting_ = false;
}

Status PgStore::Convert(core::MergeChange& change) {
  const TableInfo& info = Of(change).info;
  ChangeData& data = data_[change.index];
  // The key in canonical form (a UUID in upper case is the same row).
  std::vector<Value> key(info.pk.size());
  data.key.assign(info.pk.size(), (Datum)0);
  data.key_nulls.assign(info.pk.size(), ' ');
  for (std::size_t k = 0; k < info.pk.size(); ++k) {
    const ColumnType& column = info.columns[info.pk[k]];
    bool isnull = false;
    Status status = ValueToDatum(column, *change.key[k], &data.key[k], &isnull);
    if (!status.ok()) return status.WithPrefix("column \"" + column.name + "\": ");
    key[k] = DatumToValue(column, data.key[k], false);
  }
  change.meta_key = Value::Text("");
  Status status = core::EncodeKey(key, &change.meta_key.bytes);
  if (!status.ok()) return status;
  if (change.change->op == core::Op::kDelete) return Status::Ok();
  // The key as sent, when its canonical form differs: the sender holds the
  // row under that key, so it must get a delete of it.
  std::string sent;
  status = core::EncodeKeyOf(change.key, &sent);
  if (!status.ok()) return status;
  if (sent != change.meta_key.bytes) {
    change.sent_key = Value::Text(std::move(sent));
    change.has_sent_key = true;
  }
  data.row.assign(info.columns.size(), (Datum)0);
  data.row_nulls.assign(info.columns.size(), ' ');
  for (std::size_t c = 0; c < info.columns.size(); ++c) {
    bool isnull = false;
    if (change.row[c] == nullptr) {  // a column the sender lacks (MergeTable::partial_rows)
      data.row_nulls[c] = 'n';
      continue;
    }
    status = ValueToDatum(info.columns[c], *change.row[c], &data.row[c], &isnull);
    if (!status.ok()) return status;
    if (isnull) data.row_nulls[c] = 'n';
  }
  if (info.scope >= 0) {
    core::JsonWriter writer(&data.scope);
    core::WriteValue(writer,
                     DatumToValue(info.columns[info.scope], data.row[info.scope], data.row_nulls[info.scope] == 'n'));
  }
  return Status::Ok();
}

Status PgStore::ReadVersions(const std::vector<core::MergeChange*>& changes) {
  current_.reset();
  if (converting_) EndSubtransaction(conversions_, true);
  converting_ = false;
  std::map<int32, std::vector<std::string>> keys;
  for (const core::MergeChange* change : changes) {
    keys[Of(*change).info.tid].push_back(change->meta_key.bytes);
    if (change->has_sent_key) keys[Of(*change).info.tid].push_back(change->sent_key.bytes);
  }
  std::map<std::pair<int32, std::string>, core::RowVersion> versions;
  {
    AsExtensionOwner owner;
    for (auto& [tid, texts] : keys) {
      Datum args[2] = {Int32GetDatum(tid), TextArray(texts)};
      uint64 rows = Execute(read_metas_, args, "  ", false);
      for (uint64 r = 0; r < rows; ++r) {
        std::string key = ResultText(r, 1);
        versions[{tid, key}] = ResultVersion(r);
        meta_[{tid, key}] = ResultMeta(r);
      }
    }
  }
  for (core::MergeChange* change : changes) {
    auto it = versions.find({Of(*change).info.tid, change->meta_key.bytes});
    if (it != versions.end()) change->stored = it->second;
  }
  return Status::Ok();
}

Status PgStore::SameContent(const core::MergeChange& change, bool* same) {
  current_ = change.index;
  SetTable& table = Of(change);
  ChangeData& data = data_[change.index];
  *same = false;
  {
    // A fresh snapshot, as for the metadata: a version another session
    // committed since this statement began is compared with its own row.
    AsExtensionOwner owner;
    if (Execute(table.select_row, data.key.data(), data.key_nulls.data(), false, 1) > 0) {
      *same = true;
      TupleDesc desc = SPI_tuptable->tupdesc;
      HeapTuple tuple = SPI_tuptable->vals[0];
      for (std::size_t c = 0; c < table.info.columns.size() && *same; ++c) {
        if (change.row[c] == nullptr) continue;
        bool isnull = false;
        Datum datum = (Datum)0;
        int attnum = static_cast<int>(c + 1);
        PgGuard([&] { datum = SPI_getbinval(tuple, desc, attnum, &isnull); });
        const ColumnType& column = table.info.columns[c];
        *same = core::SameValue(DatumToValue(column, datum, isnull),
                                DatumToValue(column, data.row[c], data.row_nulls[c] == 'n'));
      }
    }
  }
  if (*same) return Status::Ok();
  // Different content under the same stamp is corrupt, unless the row has
  // moved on since it was read: then this apply must decide again.
  return StillAsRead(table.info.tid, change.meta_key.bytes);
}

Status PgStore::Admit(const core::MergeChange& change) {
  current_ = change.index;
  const TableInfo& info = Of(change).info;
  const ChangeData& data = data_[change.index];
  std::string& known = scopes_[{info.tid, change.meta_key.bytes}];
  if (known.empty()) known = Meta(info.tid, change.meta_key.bytes).scope;
  const bool upsert = change.change->op == core::Op::kUpsert;
  if (upsert && !known.empty() && !data.scope.empty() && known != data.scope)
    return Status(Code::kPermissionDenied,
                  "the row's scope is " + known + "; a change cannot move it to " + data.scope);
  if (!info.authorize.empty()) {
    std::optional<std::string> touched;
    if (upsert)
      touched = data.scope;
    else if (!known.empty())
      touched = known;
    if (touched || upsert) {
      bool allowed = false;
      Status status = authorizer_.Allowed(info.authorize, touched, &allowed);
      if (!status.ok()) return status;
      if (!allowed)
        return Status(Code::kPermissionDenied,
                      "not authorised for scope " + touched.value_or("null") + " (by " + info.authorize + ")");
    }
  }
  if (upsert && known.empty()) known = data.scope;
  return Status::Ok();
}

Status PgStore::ReadPeer(const core::Cursor& cursor, bool* found, std::string* position) {
  AsExtensionOwner owner;
  SPIPlanPtr read =
      pg::Prepare("SELECT position FROM syncline.peers WHERE node_id = $1 AND filter = $2", {TEXTOID, TEXTOID});
  Datum args[2] = {TextDatum(cursor.node), TextDatum(cursor.filter)};
  *found = Execute(read, args, "  ", false) > 0;
  if (*found) *position = ResultText(0, 1);
  return Status::Ok();
}

Status PgStore::WritePeer(const core::Cursor& cursor) {
  AsExtensionOwner owner;
  SPIPlanPtr write =
      pg::Prepare("INSERT INTO syncline.peers (node_id, filter, cursor, position) VALUES ($1, $2, $3, $4) "
                  "ON CONFLICT (node_id, filter) DO UPDATE SET cursor = EXCLUDED.cursor, position = EXCLUDED.position",
                  {TEXTOID, TEXTOID, TEXTOID, TEXTOID});
  Datum args[4] = {TextDatum(cursor.node), TextDatum(cursor.filter), TextDatum(core::EncodeCursor(cursor)),
                   TextDatum(cursor.position)};
  Execute(write, args, "    ", false);
  return Status::Ok();
}

void PgStore::ReceiveStamp(core::Hlc hlc) { pg::ReceiveStamp(hlc); }

Status PgStore::ReadGcWatermark(core::Hlc* out) {
  *out = pg::ReadGcWatermark();
  return Status::Ok();
}

RowMeta PgStore::Meta(int32 tid, const std::string& key) const {
  auto it = meta_.find({tid, key});
  return it == meta_.end() ? RowMeta{} : it->second;
}

core::RowVersion PgStore::ResultVersion(uint64 row) const {
  core::RowVersion version;
  version.exists = true;
  version.hlc = static_cast<core::Hlc>(ResultInt64(row, 2));
  version.node = ResultInt64(row, 3) == 0 ? local_node_ : ResultText(row, 5);
  bool isnull = false;
  version.deleted = DatumGetBool(ResultDatum(row, 4, &isnull));
  version.cols = ResultBytes(row, 8);
  return version;
}

RowMeta PgStore::ResultMeta(uint64 row) { return RowMeta{true, ResultText(row, 6), ResultText(row, 7)}; }

Status PgStore::StillAsRead(int32 tid, const std::string& key) {
  Datum args[2] = {Int32GetDatum(tid), TextArray({key})};
  AsExtensionOwner owner;
  const std::string now = Execute(read_metas_, args, "  ", false) > 0 ? ResultText(0, 7) : std::string();
  if (now == Meta(tid, key).version) return Status::Ok();
  return Status(Code::kConflict,
                "row " + key + " changed in a concurrent transaction after this apply read it; apply the batch again");
}

}  // namespace syncline::pg
