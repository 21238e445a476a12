// apply_push for PostgreSQL: the store the core merge (core/merge.h) writes
// through. How it reads and writes is described in docs/postgres.md,
// "apply_push(batch)".
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/changeset.h"
#include "core/merge.h"
#include "pg_extension/apply_sets.h"
#include "pg_extension/authorize.h"
#include "pg_extension/backend.h"
#include "pg_extension/conflicts.h"
#include "pg_extension/gc.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/schema.h"
#include "pg_extension/spi.h"
#include "pg_extension/tables.h"

namespace syncline::pg {

using core::Code;
using core::Status;
using core::Value;

namespace {

// A row's metadata as the apply read it.
struct RowMeta {
  bool in_table = false;  // syncline.rows held the row
  std::string scope;      // canonical JSON, "" for none
  std::string version;    // its (xid, seq) then, as "xid.seq"
};

// What a change becomes on this engine, beside the merge's view of it.
struct ChangeData {
  std::vector<Datum> key;  // canonical, primary key order
  std::string key_nulls;
  std::vector<Datum> row;  // table order (upserts)
  std::string row_nulls;
  std::string scope;  // canonical JSON of the scope value, "" for none
};

constexpr std::size_t kWriteChunk = 1000;

class PgStore : public core::MergeStore {
 public:
  PgStore(const core::Batch& batch, std::string local_node, std::string role)
      : batch_(batch), data_(batch.changes.size()), local_node_(std::move(local_node)), role_(std::move(role)) {}

  void PrepareStatements() {
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

  // The change being worked on, for errors PostgreSQL raises (none between changes).
  std::optional<std::size_t> current() const { return current_; }
  // PostgreSQL's own error for a change it refused, if kept.
  ErrorData* KeptError(std::size_t index) const {
    auto it = refusals_.find(index);
    return it == refusals_.end() ? nullptr : it->second;
  }

  Status Table(const std::string& name, core::MergeTable** out) override {
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

  // Conversions run inside one subtransaction for the whole batch: a value
  // PostgreSQL's input function refuses (raising an error) is then this
  // change's refusal, and the rest go on in a new one.
  Status Prepare(core::MergeChange& change) override {
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

  // Closes Prepare's subtransaction if the merge ended before reading
  // versions: an error raised with an internal subtransaction open would
  // leave the session in an aborted transaction block.
  void EndConversions() {
    if (converting_) EndSubtransaction(conversions_, false);
    converting_ = false;
  }

  Status Convert(core::MergeChange& change) {
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

  // Reads, in one statement per table, the metadata of every row the batch
  // names (and of keys sent in another form, which get tombstones).
  Status ReadVersions(const std::vector<core::MergeChange*>& changes) override {
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

  Status SameContent(const core::MergeChange& change, bool* same) override {
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

  // A row's scope never changes (it says who receives the row and its
  // tombstone), and a table's authorisation hook must allow the scope the
  // change touches.
  Status Admit(const core::MergeChange& change) override {
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

  Status WriteRows(const std::vector<core::MergeChange*>& run, std::size_t* written) override;
  // Writes rows[first, first + count) in order, splitting a refused set;
  // the index of the first row refused (its error in *error), or first + count.
  std::size_t WriteSplitting(SetTable& table, bool upsert, const std::vector<core::MergeChange*>& run,
                             std::vector<RowWrite>& rows, std::size_t first, std::size_t count, ErrorData** error) {
    current_ = run[first]->index;
    if (WriteSet(table, upsert, rows, first, count, error)) return first + count;
    if (count == 1) return first;
    const std::size_t half = count / 2;
    std::size_t refused = WriteSplitting(table, upsert, run, rows, first, half, error);
    if (refused < first + half) return refused;
    return WriteSplitting(table, upsert, run, rows, first + half, count - half, error);
  }

  Status WriteVersions(const std::vector<const core::MergeChange*>& changes) override;

  Status ReadPeer(const core::Cursor& cursor, bool* found, std::string* position) override {
    AsExtensionOwner owner;
    SPIPlanPtr read =
        pg::Prepare("SELECT position FROM syncline.peers WHERE node_id = $1 AND filter = $2", {TEXTOID, TEXTOID});
    Datum args[2] = {TextDatum(cursor.node), TextDatum(cursor.filter)};
    *found = Execute(read, args, "  ", false) > 0;
    if (*found) *position = ResultText(0, 1);
    return Status::Ok();
  }

  Status WritePeer(const core::Cursor& cursor) override {
    AsExtensionOwner owner;
    SPIPlanPtr write = pg::Prepare(
        "INSERT INTO syncline.peers (node_id, filter, cursor, position) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (node_id, filter) DO UPDATE SET cursor = EXCLUDED.cursor, position = EXCLUDED.position",
        {TEXTOID, TEXTOID, TEXTOID, TEXTOID});
    Datum args[4] = {TextDatum(cursor.node), TextDatum(cursor.filter), TextDatum(core::EncodeCursor(cursor)),
                     TextDatum(cursor.position)};
    Execute(write, args, "    ", false);
    return Status::Ok();
  }

  void ReceiveStamp(core::Hlc hlc) override { pg::ReceiveStamp(hlc); }

  Status ReadGcWatermark(core::Hlc* out) override {
    *out = pg::ReadGcWatermark();
    return Status::Ok();
  }

  Status LogRefusal(const core::MergeChange& change, core::Refusal* refusal) override;

 private:
  static SetTable& Of(const core::MergeChange& change) { return *static_cast<SetTable*>(change.table); }

  RowMeta Meta(int32 tid, const std::string& key) const {
    auto it = meta_.find({tid, key});
    return it == meta_.end() ? RowMeta{} : it->second;
  }

  core::RowVersion ResultVersion(uint64 row) const {
    core::RowVersion version;
    version.exists = true;
    version.hlc = static_cast<core::Hlc>(ResultInt64(row, 2));
    version.node = ResultInt64(row, 3) == 0 ? local_node_ : ResultText(row, 5);
    bool isnull = false;
    version.deleted = DatumGetBool(ResultDatum(row, 4, &isnull));
    version.cols = ResultBytes(row, 8);
    return version;
  }

  static RowMeta ResultMeta(uint64 row) { return RowMeta{true, ResultText(row, 6), ResultText(row, 7)}; }

  // Ok when a row's metadata is still at the version this apply read;
  // otherwise a conflict to retry.
  Status StillAsRead(int32 tid, const std::string& key) {
    Datum args[2] = {Int32GetDatum(tid), TextArray({key})};
    AsExtensionOwner owner;
    const std::string now = Execute(read_metas_, args, "  ", false) > 0 ? ResultText(0, 7) : std::string();
    if (now == Meta(tid, key).version) return Status::Ok();
    return Status(Code::kConflict,
                  "row " + key +
                      " changed in a concurrent transaction after this apply read it; apply the batch again");
  }

  // PostgreSQL refused change `index` with `error`: a conflict the merge
  // may refuse the change for (the error is kept for the log and for
  // raising), or else an error that ends the apply (raised here).
  Status Refusal(std::size_t index, ErrorData* error) {
    const int code = error->sqlerrcode;
    const std::string message = error->message != nullptr ? error->message : "refused";
    Code kind = Code::kOk;
    if (ERRCODE_TO_CATEGORY(code) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION || code == ERRCODE_RAISE_EXCEPTION)
      kind = Code::kConstraint;  // a user's trigger refusing the row, too
    else if (ERRCODE_TO_CATEGORY(code) == ERRCODE_DATA_EXCEPTION || code == ERRCODE_DATATYPE_MISMATCH)
      kind = Code::kTypeMismatch;
    else if (code == ERRCODE_INSUFFICIENT_PRIVILEGE || code == ERRCODE_WITH_CHECK_OPTION_VIOLATION)
      kind = Code::kPermissionDenied;
    if (kind == Code::kOk) throw PgError{error};
    refusals_[index] = error;
    return Status(kind, message);
  }

  Status WriteChunks(const std::vector<const core::MergeChange*>& changes, SPIPlanPtr plan);
  Status NodeRef(const std::string& node, int64* ref);

  const core::Batch& batch_;
  std::vector<ChangeData> data_;  // per change of the batch
  std::string local_node_;
  std::string role_;  // the role applying the batch (not the extension owner)
  SPIPlanPtr log_conflict_ = nullptr;
  std::optional<std::size_t> current_;
  bool converting_ = false;  // Prepare's subtransaction is open
  Subtransaction conversions_{};
  SPIPlanPtr read_metas_ = nullptr, insert_metas_ = nullptr, update_metas_ = nullptr, node_ref_ = nullptr,
             find_node_ = nullptr;
  std::map<std::pair<int32, std::string>, RowMeta> meta_;
  std::map<std::pair<int32, std::string>, std::string> scopes_;  // admitted so far
  std::map<std::string, SetTable> tables_;
  std::unordered_map<std::string, int64> node_refs_;
  std::map<std::size_t, ErrorData*> refusals_;
  bool has_schema_log_ = false;  // extension version 0.2 or later
  Authorizer authorizer_;
};

Status PgStore::WriteRows(const std::vector<core::MergeChange*>& run, std::size_t* written) {
  SetTable& table = Of(*run[0]);
  const bool upsert = run[0]->write_op == core::Op::kUpsert;
  const bool column_merge = table.merge == core::MergeMode::kColumn;
  std::vector<RowWrite> rows;
  rows.reserve(run.size());
  for (const core::MergeChange* change : run) {
    ChangeData& data = data_[change->index];
    // A column-merge write is what the merge decided (core::PlanColumnWrite):
    // some of the change's columns, NULLs, an earlier change's columns.
    if (upsert && column_merge) {
      // (a delete that clears some columns is an upsert of NULLs)
      data.row.resize(table.info.columns.size(), (Datum)0);
      data.row_nulls.resize(table.info.columns.size(), 'n');
      for (std::size_t c = 0; c < table.info.columns.size(); ++c) {
        bool isnull = change->row[c] == nullptr;
        if (!isnull) {
          Status status = ValueToDatum(table.info.columns[c], *change->row[c], &data.row[c], &isnull);
          if (!status.ok()) return status;
        }
        data.row_nulls[c] = isnull ? 'n' : ' ';
      }
    }
    rows.push_back(upsert ? RowWrite{&change->meta_key.bytes, data.row.data(), data.row_nulls.data(),
                                     change->row.data(), false, change->partial, column_merge}
                          : RowWrite{&change->meta_key.bytes, data.key.data(), data.key_nulls.data(), nullptr, false,
                                     false, false});
  }
  // The whole run in one statement; when PostgreSQL refuses it, halves of
  // it, down to the change at fault (a few subtransactions per refusal, not
  // one per change: more than 64 in a transaction slow every backend's
  // snapshots).
  ErrorData* error = nullptr;
  *written = WriteSplitting(table, upsert, run, rows, 0, run.size(), &error);
  for (std::size_t i = 0; i < *written; ++i)
    run[i]->rewritten = rows[i].rewritten;
  if (*written == run.size()) return Status::Ok();
  // A refusal of this change (the merge retries a constraint after the
  // others), or an error that ends the apply.
  return Refusal(run[*written]->index, error);
}

Status PgStore::WriteVersions(const std::vector<const core::MergeChange*>& changes) {
  current_.reset();
  // A row written twice (a tombstone for a key as sent that another change
  // also wrote) keeps its last write.
  std::map<std::pair<int32, std::string>, const core::MergeChange*> last;
  for (const core::MergeChange* change : changes)
    last[{Of(*change).info.tid, change->meta_key.bytes}] = change;
  for (bool in_table : {true, false}) {
    std::vector<const core::MergeChange*> writes;
    for (const core::MergeChange* change : changes) {
      const std::pair<int32, std::string> id{Of(*change).info.tid, change->meta_key.bytes};
      if (last[id] == change && Meta(id.first, id.second).in_table == in_table) writes.push_back(change);
    }
    Status status = WriteChunks(writes, in_table ? update_metas_ : insert_metas_);
    if (!status.ok()) return status;
  }
  std::set<std::string> notifications;
  for (const core::MergeChange* change : changes) {
    const TableInfo& info = Of(*change).info;
    if (!info.notify) continue;
    std::string payload = Of(*change).notify_payload;
    const std::string& scope = scopes_[{info.tid, change->meta_key.bytes}];
    if (!scope.empty()) payload = payload.substr(0, payload.size() - 1) + ",\"scope\":" + scope + "}";
    notifications.insert(std::move(payload));
  }
  for (const std::string& payload : notifications) {
    const char* text = payload.c_str();
    PgGuard([&] { Async_Notify("syncline", text); });
  }
  return Status::Ok();
}

// The refused change as sent, with PostgreSQL's own words for the reason
// when it raised the error, into syncline.conflicts (docs/protocol.md,
// "Conflicts").
Status PgStore::LogRefusal(const core::MergeChange& change, core::Refusal* refusal) {
  const core::Change& sent = *change.change;
  if (ErrorData* error = KeptError(change.index)) {
    std::string message = core::ChangeContext(change.index, sent.table) + error->message;
    if (error->detail != nullptr) message += " (" + std::string(error->detail) + ")";
    refusal->reason = Status(refusal->reason.code(), message);
    refusal->sqlstate = unpack_sql_state(error->sqlerrcode);
  } else {
    refusal->sqlstate = core::SqlStateOf(refusal->reason.code());
  }
  std::string scope = data_[change.index].scope;
  const bool keyed = change.table != nullptr && change.meta_key.type == Value::Type::kText;
  if (scope.empty() && keyed) scope = Meta(Of(change).info.tid, change.meta_key.bytes).scope;
  // A scoped row without a scope (its scope column refused) is answered
  // with a tombstone no scoped pull delivers: the device drops its copy.
  if (keyed && Of(change).info.scope >= 0 && scope.empty()) refusal->forget = true;
  LogConflict(ConflictEntry{batch_.source, role_, &sent, scope, refusal}, &log_conflict_);
  return Status::Ok();
}

Status PgStore::WriteChunks(const std::vector<const core::MergeChange*>& changes, SPIPlanPtr plan) {
  for (std::size_t start = 0; start < changes.size(); start += kWriteChunk) {
    const std::size_t count = std::min(kWriteChunk, changes.size() - start);
    std::vector<std::string> keys, scopes, versions, cols;
    std::vector<Datum> tids, clocks, hlcs, nodes, deleted;
    for (std::size_t i = start; i < start + count; ++i) {
      const core::MergeChange& change = *changes[i];
      const int32 tid = Of(change).info.tid;
      int64 node_ref = 0;
      Status status = NodeRef(change.node, &node_ref);
      if (!status.ok()) return status;
      versions.push_back(Meta(tid, change.meta_key.bytes).version);
      tids.push_back(Int32GetDatum(tid));
      keys.push_back(change.meta_key.bytes);
      clocks.push_back(Int64GetDatum(change.clock));
      hlcs.push_back(Int64GetDatum(static_cast<int64>(change.hlc)));
      nodes.push_back(Int32GetDatum(static_cast<int32>(node_ref)));
      deleted.push_back(BoolGetDatum(change.deleted));
      cols.push_back(change.cols);
      // A tombstone keeps the scope its row had (an empty one keeps the
      // stored one), and so does an answer to a refused change; an answer
      // for a row the server never had carries the refused row's scope, so
      // that the device's scoped pull receives it.
      const bool keep_scope = change.change->op == core::Op::kDelete || (change.answer && plan == update_metas_);
      scopes.push_back(keep_scope ? std::string() : data_[change.index].scope);
    }
    AsExtensionOwner owner;
    Datum args[9] = {ScalarArray(tids, INT4OID),
                     TextArray(keys),
                     ScalarArray(clocks, INT8OID),
                     ScalarArray(hlcs, INT8OID),
                     ScalarArray(nodes, INT4OID),
                     ScalarArray(deleted, BOOLOID),
                     TextArray(scopes, /*empty_is_null=*/true),
                     TextArray(versions, /*empty_is_null=*/true),
                     ByteaArray(cols)};
    uint64 written = 0;
    ErrorData* clash = nullptr;
    try {
      written = Execute(plan, args, "         ", false);
    } catch (PgError& error) {
      clash = error.data;
    }
    if (clash != nullptr) {
      // The transaction is lost either way; a concurrent first write of one
      // of these rows is worth retrying, so it is reported as such.
      if (plan != insert_metas_ || clash->sqlerrcode != ERRCODE_UNIQUE_VIOLATION) throw PgError{clash};
      return Status(Code::kConflict, std::string("a row without metadata when this apply read it got some in a "
                                                 "concurrent transaction (") +
                                         (clash->detail != nullptr ? clash->detail : "") + "); apply the batch again");
    }
    if (plan == update_metas_ && written < count) {
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

Status PgStore::NodeRef(const std::string& node, int64* ref) {
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
  // A session that registered the node concurrently and committed while
  // this insert waited is only visible to a new snapshot (read committed);
  // under a transaction snapshot it stays invisible: a conflict to retry.
  if (Execute(node_ref_, args, " ", false) == 0 && Execute(find_node_, args, " ", false) == 0)
    return Status(Code::kConflict,
                  "node " + node + " was registered by a concurrent transaction; apply the batch again");
  *ref = ResultInt64(0, 1);
  node_refs_[node] = *ref;
  return Status::Ok();
}

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
