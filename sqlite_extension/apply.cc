// apply_push for SQLite: the store the core merge (core/merge.h) writes
// through, and the checks that keep SQLite's column affinity from storing
// another value than the origin wrote (docs/sqlite.md, "syncline_apply_push").
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <deque>
#include <map>
#include <unordered_map>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/float_text.h"
#include "core/merge.h"
#include "sqlite_extension/conflicts.h"
#include "sqlite_extension/gc.h"
#include "sqlite_extension/schema.h"
#include "sqlite_extension/sqlite_util.h"
#include "sqlite_extension/sync.h"
#include "sqlite_extension/tracking.h"

namespace syncline::sqlite {

using core::Change;
using core::Code;
using core::Status;
using core::Value;

namespace {

// While apply_push writes user tables, capture leaves the rows it writes
// alone: merged changes keep their origin's stamps and must not come back as
// local ones. Writes of users' triggers are captured (SqlCapturing).
class ApplyingScope {
 public:
  explicit ApplyingScope(ConnectionState& state) : state_(state) { ++state_.applying; }
  ~ApplyingScope() { --state_.applying; }

 private:
  ConnectionState& state_;
};

// A column's affinity (https://sqlite.org/datatype3.html, 3.1), read once per
// table rather than compared as text per value.
enum class Affinity { kInteger, kReal, kNumeric, kText, kBlob };

Affinity AffinityOf(const std::string& name) {
  if (name == "INTEGER") return Affinity::kInteger;
  if (name == "REAL") return Affinity::kReal;
  if (name == "TEXT") return Affinity::kText;
  if (name == "NUMERIC") return Affinity::kNumeric;
  return Affinity::kBlob;  // BLOB; anything else would be stored as it is, too
}

struct PartialWrite {
  Statement update;  // unprepared when only key columns are written
  Statement insert;
};

struct ApplyTable : core::MergeTable {
  TableInfo info;
  std::vector<Affinity> affinity;  // per column of info
  Statement upsert;                // INSERT ... ON CONFLICT (pk) DO UPDATE, all columns in table order
  Statement remove;                // DELETE by primary key
  Statement same_row;              // 1 when the current row equals the bound values
  // Writes of some columns (column merge, or a sender behind the schema),
  // by the columns they write.
  std::map<std::vector<bool>, PartialWrite> partial_writes;
};

// A write of the columns `present` marks: an UPDATE of those columns, and
// when it finds no row an INSERT of them (the rest take their defaults).
// Not INSERT ... ON CONFLICT DO UPDATE, which checks NOT NULL on the row it
// would insert before it finds the conflict: a write of one column of a
// row with NOT NULL columns failed. Both take the present columns' values
// as ?1, ?2, ... in table order.
Status GetPartialWrite(sqlite3* db, ApplyTable* table, const std::vector<bool>& present, PartialWrite** out) {
  auto it = table->partial_writes.find(present);
  if (it == table->partial_writes.end()) {
    const TableInfo& info = table->info;
    std::string columns, values, updates, where, pk_columns;
    int n = 0;
    for (std::size_t i = 0; i < info.columns.size(); ++i) {
      if (!present[i]) continue;
      const std::string column = QuoteIdentifier(info.columns[i]);
      const std::string parameter = "?" + std::to_string(++n);
      columns += (n > 1 ? ", " : "") + column;
      values += (n > 1 ? ", " : "") + parameter;
      if (std::find(info.pk.begin(), info.pk.end(), static_cast<int>(i)) == info.pk.end())
        updates += (updates.empty() ? "" : ", ") + column + " = " + parameter;
      else
        where += (where.empty() ? "" : " AND ") + column + " = " + parameter;
    }
    for (std::size_t k = 0; k < info.pk.size(); ++k)
      pk_columns += (k > 0 ? ", " : "") + QuoteIdentifier(info.columns[info.pk[k]]);
    PartialWrite write;
    const std::string name = QuoteIdentifier(info.name);
    Status status;
    if (!updates.empty()) status = write.update.Prepare(db, "UPDATE " + name + " SET " + updates + " WHERE " + where);
    if (status.ok())
      status = write.insert.Prepare(db, "INSERT INTO " + name + "(" + columns + ") VALUES (" + values + ")" +
                                            (updates.empty() ? " ON CONFLICT (" + pk_columns + ") DO NOTHING" : ""));
    if (!status.ok()) return status;
    it = table->partial_writes.emplace(present, std::move(write)).first;
  }
  *out = &it->second;
  return Status::Ok();
}

std::string Placeholders(std::size_t count, std::size_t first = 1) {
  std::string sql;
  for (std::size_t i = 0; i < count; ++i)
    sql += (i > 0 ? ", ?" : "?") + std::to_string(first + i);
  return sql;
}

Status PrepareApplyTable(sqlite3* db, ApplyTable* table) {
  const TableInfo& info = table->info;
  const std::string quoted = QuoteIdentifier(info.name);
  std::string columns, updates, pk_columns, same;
  for (std::size_t i = 0; i < info.columns.size(); ++i) {
    std::string column = QuoteIdentifier(info.columns[i]);
    columns += (i > 0 ? ", " : "") + column;
    same += (i > 0 ? " AND " : "") + column + " IS ?" + std::to_string(i + 1);
    bool in_key = false;
    for (int k : info.pk)
      in_key = in_key || k == static_cast<int>(i);
    if (!in_key) updates += (updates.empty() ? "" : ", ") + column + " = excluded." + column;
  }
  for (std::size_t k = 0; k < info.pk.size(); ++k)
    pk_columns += (k > 0 ? ", " : "") + QuoteIdentifier(info.columns[info.pk[k]]);
  Status status = table->upsert.Prepare(db, "INSERT INTO " + quoted + "(" + columns + ") VALUES (" +
                                                Placeholders(info.columns.size()) + ") ON CONFLICT (" + pk_columns +
                                                ") DO " + (updates.empty() ? "NOTHING" : "UPDATE SET " + updates));
  if (!status.ok()) return status;
  status = table->remove.Prepare(db, "DELETE FROM " + quoted + " WHERE " + KeyPredicate(info));
  if (!status.ok()) return status;
  return table->same_row.Prepare(db, "SELECT 1 FROM " + quoted + " WHERE " + same);
}

bool IsNan(const Value& value) { return value.type == Value::Type::kReal && std::isnan(value.real); }

// Values an ordinary (non-STRICT) column would silently convert or mangle are
// refused, so that every node stores the value the origin wrote. A NaN is
// written as the text 'NaN' (Statement::BindValue), which only a REAL column
// of a table that is not STRICT reads back as NaN (HoldsNanAsText).
Status CheckValue(const ApplyTable& table, std::size_t column, const Value& value) {
  if (IsNan(value) && !HoldsNanAsText(table.info, column))
    return Status(Code::kTypeMismatch, "column \"" + table.info.columns[column] +
                                           "\" cannot hold NaN (SQLite stores NaN as NULL; only a REAL column of a "
                                           "table that is not STRICT holds it, as the text 'NaN')");
  if (value.type == Value::Type::kNull || table.info.strict) return Status::Ok();  // STRICT: SQLite checks
  const Affinity affinity = table.affinity[column];
  bool ok = true;
  if (affinity == Affinity::kInteger || affinity == Affinity::kReal)
    ok = value.type == Value::Type::kInteger || value.type == Value::Type::kReal;
  else if (affinity == Affinity::kText)
    ok = value.type == Value::Type::kText;
  if (ok) return Status::Ok();
  std::string expected = affinity == Affinity::kInteger ? "integer"
                         : affinity == Affinity::kReal  ? "real"
                         : affinity == Affinity::kText  ? "text"
                                                        : "numeric";
  return Status(Code::kTypeMismatch, "column \"" + table.info.columns[column] + "\" expects " + expected + ", got " +
                                         core::TypeName(value.type));
}

// Whether SQLite's column affinity may store a value differently
// (StoredForm); most values it stores as they are.
bool AffinityMayConvert(Affinity affinity, const Value& value) {
  switch (affinity) {
    case Affinity::kReal: return value.type == Value::Type::kInteger;
    case Affinity::kInteger:
    case Affinity::kNumeric: return value.type == Value::Type::kText || value.type == Value::Type::kReal;
    default: return false;
  }
}

// A value after SQLite's column affinity (https://sqlite.org/datatype3.html,
// 3.0): INTEGER and NUMERIC turn numeric text into numbers and integral
// reals into integers; REAL turns integers into reals.
Value StoredForm(Affinity affinity, const Value& value) {
  if (affinity == Affinity::kReal && value.type == Value::Type::kInteger)
    return Value::Real(static_cast<double>(value.integer));
  if (affinity != Affinity::kInteger && affinity != Affinity::kNumeric) return value;
  Value number = value;
  if (value.type == Value::Type::kText) {
    std::string_view text = value.bytes;
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
      text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
      text.remove_suffix(1);
    std::int64_t i;
    double d;
    auto int_end = std::from_chars(text.data(), text.data() + text.size(), i);
    if (!text.empty() && int_end.ec == std::errc() && int_end.ptr == text.data() + text.size())
      return Value::Integer(i);
    if (!core::ParseDouble(text, &d)) return value;
    number = Value::Real(d);
  }
  if (number.type == Value::Type::kReal && std::isfinite(number.real) && number.real == std::floor(number.real) &&
      number.real >= -9223372036854775808.0 && number.real < 9223372036854775808.0 &&
      !(number.real == 0 && std::signbit(number.real)))
    return Value::Integer(static_cast<std::int64_t>(number.real));
  return number;
}

// Binds a value without copying it: the batch outlives the statement's use,
// which is reset and cleared right after. (Reals, NaN included, go through
// BindValue: same_row compares a NaN in its stored form.)
void BindBorrowed(Statement& statement, int index, const Value& value) {
  sqlite3_stmt* stmt = statement.get();
  switch (value.type) {
    case Value::Type::kText:
      sqlite3_bind_text64(stmt, index, value.bytes.data(), value.bytes.size(), SQLITE_STATIC, SQLITE_UTF8);
      return;
    case Value::Type::kBlob:
      sqlite3_bind_blob64(stmt, index, value.bytes.data(), value.bytes.size(), SQLITE_STATIC);
      return;
    default: statement.BindValue(index, value); return;
  }
}

// The SQLite side of the merge (core/merge.h). Writes go through statements
// prepared once per table and apply call; each is reset and cleared after use.
// SQLite rolls back a failed statement on its own, so a refused write leaves
// nothing behind and the merge may retry it later.
class SqliteStore : public core::MergeStore {
 public:
  // `resync`: the candidates of a resync in progress, or null.
  SqliteStore(ConnectionState& state, std::string local_node, const core::Batch& batch, ResyncCandidates* resync)
      : state_(state), db_(state.db), batch_(&batch), local_node_(std::move(local_node)), resync_(resync) {}

  Status PrepareStatements() {
    Status status =
        read_meta_.Prepare(db_, "SELECT m.hlc, m.node, m.deleted, n.node_id, m.cols FROM syncline_rows m "
                                "LEFT JOIN syncline_nodes n ON n.ref = m.node WHERE m.tid = ?1 AND m.pk = ?2");
    if (!status.ok()) return status;
    // A new row takes the next rowid, which is the next version (one more
    // than the highest); a known row moves to the next version.
    status = write_meta_.Prepare(db_, "INSERT INTO syncline_rows(version, tid, pk, clock, hlc, node, deleted, cols) "
                                      "VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tid, pk) DO UPDATE SET "
                                      "version = (SELECT coalesce(max(version), 0) + 1 FROM syncline_rows), "
                                      "clock = excluded.clock, hlc = excluded.hlc, node = excluded.node, "
                                      "deleted = excluded.deleted, cols = excluded.cols");
    if (!status.ok()) return status;
    status = add_node_.Prepare(db_, "INSERT INTO syncline_nodes(node_id) VALUES (?1) ON CONFLICT DO NOTHING");
    if (!status.ok()) return status;
    return find_node_.Prepare(db_, "SELECT ref FROM syncline_nodes WHERE node_id = ?1");
  }

  Status Table(const std::string& name, core::MergeTable** out) override {
    // Batches mostly hold runs of changes to one table.
    if (last_table_ != nullptr && name == last_table_name_) {
      *out = last_table_;
      return Status::Ok();
    }
    auto it = tables_.find(name);
    if (it == tables_.end()) {
      ApplyTable table;
      bool found = false;
      Status status = FindTrackedTable(db_, name, &table.info, &found);
      if (!status.ok()) return status;
      if (!found) {
        TableInfo shape;
        status = LoadTableShape(db_, name, &shape);  // says so when there is no such table
        if (!status.ok()) return status;
        return Status(Code::kUndefinedTable, "table is not tracked (call syncline_track first)");
      }
      for (const std::string& affinity : table.info.affinity)
        table.affinity.push_back(AffinityOf(affinity));
      table.columns = table.info.columns;
      table.pk = table.info.pk;
      table.merge = table.info.merge;
      // A column-merge change may carry some columns (the merge keeps the rest).
      table.partial_rows = table.merge == core::MergeMode::kColumn;
      status = PrepareApplyTable(db_, &table);
      if (!status.ok()) return status;
      it = tables_.emplace(name, std::move(table)).first;
    }
    *out = last_table_ = &it->second;
    last_table_name_ = name;
    return Status::Ok();
  }

  Status Prepare(core::MergeChange& change) override {
    const ApplyTable& table = Of(change);
    // The key as SQLite will store it (2.0 in an INTEGER column is the row
    // 2): the metadata key must be that one, or one row gets two.
    for (std::size_t k = 0; k < change.key.size(); ++k) {
      const Affinity affinity = table.affinity[table.pk[k]];
      if (AffinityMayConvert(affinity, *change.key[k])) {
        converted_.push_back(StoredForm(affinity, *change.key[k]));
        change.key[k] = &converted_.back();
      }
    }
    Status status = EncodeMetadataKey(change.key, &change.meta_key);
    if (!status.ok()) return status;
    // The server has this row, whether its version here wins, loses or is
    // refused below: a resync keeps it.
    if (resync_ != nullptr) status = resync_->Seen(table.info.tid, change.meta_key);
    if (!status.ok()) return status;
    for (std::size_t c = 0; c < change.row.size(); ++c) {
      if (change.row[c] == nullptr) continue;  // not carried (a column-merge change)
      status = CheckValue(table, c, *change.row[c]);
      if (!status.ok()) return status;
    }
    return Status::Ok();
  }

  Status ReadVersions(const std::vector<core::MergeChange*>& changes) override {
    for (core::MergeChange* change : changes) {
      read_meta_.BindInt(1, Of(*change).info.tid);
      read_meta_.BindValue(2, change->meta_key);
      bool stored = false;
      Status status = read_meta_.Step(&stored);
      if (!status.ok()) return status;
      if (stored) {
        core::RowVersion& version = change->stored;
        version.exists = true;
        version.hlc = static_cast<core::Hlc>(read_meta_.ColumnInt(0));
        version.node = read_meta_.ColumnInt(1) == kLocalNodeRef ? local_node_ : read_meta_.ColumnText(3);
        version.deleted = read_meta_.ColumnInt(2) != 0;
        version.cols = read_meta_.ColumnValue(4).bytes;  // a blob, or NULL
      }
      read_meta_.Reset();
    }
    return Status::Ok();
  }

  Status SameContent(const core::MergeChange& change, bool* same) override {
    Statement& select = Of(change).same_row;
    for (std::size_t c = 0; c < change.row.size(); ++c)
      BindBorrowed(select, static_cast<int>(c + 1), *change.row[c]);
    Status status = select.Step(same);
    select.Reset();
    return status;
  }

  Status Admit(const core::MergeChange&) override { return Status::Ok(); }

  Status WriteRows(const std::vector<core::MergeChange*>& run, std::size_t* written) override {
    for (*written = 0; *written < run.size(); ++*written) {
      const core::MergeChange& change = *run[*written];
      const bool upsert = change.write_op == core::Op::kUpsert;
      const std::vector<const Value*>& values = upsert ? change.row : change.key;
      state_.applied_tid = Of(change).info.tid;
      state_.applied_key = &change.meta_key;
      Status status;
      if (upsert && change.partial) {
        std::vector<bool> present;
        for (const Value* value : change.row)
          present.push_back(value != nullptr);
        PartialWrite* partial = nullptr;
        status = GetPartialWrite(db_, &Of(change), present, &partial);
        bool updated = false;
        if (status.ok() && partial->update.get() != nullptr) {
          status = Run(partial->update, values);
          updated = sqlite3_changes(db_) > 0;
        }
        if (status.ok() && !updated) status = Run(partial->insert, values);
      } else {
        status = Run(upsert ? Of(change).upsert : Of(change).remove, values);
      }
      state_.applied_key = nullptr;
      if (!status.ok()) return status;
    }
    return Status::Ok();
  }

  Status WriteVersions(const std::vector<const core::MergeChange*>& changes) override {
    for (const core::MergeChange* change : changes) {
      std::int64_t node_ref = 0;
      Status status = NodeRef(change->node, &node_ref);
      if (!status.ok()) return status;
      write_meta_.BindInt(1, Of(*change).info.tid);
      write_meta_.BindValue(2, change->meta_key);
      write_meta_.BindInt(3, change->clock);
      write_meta_.BindInt(4, static_cast<std::int64_t>(change->hlc));
      write_meta_.BindInt(5, node_ref);
      write_meta_.BindInt(6, change->deleted ? 1 : 0);
      if (!change->cols.empty())
        write_meta_.BindValue(7, Value::Blob(change->cols));  // else NULL: every column at the row's stamp
      status = write_meta_.Run();
      write_meta_.Reset();
      if (!status.ok()) return status;
    }
    return Status::Ok();
  }

  Status ReadPeer(const core::Cursor& cursor, bool* found, std::string* position) override {
    Statement read;
    Status status = read.Prepare(db_, "SELECT position FROM syncline_peers WHERE node_id = ?1 AND filter = ?2");
    if (!status.ok()) return status;
    read.BindText(1, cursor.node);
    read.BindText(2, cursor.filter);
    status = read.Step(found);
    if (status.ok() && *found) *position = read.ColumnText(0);
    return status;
  }

  Status WritePeer(const core::Cursor& cursor) override {
    Statement write;
    Status status = write.Prepare(db_, "INSERT OR REPLACE INTO syncline_peers(node_id, filter, cursor, position) "
                                       "VALUES (?1, ?2, ?3, ?4)");
    if (!status.ok()) return status;
    write.BindText(1, cursor.node);
    write.BindText(2, cursor.filter);
    write.BindText(3, core::EncodeCursor(cursor));
    write.BindText(4, cursor.position);
    return write.Run();
  }

  void ReceiveStamp(core::Hlc hlc) override { sqlite::ReceiveStamp(state_, hlc); }

  Status LogRefusal(const core::MergeChange& change, core::Refusal* refusal) override {
    refusal->sqlstate = core::SqlStateOf(refusal->reason.code());
    return LogLocalRefusal(db_, *batch_, change.index, *refusal);
  }

 private:
  static ApplyTable& Of(const core::MergeChange& change) { return *static_cast<ApplyTable*>(change.table); }

  // Runs a write with the values given (null: a column not written).
  static Status Run(Statement& write, const std::vector<const Value*>& values) {
    int bound = 0;
    for (const Value* value : values)
      if (value != nullptr) BindBorrowed(write, ++bound, *value);
    Status status = write.Run();
    write.Reset();
    return status;
  }

  Status NodeRef(const std::string& node, std::int64_t* ref) {
    if (node == local_node_) {
      *ref = kLocalNodeRef;
      return Status::Ok();
    }
    if (auto it = node_refs_.find(node); it != node_refs_.end()) {
      *ref = it->second;
      return Status::Ok();
    }
    add_node_.BindText(1, node);
    Status status = add_node_.Run();
    add_node_.Reset();
    if (!status.ok()) return status;
    find_node_.BindText(1, node);
    bool found = false;
    status = find_node_.Step(&found);
    *ref = find_node_.ColumnInt(0);
    find_node_.Reset();
    if (!status.ok()) return status;
    node_refs_[node] = *ref;
    return Status::Ok();
  }

  ConnectionState& state_;
  sqlite3* db_;
  const core::Batch* batch_;
  std::string local_node_;
  ResyncCandidates* resync_;
  Statement read_meta_, write_meta_, add_node_, find_node_;
  std::map<std::string, ApplyTable> tables_;  // by name as the batch spells it
  ApplyTable* last_table_ = nullptr;          // the one the last change named ...
  std::string last_table_name_;               // ... spelt so
  std::deque<Value> converted_;               // keys in the form SQLite stores them
  std::unordered_map<std::string, std::int64_t> node_refs_;
};

}  // namespace

Status ParseApplyOptions(const std::string& text, ApplyOptions* out) {
  *out = ApplyOptions();
  if (text.empty()) return Status::Ok();
  core::Json json;
  Status status = core::ParseJson(text, &json);
  if (!status.ok() || !json.is_object()) return Status(Code::kInvalidInput, "options must be a JSON object");
  for (const auto& [key, value] : json.members) {
    if (key != "from_server" && key != "resync")
      return Status(Code::kInvalidInput,
                    "options: unknown option \"" + key + "\" (known: \"from_server\", \"resync\")");
    if (value.kind != core::Json::Kind::kTrue && value.kind != core::Json::Kind::kFalse)
      return Status(Code::kInvalidInput, "options: \"" + key + "\" must be true or false");
    (key == "from_server" ? out->from_server : out->resync) = value.kind == core::Json::Kind::kTrue;
  }
  // Only a page of this device's server tells which rows the server has.
  if (out->resync && !out->from_server)
    return Status(Code::kInvalidInput, "options: \"resync\" needs \"from_server\": true");
  return Status::Ok();
}

Status ApplyPush(ConnectionState& state, const std::string& text, const ApplyOptions& apply_options,
                 std::string* summary) {
  sqlite3* db = state.db;
  core::Batch batch;
  Status status = core::DecodeBatch(text, &batch);
  if (!status.ok()) return status;
  core::Cursor cursor;
  status = core::BatchCursor(batch, &cursor);
  if (!status.ok()) return status;
  status = EnsureMetadata(db);
  if (!status.ok()) return status;
  core::MergeOptions options;
  status = LocalNodeId(db, &options.local_node);
  if (!status.ok()) return status;
  options.max_drift_ms = MaxDriftMs(db);
  options.wall_ms = state.WallMs();
  options.copied_database_docs = "docs/sqlite.md, \"Copied database files\"";
  if (apply_options.from_server) options.role = core::MergeRole::kDevice;
  options.replace_cursor = apply_options.resync;

  if (apply_options.resync) {
    bool in_progress = false;
    status = ResyncInProgress(db, &in_progress);
    if (!status.ok()) return status;
    if (!in_progress)
      return Status(Code::kInvalidInput,
                    "options: \"resync\": no resync in progress (call syncline_resync_begin first)");
  }

  Savepoint savepoint(db, "syncline_apply");
  if (!savepoint.status().ok()) return savepoint.status();
  // Foreign keys are checked when the transaction commits, so that the
  // merge's order (core/merge.h) need not be theirs. SQLite resets this at
  // the end of the transaction.
  status = Exec(db, "PRAGMA defer_foreign_keys = ON");
  if (!status.ok()) return status;
  const core::Hlc clock_before = state.clock;
  // A page from the server that carries its schema document (this file is
  // behind it): the file follows it first, in this savepoint, so that the
  // page's rows find their tables and columns.
  std::string schema_summary;
  if (apply_options.from_server && !batch.schema.empty()) {
    status = FollowSchema(state, batch.schema, &schema_summary);
    if (!status.ok()) {
      state.clock = clock_before;
      return status.WithPrefix("batch: schema: ");
    }
  }
  {
    ApplyingScope applying(state);
    ResyncCandidates resync;
    if (apply_options.resync) status = resync.Prepare(db);
    SqliteStore store(state, options.local_node, batch, apply_options.resync ? &resync : nullptr);
    if (status.ok()) status = store.PrepareStatements();
    core::MergeResult result;
    if (status.ok()) status = core::Merge(batch, store, options, &result);
    if (status.ok()) status = PersistClock(state);
    if (status.ok()) *summary = std::move(result.summary);
  }
  if (status.ok() && !schema_summary.empty() && summary->size() >= 2 && summary->back() == '}') {
    summary->insert(summary->size() - 1, std::string(summary->size() > 2 ? "," : "") + "\"schema\":" + schema_summary);
  }
  if (status.ok()) {
    status = savepoint.Release();
    if (!status.ok())
      status = status.WithPrefix("batch: ");  // deferred foreign keys: a row references one nothing holds
  }
  // A rejected batch leaves nothing behind, not even an advanced clock.
  if (!status.ok()) state.clock = clock_before;
  return status;
}

}  // namespace syncline::sqlite
