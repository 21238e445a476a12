// libFuzzer target: syncline_apply_push on a real SQLite database.
//
// The extension is compiled into this binary (sqlite_extension/*.cc and
// core/*.cc) and registered with sqlite3_auto_extension, so every connection
// gets it the way sqlite3_load_extension would give it.
//
// A database with tracked tables (text key merged by column, integer composite key, secondary
// UNIQUE and NOT NULL, STRICT, WITHOUT ROWID with a foreign key, an untyped
// key beside a NUMERIC column) and a few rows of local and remote origin is
// built once per process and serialized.
// Every input gets a fresh connection deserialized from that image, so each
// input is judged against the same state and a saved crash replays alone. The
// connection's clock is pinned (syncline_config('clock_skew_ms')) to
// kWallMs, so the drift bound does not depend on the day the fuzzer runs.
//
// Per input (the bytes are passed as the batch text):
//   - a rejected batch leaves every table (schema and metadata included)
//     with exactly the same content and the connection's clock unchanged,
//     with no transaction left open (docs/protocol.md, "Applying": all or
//     nothing);
//   - an accepted batch accounts for every change (applied + skipped), and
//     applying it again is accepted, applies nothing, skips every change and
//     writes nothing (idempotence);
//   - after an accepted batch the metadata still describes the tables: the
//     keys of a tracked table's rows (as syncline_key() encodes them) are
//     exactly the keys of its live metadata rows.
// A broken property aborts with the state that shows it.
#include <sqlite3.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/changeset.h"
#include "core/hlc.h"
#include "core/json.h"

extern "C" int sqlite3_syncline_init(sqlite3* db, char** error, const sqlite3_api_routines* api);

namespace syncline::fuzz {
namespace {

// The wall clock every input sees: 2024-01-01T00:00:00Z. Seeds stamp changes
// around it (tests/fuzz/make_corpus.py lists them).
constexpr std::int64_t kWallMs = 1704067200000;
// Local rows of the base image carry stamps from ten minutes before.
constexpr std::int64_t kLocalMs = kWallMs - 600000;
constexpr const char* kLocalNode = "11111111-1111-4111-8111-111111111111";

constexpr const char* kSchema = R"sql(
CREATE TABLE notes(id TEXT PRIMARY KEY, org_id INTEGER, title TEXT, body TEXT);
CREATE TABLE cells(sheet INTEGER, r INTEGER, c INTEGER, v, PRIMARY KEY (sheet, r, c));
CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, score REAL);
CREATE TABLE readings(id TEXT PRIMARY KEY, at INTEGER NOT NULL, value REAL, raw BLOB, extra ANY) STRICT;
CREATE TABLE tags(note_id TEXT NOT NULL REFERENCES notes(id), tag TEXT NOT NULL, PRIMARY KEY (note_id, tag))
  WITHOUT ROWID;
CREATE TABLE kv(k PRIMARY KEY, v NUMERIC);
CREATE TABLE untracked(id INTEGER PRIMARY KEY, x);
)sql";

constexpr const char* kTracked[] = {"notes", "cells", "users", "readings", "tags", "kv"};

constexpr const char* kLocalRows = R"sql(
INSERT INTO notes VALUES ('n1', 1, 'first', 'body one'), ('n2', 2, 'second', NULL);
INSERT INTO cells VALUES (1, 1, 1, 'a'), (1, 1, 2, 2.5), (1, 2, 2, x'00ff');
INSERT INTO users VALUES (1, 'ann@example.com', 'Ann', 1.5), (2, 'bob@example.com', 'Bob', NULL);
INSERT INTO readings VALUES ('r1', 1, 0.5, x'0102', 'any'), ('r2', 2, NULL, NULL, 7);
INSERT INTO tags VALUES ('n1', 'red'), ('n2', 'blue');
INSERT INTO kv VALUES (1, 'one'), ('1', 'text one'), (x'01', 'blob one'), (2.5, 10);
INSERT INTO untracked VALUES (1, 'not synced');
)sql";

// Rows and a tombstone from a remote node, with a recorded cursor.
constexpr const char* kRemoteBatch = R"json({"format":1,"source":"22222222-2222-4222-8222-222222222222",
"cursor":"22222222-2222-4222-8222-222222222222:0123456789abcdef:5","changes":[
{"table":"notes","op":"upsert","pk":{"id":"n3"},"row":{"id":"n3","org_id":3,"title":"remote","body":"b"},
 "clock":1,"hlc":"018cc248d0280000","node":"22222222-2222-4222-8222-222222222222"},
{"table":"notes","op":"delete","pk":{"id":"gone"},"clock":2,"hlc":"018cc248d0280001",
 "node":"22222222-2222-4222-8222-222222222222"},
{"table":"users","op":"upsert","pk":{"id":3},"row":{"id":3,"email":"cy@example.com","name":"Cy","score":{"real":"-0.0"}},
 "clock":1,"hlc":"018cc248d0280002","node":"22222222-2222-4222-8222-222222222222"},
{"table":"cells","op":"upsert","pk":{"sheet":1,"r":2,"c":1},"row":{"sheet":1,"r":2,"c":1,"v":{"blob":"AQ=="}},
 "clock":1,"hlc":"018cc248d0280003","node":"22222222-2222-4222-8222-222222222222"},
{"table":"tags","op":"upsert","pk":{"note_id":"n3","tag":"green"},"row":{"note_id":"n3","tag":"green"},
 "clock":1,"hlc":"018cc248d0280004","node":"22222222-2222-4222-8222-222222222222"}]})json";

[[noreturn]] void Fail(const std::string& what, std::string_view input, const std::string& detail = "") {
  std::fprintf(stderr, "apply_fuzz: %s\n  input: %.*s\n%s\n", what.c_str(),
               static_cast<int>(std::min<std::size_t>(input.size(), 2000)), input.data(), detail.c_str());
  std::abort();
}

// Setup and harness errors (not properties of the input).
[[noreturn]] void Die(const std::string& what, sqlite3* db) {
  std::fprintf(stderr, "apply_fuzz: setup: %s: %s\n", what.c_str(), db != nullptr ? sqlite3_errmsg(db) : "");
  std::abort();
}

void Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : "?";
    sqlite3_free(error);
    std::fprintf(stderr, "apply_fuzz: setup: %s\n  sql: %s\n", message.c_str(), sql.c_str());
    std::abort();
  }
}

// Runs a one-row query; text binds as ?1, ?2...; returns its first column as
// text (NULL as "NULL"), or sets *error.
std::string Query(sqlite3* db, const std::string& sql, const std::vector<std::string_view>& args = {},
                  std::string* error = nullptr) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) Die("prepare " + sql, db);
  for (std::size_t i = 0; i < args.size(); ++i)
    sqlite3_bind_text64(stmt, static_cast<int>(i + 1), args[i].data(), args[i].size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  std::string result = "NULL";
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    if (const unsigned char* text = sqlite3_column_text(stmt, 0))
      result.assign(reinterpret_cast<const char*>(text), static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) rc = SQLITE_DONE;
  }
  if (rc != SQLITE_DONE) {
    if (error == nullptr) Die("query " + sql, db);
    *error = sqlite3_errmsg(db);
    if (error->empty()) *error = "error";
  }
  sqlite3_finalize(stmt);
  return result;
}

sqlite3* Open() {
  sqlite3* db = nullptr;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) Die("open", db);
  Exec(db, "PRAGMA foreign_keys = ON");
  return db;
}

void PinClock(sqlite3* db) {
  Query(db, "SELECT syncline_config('clock_skew_ms', " + std::to_string(kWallMs - core::WallClockMs()) + ")");
}

// One query that lists, per tracked table, the rows without a live metadata
// row under their key and the live metadata rows without a row under their
// key; NULL when there are none. The keys are compared as the text
// syncline_key() makes, so one row under two keys (2 and 2.0 in an INTEGER
// key column) shows as a live metadata row without its row.
std::string ConsistencyQuery(sqlite3* db) {
  std::string sql;
  for (const char* table : kTracked) {
    std::string tid = Query(db, "SELECT tid FROM syncline_tables WHERE name = ?1", {table});
    std::string key = Query(db,
                            "SELECT 'syncline_key(' || group_concat('\"' || name || '\"', ', ') || ')' FROM "
                            "(SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk)",
                            {table});
    std::string rows = "SELECT " + key + " AS k FROM \"" + table + "\"";
    std::string live = "SELECT pk AS k FROM syncline_rows WHERE tid = " + tid + " AND deleted = 0";
    if (!sql.empty()) sql += " UNION ALL ";
    sql += "SELECT '" + std::string(table) +
           ": rows without live metadata under their key: ' || group_concat(k, ' ') AS problem FROM (" + rows +
           " EXCEPT " + live + ") UNION ALL SELECT '" + table +
           ": live metadata under a key no row has: ' || group_concat(k, ' ') FROM (" + live + " EXCEPT " + rows + ")";
  }
  return "SELECT group_concat(problem, char(10)) FROM (" + sql + ")";
}

struct Image {
  unsigned char* bytes = nullptr;
  sqlite3_int64 size = 0;
  std::string consistency;  // ConsistencyQuery()
};

Image BuildImage() {
  sqlite3* db = Open();
  PinClock(db);
  Exec(db, kSchema);
  // notes merges by column (docs/column-merge.md): format-2 changes and
  // partial writes go through the same properties.
  for (const char* table : kTracked)
    Query(db, "SELECT syncline_track(?1, ?2)",
          {table, std::string_view(table) == "notes" ? "{\"merge\": \"column\"}" : "{}"});
  Exec(db, kLocalRows);
  std::string error;
  Query(db, "SELECT syncline_apply_push(?1)", {kRemoteBatch}, &error);
  if (!error.empty()) Die("remote batch: " + error, db);
  // A fixed node id and fixed local stamps make the image the same in every
  // process, so that seeds can name them and crashes replay.
  Exec(db, std::string("UPDATE syncline_meta SET value = '") + kLocalNode + "' WHERE key = 'node_id';\n" +
               "UPDATE syncline_rows SET hlc = " + std::to_string(core::HlcFromPhysicalMs(kLocalMs)) +
               " + version WHERE node = 0;\n" +
               "UPDATE syncline_meta SET value = (SELECT max(hlc) FROM syncline_rows) WHERE key = 'hlc';");
  Image image;
  image.bytes = sqlite3_serialize(db, "main", &image.size, 0);
  if (image.bytes == nullptr) Die("serialize", db);
  image.consistency = ConsistencyQuery(db);
  sqlite3_close(db);
  return image;
}

sqlite3* OpenImage(const Image& image) {
  sqlite3* db = Open();
  auto* copy = static_cast<unsigned char*>(sqlite3_malloc64(static_cast<sqlite3_uint64>(image.size)));
  if (copy == nullptr) Die("out of memory", db);
  std::memcpy(copy, image.bytes, static_cast<std::size_t>(image.size));
  if (sqlite3_deserialize(db, "main", copy, image.size, image.size,
                          SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) != SQLITE_OK)
    Die("deserialize", db);
  PinClock(db);
  return db;
}

void AppendValue(sqlite3_stmt* stmt, int column, std::string* out) {
  switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_NULL: out->append("N"); return;
    case SQLITE_INTEGER: out->append("I" + std::to_string(sqlite3_column_int64(stmt, column))); return;
    case SQLITE_FLOAT: {
      double real = sqlite3_column_double(stmt, column);
      std::uint64_t bits;
      std::memcpy(&bits, &real, sizeof bits);
      char buf[24];
      std::snprintf(buf, sizeof buf, "F%016" PRIx64, bits);
      out->append(buf);
      return;
    }
    default: {
      bool text = sqlite3_column_type(stmt, column) == SQLITE_TEXT;
      const void* data =
          text ? static_cast<const void*>(sqlite3_column_text(stmt, column)) : sqlite3_column_blob(stmt, column);
      int size = sqlite3_column_bytes(stmt, column);
      out->append((text ? "T" : "B") + std::to_string(size) + ":");
      if (size > 0) out->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
    }
  }
}

// Every table of the database, the schema and syncline's metadata included,
// rows sorted: equal dumps mean equal contents.
std::string Dump(sqlite3* db) {
  std::vector<std::string> tables = {"sqlite_schema"};
  {
    sqlite3_stmt* list = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name", -1, &list,
                           nullptr) != SQLITE_OK)
      Die("list tables", db);
    while (sqlite3_step(list) == SQLITE_ROW)
      tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(list, 0)));
    sqlite3_finalize(list);
  }
  std::string dump;
  for (const std::string& table : tables) {
    sqlite3_stmt* stmt = nullptr;
    std::string sql = "SELECT * FROM \"" + table + "\"";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) Die("dump " + table, db);
    std::vector<std::string> rows;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        if (c > 0) row.push_back('|');
        AppendValue(stmt, c, &row);
      }
      rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) Die("dump " + table, db);
    sqlite3_finalize(stmt);
    std::sort(rows.begin(), rows.end());
    dump += "== " + table + "\n";
    for (const std::string& row : rows)
      dump += row + "\n";
  }
  return dump;
}

// The first line where two dumps differ, for the report.
std::string FirstDifference(const std::string& before, const std::string& after) {
  std::size_t at = 0;
  while (at < before.size() && at < after.size() && before[at] == after[at])
    ++at;
  std::size_t line = before.rfind('\n', at == 0 ? 0 : at - 1);
  line = line == std::string::npos ? 0 : line + 1;
  return "  before: " + before.substr(line, before.find('\n', line) - line) +
         "\n  after:  " + after.substr(line, after.find('\n', line) - line);
}

std::int64_t SummaryInt(const std::string& summary, const char* key, std::string_view input) {
  core::Json json;
  const core::Json* field = nullptr;
  if (!core::ParseJson(summary, &json).ok() || (field = json.Find(key)) == nullptr || !field->is_number())
    Fail(std::string("summary lacks \"") + key + "\"", input, "  summary: " + summary);
  return std::stoll(field->text);
}

std::string Apply(sqlite3* db, std::string_view input, std::string* error) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT syncline_apply_push(?1)", -1, &stmt, nullptr) != SQLITE_OK)
    Die("prepare apply", db);
  sqlite3_bind_text64(stmt, 1, input.data(), input.size(), SQLITE_STATIC, SQLITE_UTF8);
  std::string summary;
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    if (const unsigned char* text = sqlite3_column_text(stmt, 0))
      summary.assign(reinterpret_cast<const char*>(text), static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    rc = sqlite3_step(stmt);
  }
  error->clear();
  if (rc != SQLITE_DONE) *error = std::string(sqlite3_errmsg(db)) + " (rc " + std::to_string(rc) + ")";
  sqlite3_finalize(stmt);
  return summary;
}

core::Hlc HlcNow(sqlite3* db) { return std::stoull(Query(db, "SELECT syncline_hlc_now()"), nullptr, 16); }

// SYNCLINE_FUZZ_VERBOSE=1 prints each input's outcome (to check the seeds).
bool Verbose() {
  static const bool verbose = std::getenv("SYNCLINE_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

const Image& BaseImage() {
  static const Image image = [] {
    sqlite3_auto_extension(reinterpret_cast<void (*)(void)>(sqlite3_syncline_init));
    return BuildImage();
  }();
  return image;
}

void FuzzApply(std::string_view input) {
  sqlite3* db = OpenImage(BaseImage());
  const core::Hlc clock_before = HlcNow(db);
  const std::string before = Dump(db);
  std::string error;
  std::string summary = Apply(db, input, &error);
  if (Verbose())
    std::fprintf(stderr, "apply_fuzz: %s\n", error.empty() ? summary.c_str() : ("error: " + error).c_str());
  if (!sqlite3_get_autocommit(db))
    Fail("apply_push left a transaction open", input, "  error: " + (error.empty() ? "none" : error));

  if (!error.empty()) {
    std::string after = Dump(db);
    if (after != before)
      Fail("a rejected batch changed the database", input, "  error: " + error + "\n" + FirstDifference(before, after));
    // The clock is not advanced by a rejected batch either: the next local
    // stamp follows the one taken before, or the (pinned) wall clock. Stamps
    // the batch held more than a second ahead of it would show.
    PinClock(db);
    core::Hlc clock_after = HlcNow(db);
    core::Hlc bound = std::max(clock_before + 1, core::HlcFromPhysicalMs(kWallMs + 1000));
    if (clock_after > bound)
      Fail("a rejected batch advanced the clock", input,
           "  error: " + error + "\n  before: " + core::HlcToText(clock_before) +
               "\n  after:  " + core::HlcToText(clock_after));
    sqlite3_close(db);
    return;
  }

  core::Batch batch;
  if (!core::DecodeBatch(input, &batch).ok()) Fail("apply_push accepted a batch DecodeBatch refuses", input);
  std::int64_t applied = SummaryInt(summary, "applied", input);
  std::int64_t skipped = SummaryInt(summary, "skipped", input);
  if (applied < 0 || skipped < 0 || static_cast<std::size_t>(applied + skipped) != batch.changes.size())
    Fail("applied + skipped is not the number of changes", input,
         "  summary: " + summary + "\n  changes: " + std::to_string(batch.changes.size()));
  std::string inconsistent = Query(db, BaseImage().consistency, {}, &error);
  if (!error.empty()) Fail("checking the metadata fails", input, "  error: " + error);
  if (inconsistent != "NULL") Fail("metadata and tables disagree after an accepted batch", input, inconsistent);

  const std::string once = Dump(db);
  std::string again = Apply(db, input, &error);
  if (!error.empty()) Fail("applying an accepted batch again fails", input, "  error: " + error);
  if (SummaryInt(again, "applied", input) != 0 ||
      SummaryInt(again, "skipped", input) != static_cast<std::int64_t>(batch.changes.size()))
    Fail("applying a batch again applies changes", input, "  first: " + summary + "\n  again: " + again);
  std::string twice = Dump(db);
  if (twice != once) Fail("applying a batch again changed the database", input, FirstDifference(once, twice));
  sqlite3_close(db);
}

}  // namespace
}  // namespace syncline::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  syncline::fuzz::BaseImage();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  syncline::fuzz::FuzzApply(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
