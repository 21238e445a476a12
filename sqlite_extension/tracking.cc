#include "sqlite_extension/tracking.h"

#include <array>
#include <cmath>

#include "core/changeset.h"
#include "core/json.h"
#include "sqlite_extension/ddl.h"
#include "sqlite_extension/sqlite_util.h"

namespace syncline::sqlite {

using core::Code;
using core::Status;

namespace {

// The capture triggers (docs/sqlite.md, "Capture"). Each write of a tracked
// row upserts that row's one metadata row: a new local version (one more than
// the highest), clock + 1, a stamp above both the connection's clock and the
// row's previous stamp, origin node 0 (this database), the tombstone flag.
// The functions they call exist only where the extension is loaded, so a
// connection without it fails loudly ("no such function") instead of writing
// unsynced rows.

// clock + 1, saturating at the greatest integer (docs/protocol.md, "Stamps"):
// SQLite would turn the sum into a real. syncline_stamp saturates stamps.
constexpr const char* kNextClock = "clock = min(clock, 9223372036854775806) + 1";

// The same, correlated with the conflicting row so that SQLite evaluates it
// for every row of a multi-row upsert rather than once per statement.
constexpr const char* kNextVersionPerConflict =
    "(SELECT coalesce(max(version), 0) + 1 FROM syncline_rows WHERE excluded.tid IS NOT NULL)";

std::string KeyCall(const TableInfo& table, const std::string& prefix) {
  std::string call = "syncline_key(";
  for (std::size_t i = 0; i < table.pk.size(); ++i) {
    if (i > 0) call += ", ";
    call += prefix + QuoteIdentifier(table.columns[table.pk[i]]);
  }
  return call + ")";
}

// One metadata upsert. A new row takes the next rowid (SQLite assigns one
// more than the highest, which is the next version); a conflicting row moves
// to the next version. The SELECT never reads syncline_rows: if it did, SQLite
// would copy its result into a temporary table for every row.
std::string MetaUpsert(std::int64_t tid, const std::string& key, int deleted, const std::string& from_where,
                       const std::string& update_where = "", const std::string& cols = "") {
  std::string tid_text = std::to_string(tid);
  std::string deleted_text = std::to_string(deleted);
  // One row (no FROM): VALUES, which SQLite evaluates in line, without the
  // coroutine of a SELECT.
  const bool one_row = from_where.empty();
  return "INSERT INTO syncline_rows(version, tid, pk, clock, hlc, node, deleted) " +
         std::string(one_row ? "VALUES (" : "SELECT ") + "NULL, " + tid_text + ", " + key +
         ", 1, syncline_stamp(NULL), 0, " + deleted_text + (one_row ? ")" : " " + from_where) +
         " ON CONFLICT (tid, pk) DO UPDATE SET version = " + kNextVersionPerConflict + ", " + kNextClock +
         ", hlc = syncline_stamp(hlc), node = 0, deleted = " + deleted_text + (cols.empty() ? "" : ", cols = " + cols) +
         update_where + ";\n";
}

// A column-merge table's cols for an UPDATE (column_capture.cc): the stored
// value of every column before and after. Evaluated after hlc, which
// precedes it in syncline_rows.
std::string ColumnStampsCall(const TableInfo& table) {
  std::string list;
  core::JsonWriter writer(&list);
  writer.BeginArray();
  writer.BeginArray();
  for (const std::string& column : table.columns)
    writer.String(column);
  writer.EndArray();
  writer.BeginArray();
  for (int index : table.pk)
    writer.Int(index);
  writer.EndArray();
  writer.EndArray();
  std::string call =
      "syncline_column_stamps(cols, hlc, node, deleted, " + std::to_string(table.tid) + ", " + QuoteText(list);
  for (const std::string& column : table.columns)
    call += ", OLD." + QuoteIdentifier(column) + ", NEW." + QuoteIdentifier(column);
  return call + ")";
}

}  // namespace

Status LoadUniqueKeys(sqlite3* db, const TableInfo& table, UniqueKeys* out) {
  Statement indexes;
  Status status = indexes.Prepare(db, "SELECT name FROM pragma_index_list(?1) WHERE \"unique\" AND origin <> 'pk'");
  if (!status.ok()) return status;
  indexes.BindText(1, table.name);
  while (true) {
    bool has_row = false;
    status = indexes.Step(&has_row);
    if (!status.ok()) return status;
    if (!has_row) break;
    std::string index = indexes.ColumnText(0);
    Statement info;
    status = info.Prepare(db, "SELECT cid, name FROM pragma_index_info(?1) ORDER BY seqno");
    if (!status.ok()) return status;
    info.BindText(1, index);
    std::vector<std::string> columns;
    while (true) {
      status = info.Step(&has_row);
      if (!status.ok()) return status;
      if (!has_row) break;
      if (info.ColumnInt(0) == -2) out->expression_index = index;
      columns.push_back(info.ColumnInt(0) == -1 ? "rowid" : info.ColumnText(1));
    }
    out->keys.push_back(std::move(columns));
  }
  return Status::Ok();
}

namespace {

constexpr const char* kTriggerEvents[] = {"insert", "update", "rekey", "delete", "guard_insert", "guard_update"};

std::string TriggerName(const char* event, const std::string& table) {
  return QuoteIdentifier(CaptureTriggerName(event, table));
}

// One trigger as SQLite keeps it in sqlite_schema.sql (no final semicolon),
// so that SyncSchema (ddl.cc) can compare the two texts.
CaptureTrigger Trigger(const char* event, const std::string& table, const std::string& rest) {
  return {CaptureTriggerName(event, table), "CREATE TRIGGER " + TriggerName(event, table) + rest};
}

}  // namespace

std::string CaptureTriggerName(const char* event, const std::string& table) {
  return std::string("syncline_") + event + "_" + table;
}

std::string DropTriggers(const std::string& table) {
  std::string sql;
  for (const char* event : kTriggerEvents)
    sql += "DROP TRIGGER IF EXISTS " + TriggerName(event, table) + ";\n";
  return sql;
}

std::vector<CaptureTrigger> CreateTriggers(const TableInfo& table, const UniqueKeys& unique) {
  const std::string quoted = QuoteIdentifier(table.name);
  const std::string key_new = KeyCall(table, "NEW.");
  const std::string key_old = KeyCall(table, "OLD.");
  const std::int64_t tid = table.tid;
  // Capture skips only the row apply_push writes (extension.cc, SqlCapturing);
  // the key is encoded only while an apply runs.
  const std::string tid_text = std::to_string(tid);
  const std::string capturing_new = "(syncline_capturing() OR syncline_capturing(" + tid_text + ", " + key_new + "))";
  const std::string capturing_old = "(syncline_capturing() OR syncline_capturing(" + tid_text + ", " + key_old + "))";
  const std::string when = " WHEN " + capturing_new + " BEGIN\n";

  // INSERT OR REPLACE and UPDATE OR REPLACE delete rows that clash on a
  // secondary UNIQUE key without firing DELETE triggers. The guard triggers
  // note every row that could clash before the write; after it, the noted rows
  // that are gone get their tombstones. A note left by a write that did not
  // happen (OR IGNORE) is harmless: its row still exists when it is checked.
  // The tombstones take their versions before the write's own upsert: a peer
  // applies them in that order, so the removed rows free their UNIQUE values
  // before the new row takes them.
  std::vector<CaptureTrigger> out;
  std::string displaced_capture;
  if (!unique.keys.empty()) {
    std::string clash;
    for (const auto& key : unique.keys) {
      if (!clash.empty()) clash += " OR ";
      clash += "(";
      for (std::size_t i = 0; i < key.size(); ++i) {
        if (i > 0) clash += " AND ";
        clash += QuoteIdentifier(key[i]) + " = NEW." + QuoteIdentifier(key[i]);
      }
      clash += ")";
    }
    std::string note = "INSERT OR IGNORE INTO syncline_displaced(tid, pk) SELECT " + std::to_string(tid) + ", " +
                       KeyCall(table, "") + " FROM " + quoted + " WHERE " + clash + ";\n";
    out.push_back(Trigger("guard_insert", table.name, " BEFORE INSERT ON " + quoted + when + note + "END"));
    out.push_back(Trigger("guard_update", table.name, " BEFORE UPDATE ON " + quoted + when + note + "END"));
    displaced_capture = MetaUpsert(tid, "d.pk", 1,
                                   "FROM syncline_displaced d WHERE d.tid = " + std::to_string(tid) +
                                       " AND NOT syncline_row_exists(d.tid, d.pk)",
                                   " WHERE deleted = 0") +
                        "DELETE FROM syncline_displaced WHERE tid = " + std::to_string(tid) + ";\n";
  }

  // A column-merge table's metadata also keeps its columns' stamps: an
  // INSERT and a DELETE put every column at the row's stamp (NULL), an
  // UPDATE only the columns it changed.
  const bool columns = table.merge == core::MergeMode::kColumn;
  const std::string whole_row = columns ? "NULL" : "";
  out.push_back(Trigger("insert", table.name,
                        " AFTER INSERT ON " + quoted + when + displaced_capture +
                            MetaUpsert(tid, key_new, 0, "", "", whole_row) + "END"));
  // An UPDATE that changes the primary key is a delete of the old key and an
  // upsert of the new one. The delete has its own trigger, UPDATE OF the key
  // columns, so that the common update (of other columns) neither fires it
  // nor encodes the old key.
  std::string key_columns;
  for (std::size_t i = 0; i < table.pk.size(); ++i)
    key_columns += (i > 0 ? ", " : "") + QuoteIdentifier(table.columns[table.pk[i]]);
  out.push_back(Trigger("update", table.name,
                        " AFTER UPDATE ON " + quoted + when + displaced_capture +
                            MetaUpsert(tid, key_new, 0, "", "", columns ? ColumnStampsCall(table) : "") + "END"));
  out.push_back(Trigger("rekey", table.name,
                        " AFTER UPDATE OF " + key_columns + " ON " + quoted + " WHEN " + capturing_old + " AND " +
                            key_old + " IS NOT " + key_new + " BEGIN\n" +
                            MetaUpsert(tid, key_old, 1, "", "", whole_row) + "END"));
  out.push_back(Trigger("delete", table.name,
                        " AFTER DELETE ON " + quoted + " WHEN " + capturing_old + " BEGIN\n" +
                            MetaUpsert(tid, key_old, 1, "", "", whole_row) + "END"));
  return out;
}

std::vector<CaptureTrigger> BlockingTriggers(const std::string& table, const std::string& message) {
  std::string raise = " BEGIN SELECT RAISE(ABORT, '";
  for (char c : message)
    raise += c == '\'' ? std::string("''") : std::string(1, c);
  raise += "'); END";
  const std::string quoted = QuoteIdentifier(table);
  return {Trigger("insert", table, " BEFORE INSERT ON " + quoted + raise),
          Trigger("update", table, " BEFORE UPDATE ON " + quoted + raise),
          Trigger("delete", table, " BEFORE DELETE ON " + quoted + raise)};
}

std::string TombstoneMissingSql(std::int64_t tid) {
  const std::string tid_text = std::to_string(tid);
  return MetaUpsert(tid, "d.pk", 1,
                    "FROM syncline_rows d WHERE d.tid = " + tid_text +
                        " AND d.deleted = 0 AND NOT syncline_row_exists(d.tid, d.pk)",
                    " WHERE deleted = 0");
}

std::string CreateSql(const std::vector<CaptureTrigger>& triggers) {
  std::string sql;
  for (const CaptureTrigger& trigger : triggers)
    sql += trigger.sql + ";\n";
  return sql;
}

std::string PkColumnsJson(const TableInfo& table) {
  std::string out;
  core::JsonWriter writer(&out);
  writer.BeginArray();
  for (int index : table.pk)
    writer.String(table.columns[index]);
  writer.EndArray();
  return out;
}

std::string KeyPredicate(const TableInfo& table) {
  std::string sql;
  for (std::size_t i = 0; i < table.pk.size(); ++i) {
    if (i > 0) sql += " AND ";
    sql += QuoteIdentifier(table.columns[table.pk[i]]) + " IS ?" + std::to_string(i + 1);
  }
  return sql;
}

Status Track(ConnectionState& state, const std::string& name, const std::string& options, std::string* result) {
  sqlite3* db = state.db;
  core::MergeMode merge = core::MergeMode::kRow;
  Status status = ParseTrackOptions(options, &merge);
  if (!status.ok()) return status;
  status = EnsureMetadata(db);
  if (!status.ok()) return status;

  TableInfo table;
  status = LoadTableShape(db, name, &table);
  if (!status.ok()) return status;
  if (table.name.compare(0, 9, "syncline_") == 0)
    return Status(Code::kInvalidInput, "table \"" + table.name + "\" belongs to syncline and cannot be tracked");
  if (table.pk.empty())
    return Status(Code::kInvalidInput,
                  "table \"" + table.name + "\" has no PRIMARY KEY; syncline identifies rows by their primary key");
  UniqueKeys unique;
  status = LoadUniqueKeys(db, table, &unique);
  if (!status.ok()) return status;
  if (!unique.expression_index.empty())
    return Status(Code::kInvalidInput, "table \"" + table.name + "\" has a UNIQUE index on an expression (\"" +
                                           unique.expression_index +
                                           "\"): rows that INSERT OR REPLACE removes through it could not be "
                                           "captured; make it a plain index or a UNIQUE constraint on columns");

  Savepoint savepoint(db, "syncline_track");
  if (!savepoint.status().ok()) return savepoint.status();

  const std::string pk_columns = PkColumnsJson(table);

  // Options given replace the table's; none keep them (a new table merges
  // by row).
  Statement insert;
  status = insert.Prepare(db, "INSERT INTO syncline_tables(name, pk_columns, options) VALUES (?1, ?2, "
                              "coalesce(?3, '{}')) ON CONFLICT (name) DO UPDATE SET pk_columns = excluded.pk_columns, "
                              "options = coalesce(?3, options) RETURNING tid, options");
  if (!status.ok()) return status;
  insert.BindText(1, table.name);
  insert.BindText(2, pk_columns);
  if (!options.empty()) insert.BindText(3, merge == core::MergeMode::kColumn ? "{\"merge\":\"column\"}" : "{}");
  bool has_row = false;
  status = insert.Step(&has_row);
  if (!status.ok()) return status;
  table.tid = insert.ColumnInt(0);
  status = ParseTrackOptions(insert.ColumnText(1), &table.merge);
  if (!status.ok()) return status;
  insert = Statement();

  // Switching modes needs no rewrite: a row-merge row's stamps are all its
  // own (cols NULL) in either mode; a row-merge table keeps no cols.
  if (table.merge == core::MergeMode::kRow) {
    status = Exec(db, "UPDATE syncline_rows SET cols = NULL WHERE tid = " + std::to_string(table.tid) +
                          " AND cols IS NOT NULL");
    if (!status.ok()) return status;
  }

  // Re-tracking refreshes the triggers (the table's keys may have changed).
  OwnDdl own(state);
  status = Exec(db, DropTriggers(table.name) + CreateSql(CreateTriggers(table, unique)));
  if (!status.ok()) return status;

  // Backfill: every existing row gets metadata so that it syncs too. A row
  // the metadata holds as deleted but that exists again was written without
  // capture; it becomes a new local version.
  Statement backfill;
  status = backfill.Prepare(
      db, "INSERT INTO syncline_rows(version, tid, pk, clock, hlc, node, deleted) SELECT NULL, " +
              std::to_string(table.tid) + ", " + KeyCall(table, "") + ", 1, syncline_stamp(NULL), 0, 0 FROM " +
              QuoteIdentifier(table.name) +
              " WHERE true ON CONFLICT (tid, pk) DO UPDATE SET version = " + kNextVersionPerConflict + ", " +
              kNextClock + ", hlc = syncline_stamp(hlc), node = 0, deleted = 0 WHERE deleted = 1");
  if (!status.ok()) return status;
  status = backfill.Run();
  if (!status.ok()) return status;
  std::int64_t backfilled = sqlite3_changes(db);
  backfill = Statement();

  status = savepoint.Release();
  if (!status.ok()) return status;

  result->clear();
  core::JsonWriter out(result);
  out.BeginObject();
  out.Key("table");
  out.String(table.name);
  out.Key("primary_key");
  out.Raw(pk_columns);
  out.Key("backfilled");
  out.Int(backfilled);
  out.Key("merge");
  out.String(table.merge == core::MergeMode::kColumn ? "column" : "row");
  out.EndObject();
  return Status::Ok();
}

Status KeepVersionHighWaterMark(sqlite3* db, std::int64_t highest) {
  // Versions must never be reused, or a peer holding a cursor past them would
  // skip new changes: when the rows removed held the highest version, a
  // sentinel row (tid 0, never pulled) keeps it.
  std::int64_t remaining = 0;
  Status status = QueryInt(db, "SELECT coalesce(max(version), 0) FROM syncline_rows", &remaining);
  if (!status.ok() || remaining >= highest) return status;
  return Exec(db, "DELETE FROM syncline_rows WHERE tid = 0;\n"
                  "INSERT INTO syncline_rows(version, tid, pk, clock, hlc, node, deleted) VALUES (" +
                      std::to_string(highest) + ", 0, '', 0, 0, 0, 1);");
}

Status Untrack(ConnectionState& state, const std::string& name, bool* was_tracked) {
  sqlite3* db = state.db;
  *was_tracked = false;
  Status status = EnsureMetadata(db);
  if (!status.ok()) return status;
  Statement find;
  status = find.Prepare(db, "SELECT tid, name FROM syncline_tables WHERE name = ?1");
  if (!status.ok()) return status;
  find.BindText(1, name);
  bool found = false;
  status = find.Step(&found);
  if (!status.ok() || !found) return status;
  const std::string tid = std::to_string(find.ColumnInt(0));
  const std::string canonical = find.ColumnText(1);
  find = Statement();

  Savepoint savepoint(db, "syncline_untrack");
  if (!savepoint.status().ok()) return savepoint.status();
  OwnDdl own(state);
  std::int64_t highest = 0;
  status = QueryInt(db, "SELECT coalesce(max(version), 0) FROM syncline_rows", &highest);
  if (!status.ok()) return status;
  status = Exec(db, DropTriggers(canonical) + "DELETE FROM syncline_rows WHERE tid = " + tid + ";\n" +
                        "DELETE FROM syncline_displaced WHERE tid = " + tid + ";\n" +
                        "DELETE FROM syncline_tables WHERE tid = " + tid + ";\n");
  if (!status.ok()) return status;
  status = KeepVersionHighWaterMark(db, highest);
  if (!status.ok()) return status;
  status = savepoint.Release();
  if (!status.ok()) return status;
  *was_tracked = true;
  return Status::Ok();
}

namespace {

// The tag byte of a compact UUID key: which case its hex letters had.
constexpr unsigned char kUuidLower = 1;
constexpr unsigned char kUuidUpper = 2;

// Every captured write of a UUID-keyed table converts its key (syncline_key):
// one table lookup per character instead of a chain of range tests. An entry
// holds the digit's value (bits 0-3), whether it is a lower-case (kHexLower)
// or upper-case (kHexUpper) letter, or kHexInvalid.
constexpr unsigned char kHexLower = 0x10;
constexpr unsigned char kHexUpper = 0x20;
constexpr unsigned char kHexInvalid = 0x80;

constexpr std::array<unsigned char, 256> MakeHexTable() {
  std::array<unsigned char, 256> table{};
  for (int c = 0; c < 256; ++c) {
    if (c >= '0' && c <= '9')
      table[c] = static_cast<unsigned char>(c - '0');
    else if (c >= 'a' && c <= 'f')
      table[c] = static_cast<unsigned char>((c - 'a' + 10) | kHexLower);
    else if (c >= 'A' && c <= 'F')
      table[c] = static_cast<unsigned char>((c - 'A' + 10) | kHexUpper);
    else
      table[c] = kHexInvalid;
  }
  return table;
}

constexpr std::array<unsigned char, 256> kHexTable = MakeHexTable();

// Where the 16 bytes' hex pairs start in the 8-4-4-4-12 text.
constexpr std::size_t kUuidPairs[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};

}  // namespace

bool CompactUuidKey(std::string_view text, unsigned char out[17]) {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-') return false;
  unsigned flags = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    const unsigned char high = kHexTable[static_cast<unsigned char>(text[kUuidPairs[i]])];
    const unsigned char low = kHexTable[static_cast<unsigned char>(text[kUuidPairs[i] + 1])];
    flags |= high | low;
    out[i + 1] = static_cast<unsigned char>(((high & 0xf) << 4) | (low & 0xf));
  }
  if (flags & kHexInvalid) return false;
  if ((flags & kHexLower) && (flags & kHexUpper)) return false;  // mixed case: the tag could not restore it
  out[0] = (flags & kHexUpper) ? kUuidUpper : kUuidLower;
  return true;
}

namespace {

bool CompactKey(const core::Value& only, core::Value* out) {
  unsigned char compact[17];
  if (only.type != core::Value::Type::kText || !CompactUuidKey(only.bytes, compact)) return false;
  out->type = core::Value::Type::kBlob;
  out->bytes.assign(reinterpret_cast<const char*>(compact), sizeof compact);
  return true;
}

}  // namespace

Status EncodeMetadataKey(const std::vector<core::Value>& values, core::Value* out) {
  std::vector<const core::Value*> pointers;
  for (const core::Value& value : values)
    pointers.push_back(&value);
  return EncodeMetadataKey(pointers, out);
}

Status EncodeMetadataKey(const std::vector<const core::Value*>& values, core::Value* out) {
  if (values.size() == 1 && CompactKey(*values[0], out)) return Status::Ok();
  // A NaN is stored as the text 'NaN' (kNanText): its row is that key's.
  std::vector<const core::Value*> stored;
  core::Value nan_text;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i]->type != core::Value::Type::kReal || !std::isnan(values[i]->real)) continue;
    if (stored.empty()) {
      stored = values;
      nan_text = core::Value::Text(std::string(kNanText));
    }
    stored[i] = &nan_text;
  }
  out->type = core::Value::Type::kText;
  return core::EncodeKeyOf(stored.empty() ? values : stored, &out->bytes);
}

Status DecodeMetadataKey(const core::Value& stored, std::vector<core::Value>* values) {
  if (stored.type == core::Value::Type::kText) return core::DecodeKey(stored.bytes, values);
  const std::string& bytes = stored.bytes;
  if (stored.type != core::Value::Type::kBlob || bytes.size() != 17 ||
      (static_cast<unsigned char>(bytes[0]) != kUuidLower && static_cast<unsigned char>(bytes[0]) != kUuidUpper))
    return Status(Code::kInternal, std::string("metadata key of type ") + core::TypeName(stored.type) +
                                       " is neither a key text nor a compact UUID");
  const char* hex = static_cast<unsigned char>(bytes[0]) == kUuidUpper ? "0123456789ABCDEF" : "0123456789abcdef";
  values->resize(1);
  core::Value& uuid = (*values)[0];
  uuid.type = core::Value::Type::kText;
  uuid.bytes.clear();
  for (std::size_t i = 1; i < 17; ++i) {
    if (i == 5 || i == 7 || i == 9 || i == 11) uuid.bytes.push_back('-');
    auto byte = static_cast<unsigned char>(bytes[i]);
    uuid.bytes.push_back(hex[byte >> 4]);
    uuid.bytes.push_back(hex[byte & 0xf]);
  }
  return Status::Ok();
}

std::string MetadataKeyText(const core::Value& stored) {
  if (stored.type == core::Value::Type::kText) return stored.bytes;
  std::vector<core::Value> values;
  std::string text;
  if (DecodeMetadataKey(stored, &values).ok() && core::EncodeKey(values, &text).ok()) return text;
  return "(" + std::string(core::TypeName(stored.type)) + " of " + std::to_string(stored.bytes.size()) + " bytes)";
}

Status RowExists(sqlite3* db, std::int64_t tid, const core::Value& key, bool* exists) {
  TableInfo table;
  bool found = false;
  Status status = FindTrackedTableById(db, tid, &table, &found);
  if (!status.ok()) return status;
  if (!found) return Status(Code::kUndefinedTable, "no tracked table with id " + std::to_string(tid));
  std::vector<core::Value> values;
  status = DecodeMetadataKey(key, &values);
  if (!status.ok()) return status;
  if (values.size() != table.pk.size()) return Status(Code::kInternal, "metadata key arity differs from the table's");
  Statement select;
  status = select.Prepare(db, "SELECT 1 FROM " + QuoteIdentifier(table.name) + " WHERE " + KeyPredicate(table));
  if (!status.ok()) return status;
  for (std::size_t i = 0; i < values.size(); ++i)
    select.BindValue(static_cast<int>(i + 1), values[i]);
  return select.Step(exists);
}

}  // namespace syncline::sqlite
