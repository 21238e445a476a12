#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <unordered_map>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/version_order.h"
#include "sqlite_extension/sqlite_util.h"
#include "sqlite_extension/sync.h"
#include "sqlite_extension/tracking.h"

namespace syncline::sqlite {

using core::Change;
using core::Code;
using core::Status;
using core::Value;

namespace {

// Capture stays off while apply_push writes user tables: merged changes keep
// their origin's stamps and must not come back as local ones.
class CaptureOff {
 public:
  explicit CaptureOff(ConnectionState& state) : state_(state) { ++state_.applying; }
  ~CaptureOff() { --state_.applying; }

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

struct ApplyTable {
  TableInfo info;
  std::vector<Affinity> affinity;  // per column of info
  Statement upsert;                // INSERT ... ON CONFLICT (pk) DO UPDATE, all columns in table order
  Statement remove;                // DELETE by primary key
  Statement same_row;              // 1 when the current row equals the bound values
};

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

// Values an ordinary (non-STRICT) column would silently convert or mangle are
// refused, so that every node stores the value the origin wrote.
Status CheckValue(const ApplyTable& table, std::size_t column, const Value& value) {
  bool nan = value.type == Value::Type::kReal && std::isnan(value.real);
  if (!nan && (value.type == Value::Type::kNull || table.info.strict)) return Status::Ok();  // STRICT: SQLite checks
  const Affinity affinity = table.affinity[column];
  bool ok = !nan;
  if (affinity == Affinity::kInteger || affinity == Affinity::kReal)
    ok = ok && (value.type == Value::Type::kInteger || value.type == Value::Type::kReal);
  else if (affinity == Affinity::kText)
    ok = ok && value.type == Value::Type::kText;
  if (ok) return Status::Ok();
  const std::string where = "column \"" + table.info.columns[column] + "\" ";
  if (nan) return Status(Code::kTypeMismatch, where + "cannot hold NaN (SQLite stores NaN as NULL)");
  std::string expected = affinity == Affinity::kInteger ? "integer"
                         : affinity == Affinity::kReal  ? "real"
                         : affinity == Affinity::kText  ? "text"
                                                        : "numeric";
  return Status(Code::kTypeMismatch, where + "expects " + expected + ", got " + core::TypeName(value.type));
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
    auto real_end = std::from_chars(text.data(), text.data() + text.size(), d);
    if (!text.empty() && int_end.ec == std::errc() && int_end.ptr == text.data() + text.size())
      return Value::Integer(i);
    if (text.empty() || real_end.ec != std::errc() || real_end.ptr != text.data() + text.size() || !std::isfinite(d))
      return value;
    number = Value::Real(d);
  }
  if (number.type == Value::Type::kReal && std::isfinite(number.real) && number.real == std::floor(number.real) &&
      number.real >= -9223372036854775808.0 && number.real < 9223372036854775808.0 &&
      !(number.real == 0 && std::signbit(number.real)))
    return Value::Integer(static_cast<std::int64_t>(number.real));
  return number;
}

// Binds a value without copying it: the batch outlives the statement's use,
// which is reset and cleared right after.
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

// The column named `name` in `names`, looked for first at `hint` (batches
// list columns in table order), or names.size().
std::size_t FindColumn(const std::vector<std::string>& names, const std::string& name, std::size_t hint) {
  if (hint < names.size() && names[hint] == name) return hint;
  std::size_t c = 0;
  while (c < names.size() && names[c] != name)
    ++c;
  return c;
}

class Applier {
 public:
  Applier(ConnectionState& state, const core::Batch& batch, std::string local_node)
      : state_(state), db_(state.db), batch_(batch), local_node_(std::move(local_node)) {}

  Status Prepare() {
    max_drift_ms_ = MaxDriftMs(db_);
    wall_ms_ = state_.WallMs();
    Status status =
        read_meta_.Prepare(db_, "SELECT m.hlc, m.node, m.deleted, n.node_id FROM syncline_rows m "
                                "LEFT JOIN syncline_nodes n ON n.ref = m.node WHERE m.tid = ?1 AND m.pk = ?2");
    if (!status.ok()) return status;
    status =
        // A new row takes the next rowid, which is the next version (one
        // more than the highest); a known row moves to the next version.
        write_meta_.Prepare(db_, "INSERT INTO syncline_rows(version, tid, pk, clock, hlc, node, deleted) VALUES ("
                                 "NULL, ?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tid, pk) DO UPDATE SET version = "
                                 "(SELECT coalesce(max(version), 0) + 1 FROM syncline_rows), "
                                 "clock = excluded.clock, hlc = excluded.hlc, node = excluded.node, "
                                 "deleted = excluded.deleted");
    if (!status.ok()) return status;
    status = add_node_.Prepare(db_, "INSERT INTO syncline_nodes(node_id) VALUES (?1) ON CONFLICT DO NOTHING");
    if (!status.ok()) return status;
    return find_node_.Prepare(db_, "SELECT ref FROM syncline_nodes WHERE node_id = ?1");
  }

  Status Apply(const Change& change) {
    ApplyTable* table = nullptr;
    Status status = Table(change.table, &table);
    if (!status.ok()) return status;
    const TableInfo& info = table->info;

    // The batch names key columns; they must be exactly this table's key.
    std::vector<const Value*>& key = key_;
    key.assign(info.pk.size(), nullptr);
    key_storage_.resize(info.pk.size());
    for (std::size_t i = 0; i < change.pk.size(); ++i) {
      const core::ColumnValue& column = change.pk[i];
      std::size_t k = 0;
      if (i < info.pk.size() && info.columns[info.pk[i]] == column.column) {
        k = i;
      } else {
        while (k < info.pk.size() && info.columns[info.pk[k]] != column.column)
          ++k;
      }
      if (k == info.pk.size())
        return Status(Code::kUndefinedColumn, "\"pk\" names column \"" + column.column +
                                                  "\", which is not in the table's primary key (" + KeyNames(info) +
                                                  ")");
      // The key as SQLite will store it (2.0 in an INTEGER column is the
      // row 2): the metadata key must be that one, or one row gets two.
      const Affinity affinity = table->affinity[info.pk[k]];
      if (AffinityMayConvert(affinity, column.value)) {
        key_storage_[k] = StoredForm(affinity, column.value);
        key[k] = &key_storage_[k];
      } else {
        key[k] = &column.value;
      }
    }
    for (std::size_t k = 0; k < info.pk.size(); ++k) {
      if (key[k] == nullptr)
        return Status(Code::kUndefinedColumn, "\"pk\" lacks primary key column \"" + info.columns[info.pk[k]] + "\"");
    }
    Value& meta_key = meta_key_;
    status = EncodeMetadataKey(key, &meta_key);
    if (!status.ok()) return status;

    std::vector<const Value*>& row = row_;
    row.clear();
    if (change.op == core::Op::kUpsert) {
      row.assign(info.columns.size(), nullptr);
      for (std::size_t i = 0; i < change.row.size(); ++i) {
        const core::ColumnValue& column = change.row[i];
        std::size_t c = FindColumn(info.columns, column.column, i);
        if (c == info.columns.size()) return Status(Code::kUndefinedColumn, "unknown column \"" + column.column + "\"");
        status = CheckValue(*table, c, column.value);
        if (!status.ok()) return status;
        row[c] = &column.value;
      }
      for (std::size_t c = 0; c < info.columns.size(); ++c) {
        if (row[c] == nullptr)
          return Status(Code::kUndefinedColumn, "\"row\" lacks column \"" + info.columns[c] + "\"");
      }
    }

    status = core::CheckDrift(change, batch_.source, wall_ms_, max_drift_ms_);
    if (!status.ok()) return status;
    ReceiveStamp(state_, change.hlc);

    // Compare with the row's current version: the stored one, or one an
    // earlier change of this batch wrote.
    read_meta_.Reset();
    read_meta_.BindInt(1, info.tid);
    read_meta_.BindValue(2, meta_key);
    bool stored = false;
    status = read_meta_.Step(&stored);
    if (!status.ok()) return status;
    if (stored) {
      core::Hlc stored_hlc = static_cast<core::Hlc>(read_meta_.ColumnInt(0));
      std::string stored_node = read_meta_.ColumnInt(1) == kLocalNodeRef ? local_node_ : read_meta_.ColumnText(3);
      bool stored_deleted = read_meta_.ColumnInt(2) != 0;
      read_meta_.Reset();
      int order = core::CompareStamps(change.hlc, change.node, stored_hlc, stored_node);
      if (order < 0) return Skip();
      if (order == 0) {
        bool same = false;
        status = SameContent(*table, change, row, stored_deleted, &same);
        if (!status.ok()) return status;
        if (!same)
          return Status(Code::kCorruptBatch, "stamp " + core::HlcToText(change.hlc) + "/" + change.node +
                                                 " is already known for this row with different content");
        return Skip();
      }
    }
    read_meta_.Reset();
    if (change.node == local_node_) return core::CopiedDatabase("docs/sqlite.md, \"Copied database files\"");

    // Statements are left reset and cleared after each use.
    Statement& write = change.op == core::Op::kUpsert ? table->upsert : table->remove;
    const std::vector<const Value*>& values = change.op == core::Op::kUpsert ? row : key;
    for (std::size_t i = 0; i < values.size(); ++i)
      BindBorrowed(write, static_cast<int>(i + 1), *values[i]);
    status = write.Run();
    write.Reset();
    if (!status.ok()) return status;

    std::int64_t node_ref = 0;
    status = NodeRef(change.node, &node_ref);
    if (!status.ok()) return status;
    write_meta_.Reset();
    write_meta_.BindInt(1, info.tid);
    write_meta_.BindValue(2, meta_key);
    write_meta_.BindInt(3, change.clock);
    write_meta_.BindInt(4, static_cast<std::int64_t>(change.hlc));
    write_meta_.BindInt(5, node_ref);
    write_meta_.BindInt(6, change.op == core::Op::kDelete ? 1 : 0);
    status = write_meta_.Run();
    if (!status.ok()) return status;
    ++applied_;
    return Status::Ok();
  }

  Status RecordCursor(const core::Cursor& cursor) {
    Statement read;
    Status status = read.Prepare(db_, "SELECT position FROM syncline_peers WHERE node_id = ?1 AND filter = ?2");
    if (!status.ok()) return status;
    read.BindText(1, cursor.node);
    read.BindText(2, cursor.filter);
    bool found = false;
    status = read.Step(&found);
    if (!status.ok()) return status;
    // A page delivered late (after a newer one) must not move the cursor back.
    if (found && core::ComparePositions(cursor.position, read.ColumnText(0)) <= 0) return Status::Ok();
    Statement write;
    status = write.Prepare(db_, "INSERT OR REPLACE INTO syncline_peers(node_id, filter, cursor, position) "
                                "VALUES (?1, ?2, ?3, ?4)");
    if (!status.ok()) return status;
    write.BindText(1, cursor.node);
    write.BindText(2, cursor.filter);
    write.BindText(3, core::EncodeCursor(cursor));
    write.BindText(4, cursor.position);
    return write.Run();
  }

  void Finish() {
    read_meta_ = Statement();
    write_meta_ = Statement();
    add_node_ = Statement();
    find_node_ = Statement();
    last_table_ = nullptr;
    tables_.clear();
  }

  std::int64_t applied() const { return applied_; }
  std::int64_t skipped() const { return skipped_; }

 private:
  Status Skip() {
    ++skipped_;
    return Status::Ok();
  }

  static std::string KeyNames(const TableInfo& info) {
    std::string names;
    for (std::size_t k = 0; k < info.pk.size(); ++k)
      names += (k > 0 ? ", " : "") + info.columns[info.pk[k]];
    return names;
  }

  Status Table(const std::string& name, ApplyTable** out) {
    // Batches mostly hold runs of changes to one table.
    if (last_table_ != nullptr && name == last_table_name_) {
      *out = last_table_;
      return Status::Ok();
    }
    auto it = tables_.find(name);
    if (it != tables_.end()) {
      *out = last_table_ = &it->second;
      last_table_name_ = name;
      return Status::Ok();
    }
    ApplyTable table;
    bool found = false;
    Status status = FindTrackedTable(db_, name, &table.info, &found);
    if (!status.ok()) return status;
    if (!found) {
      TableInfo shape;
      status = LoadTableShape(db_, name, &shape);
      if (!status.ok()) return status;
      return Status(Code::kUndefinedTable, "table is not tracked (call syncline_track first)");
    }
    for (const std::string& affinity : table.info.affinity)
      table.affinity.push_back(AffinityOf(affinity));
    status = PrepareApplyTable(db_, &table);
    if (!status.ok()) return status;
    *out = last_table_ = &tables_.emplace(name, std::move(table)).first->second;
    last_table_name_ = name;
    return Status::Ok();
  }

  Status SameContent(ApplyTable& table, const Change& change, const std::vector<const Value*>& row, bool stored_deleted,
                     bool* same) {
    if ((change.op == core::Op::kDelete) != stored_deleted) {
      *same = false;
      return Status::Ok();
    }
    if (change.op == core::Op::kDelete) {
      *same = true;
      return Status::Ok();
    }
    Statement& select = table.same_row;
    for (std::size_t c = 0; c < row.size(); ++c)
      BindBorrowed(select, static_cast<int>(c + 1), *row[c]);
    Status status = select.Step(same);
    select.Reset();
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
    add_node_.Reset();
    add_node_.BindText(1, node);
    Status status = add_node_.Run();
    if (!status.ok()) return status;
    find_node_.Reset();
    find_node_.BindText(1, node);
    bool found = false;
    status = find_node_.Step(&found);
    if (!status.ok()) return status;
    *ref = find_node_.ColumnInt(0);
    find_node_.Reset();
    node_refs_[node] = *ref;
    return Status::Ok();
  }

  ConnectionState& state_;
  sqlite3* db_;
  const core::Batch& batch_;
  std::string local_node_;
  std::int64_t max_drift_ms_ = core::kDefaultMaxDriftMs;
  std::int64_t wall_ms_ = 0;
  Statement read_meta_, write_meta_, add_node_, find_node_;
  std::map<std::string, ApplyTable> tables_;  // by name as the batch spells it
  ApplyTable* last_table_ = nullptr;          // the one the last change named ...
  std::string last_table_name_;               // ... spelt so
  // Per change, kept to reuse their memory: the key's values (pointing into
  // the change or, where SQLite's affinity converts them, key_storage_), its
  // metadata text, and the row's values in table order.
  std::vector<const Value*> key_, row_;
  std::vector<Value> key_storage_;
  Value meta_key_;
  std::unordered_map<std::string, std::int64_t> node_refs_;
  std::int64_t applied_ = 0;
  std::int64_t skipped_ = 0;
};

}  // namespace

Status ApplyPush(ConnectionState& state, const std::string& text, std::string* summary) {
  sqlite3* db = state.db;
  core::Batch batch;
  Status status = core::DecodeBatch(text, &batch);
  if (!status.ok()) return status;
  core::Cursor cursor;
  if (!batch.cursor.empty()) {
    status = core::DecodeCursor(batch.cursor, &cursor);
    if (!status.ok()) return status.WithPrefix("batch: ");
    if (cursor.node != batch.source)
      return Status(Code::kInvalidInput,
                    "batch: cursor was issued by node " + cursor.node + ", not by the batch's source " + batch.source);
  }
  status = EnsureMetadata(db);
  if (!status.ok()) return status;
  std::string local_node;
  status = LocalNodeId(db, &local_node);
  if (!status.ok()) return status;

  Savepoint savepoint(db, "syncline_apply");
  if (!savepoint.status().ok()) return savepoint.status();
  // The order of a batch is the source's version order, not a foreign key
  // order (a parent updated after its children comes after them): foreign
  // keys are checked when the transaction commits. SQLite resets this at the
  // end of the transaction.
  status = Exec(db, "PRAGMA defer_foreign_keys = ON");
  if (!status.ok()) return status;
  const core::Hlc clock_before = state.clock;
  {
    CaptureOff capture_off(state);
    Applier applier(state, batch, local_node);
    status = applier.Prepare();
    for (std::size_t i = 0; status.ok() && i < batch.changes.size(); ++i) {
      status = applier.Apply(batch.changes[i]);
      if (!status.ok()) status = status.WithPrefix(core::ChangeContext(i, batch.changes[i].table));
    }
    if (status.ok() && !batch.cursor.empty()) status = applier.RecordCursor(cursor);
    if (status.ok()) status = PersistClock(state);
    applier.Finish();
    if (status.ok()) {
      *summary = core::ApplySummary({applier.applied(), applier.skipped(), -1}, batch.source,
                                    batch.cursor.empty() ? "" : core::EncodeCursor(cursor));
    }
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
