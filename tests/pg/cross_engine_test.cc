// SQLite <-> PostgreSQL: batches from one engine's pull_since applied by the
// other's apply_push, resumed from the receiver's peer_cursor, until both
// hold the same rows (docs/protocol.md: one format for every engine).
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/node_id.h"
#include "tests/pg/pg_harness.h"
#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

constexpr const char* kPgNotes =
    "CREATE TABLE notes(id uuid PRIMARY KEY, org_id int NOT NULL, title text, body text, score float8, data bytea, "
    "done bool, n numeric)";
constexpr const char* kSqliteNotes =
    "CREATE TABLE notes(id TEXT PRIMARY KEY, org_id INTEGER NOT NULL, title TEXT, body TEXT, score REAL, data BLOB, "
    "done INTEGER, n NUMERIC)";
constexpr int kPage = 50;
constexpr int kMaxPages = 1000;

std::string Options(const std::string& exclude) { return R"({"exclude_origin":")" + exclude + R"("})"; }

// Everything `lite` has that `pg` did not originate, page by page, resumed
// from pg's peer_cursor. Returns the number of changes applied (-1 on error).
long long SqliteToPg(Db& lite, Pg& pg) {
  const std::string lite_node = lite.NodeId(), options = Options(pg.NodeId());
  long long applied = 0;
  for (int pages = 0; pages < kMaxPages; ++pages) {
    std::string cursor = pg.Text("SELECT syncline.peer_cursor($1::uuid, $2::jsonb)", {lite_node, options});
    // The harness binds text; the limit must be an integer.
    const std::string limit = std::to_string(kPage);
    std::string batch = cursor == "NULL"
                            ? lite.Text("SELECT syncline_pull_since(NULL, " + limit + ", ?1)", {options})
                            : lite.Text("SELECT syncline_pull_since(?1, " + limit + ", ?2)", {cursor, options});
    if (batch.empty()) return -1;
    std::string summary = pg.Text("SELECT syncline.apply_push($1::text)::text", {batch});
    if (summary.empty()) return -1;
    applied += std::stoll(pg.Text("SELECT $1::jsonb ->> 'applied'", {summary}));
    if (lite.Text("SELECT json_extract(?1, '$.has_more')", {batch}) != "1") return applied;
  }
  ADD_FAILURE() << "SQLite -> PostgreSQL did not finish in " << kMaxPages << " pages";
  return -1;
}

// Everything `pg` has that `lite` did not originate, resumed from lite's
// peer_cursor. Returns the number of changes applied (-1 on error).
long long PgToSqlite(Pg& pg, Db& lite) {
  const std::string pg_node = pg.NodeId(), options = Options(lite.NodeId());
  long long applied = 0;
  for (int pages = 0; pages < kMaxPages; ++pages) {
    std::string cursor = lite.Text("SELECT syncline_peer_cursor(?1, ?2)", {pg_node, options});
    std::optional<std::string> from;
    if (cursor != "NULL") from = cursor;
    std::string batch =
        pg.Text("SELECT syncline.pull_since($1, $2::int, $3::jsonb)::text", {from, std::to_string(kPage), options});
    if (batch.empty()) return -1;
    std::string summary = lite.Text("SELECT syncline_apply_push(?1)", {batch});
    if (summary.empty()) return -1;
    applied += std::stoll(lite.Text("SELECT json_extract(?1, '$.applied')", {summary}));
    if (pg.Text("SELECT $1::jsonb ->> 'has_more'", {batch}) != "true") return applied;
  }
  ADD_FAILURE() << "PostgreSQL -> SQLite did not finish in " << kMaxPages << " pages";
  return -1;
}

// --- canonical rows: (id lower-case, org_id, title, body, score, data hex,
// done 0/1, n), one line per row, sorted by id -------------------------------

std::string ShortestDouble(double v) {
  char buf[40];
  auto result = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, result.ptr);
}

// A float's text from either engine, re-printed as the shortest text that
// reads back to the same double.
std::string Real(const std::string& text) { return ShortestDouble(std::strtod(text.c_str(), nullptr)); }

// A decimal's text without insignificant zeros ("12.50" -> "12.5", "3.0" ->
// "3"); other text (exponents, NaN) unchanged.
std::string Decimal(std::string text) {
  if (text.find_first_not_of("-0123456789.") != std::string::npos) return text;
  if (text.find('.') != std::string::npos) {
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') text.pop_back();
  }
  if (text == "-0") text = "0";
  return text;
}

using Field = std::optional<std::string>;

std::string Line(const std::vector<Field>& fields) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i)
    line += (i > 0 ? " | " : "") + (fields[i] ? *fields[i] : "NULL");
  return line;
}

std::vector<std::string> PgRows(Pg& pg) {
  std::vector<std::string> lines;
  for (auto& row : pg.Rows("SELECT id::text, org_id::text, title, body, score::text, encode(data, 'hex'), "
                           "done::int::text, n::text FROM notes ORDER BY id::text COLLATE \"C\"")) {
    if (row[4]) row[4] = Real(*row[4]);
    if (row[7]) row[7] = Decimal(*row[7]);
    lines.push_back(Line(row));
  }
  return lines;
}

std::vector<std::string> SqliteRows(Db& lite) {
  std::vector<std::string> lines;
  sqlite3_stmt* stmt = nullptr;
  const char* sql =
      "SELECT lower(id), org_id, title, body, score, CASE WHEN data IS NULL THEN NULL ELSE lower(hex(data)) END, "
      "done, n, typeof(data) FROM notes ORDER BY lower(id)";
  if (sqlite3_prepare_v2(lite.handle(), sql, -1, &stmt, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sqlite3_errmsg(lite.handle());
    return lines;
  }
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::vector<Field> row;
    for (int c = 0; c < 8; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_NULL: row.push_back(std::nullopt); break;
        case SQLITE_INTEGER: row.push_back(std::to_string(sqlite3_column_int64(stmt, c))); break;
        case SQLITE_FLOAT: row.push_back(ShortestDouble(sqlite3_column_double(stmt, c))); break;
        default:
          row.push_back(
              std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)), sqlite3_column_bytes(stmt, c)));
      }
    }
    // A score stored as an integer (SQLite keeps integral reals that way on
    // disk) reads back as a float; text in data would be a type change.
    if (row[4]) row[4] = Real(*row[4]);
    if (row[7]) row[7] = Decimal(*row[7]);
    std::string data_type = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 8));
    EXPECT_TRUE(data_type == "blob" || data_type == "null") << "data stored as " << data_type << ": " << Line(row);
    lines.push_back(Line(row));
  }
  sqlite3_finalize(stmt);
  return lines;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines)
    text += line + "\n";
  return text;
}

// A fresh row id: a version 4 UUID, lower case.
std::string NewId() { return core::NewNodeId(); }

void Later() { std::this_thread::sleep_for(std::chrono::milliseconds(15)); }

class CrossEngineTest : public ::testing::Test {
 protected:
  TempDatabase database;
  TempDir dir;

  void SetUp() override {
    Pg setup(database.name());
    setup.Exec(kPgNotes);
    setup.Text("SELECT syncline.track('notes')");
  }

  std::unique_ptr<Db> Client(const std::string& name) {
    auto db = std::make_unique<Db>(dir.File(name));
    db->Exec(kSqliteNotes);
    db->Text("SELECT syncline_track('notes')");
    return db;
  }

  std::string PgValue(Pg& pg, const std::string& sql, const std::string& id) { return pg.Text(sql, {id}); }
};

TEST_F(CrossEngineTest, SqliteAndPostgresConverge) {
  Pg pg(database.name());
  auto lite_owner = Client("client.db");
  Db& lite = *lite_owner;
  std::vector<std::string> l, p;  // rows created on SQLite, on PostgreSQL
  for (int i = 0; i < 6; ++i)
    l.push_back(NewId()), p.push_back(NewId());

  // Rows on each side, with every type, NULLs, awkward reals, empty and
  // binary blobs, Unicode, and numerics in integer, decimal and NULL form.
  lite.Exec("INSERT INTO notes VALUES ('" + l[0] + "', 1, 'lite zero', 'body', 0.1, X'00ff10', 1, 12.5)");
  lite.Exec("INSERT INTO notes VALUES ('" + l[1] + "', 2, 'héllo ✓ \"quoted\"', NULL, -2.5e-300, X'', 0, 7)");
  lite.Exec("INSERT INTO notes VALUES ('" + l[2] + "', 3, NULL, 'line1\nline2', 1e20, NULL, NULL, NULL)");
  lite.Exec("INSERT INTO notes VALUES ('" + l[3] +
            "', 4, 'to delete on pg', '', 0.30000000000000004, X'deadbeef', 1, -0.125)");
  lite.Exec("INSERT INTO notes VALUES ('" + l[4] +
            "', 5, 'deleted on sqlite, updated later on pg', 'x', 5, NULL, 0, 0)");
  pg.Exec("INSERT INTO notes VALUES ('" + p[0] + "', 10, 'pg zero', 'body', 3.25, '\\x0001', true, 12.50)");
  pg.Exec("INSERT INTO notes VALUES ('" + p[1] + "', 11, 'ünïcødé ✓', NULL, 123456789012.5, '\\x', false, 3)");
  pg.Exec("INSERT INTO notes VALUES ('" + p[2] + "', 12, NULL, NULL, NULL, NULL, NULL, NULL)");
  pg.Exec("INSERT INTO notes VALUES ('" + p[3] + "', 13, 'to delete on sqlite', 'b', 1e-5, '\\xff', false, 0.001)");
  pg.Exec("INSERT INTO notes VALUES ('" + p[4] +
          "', 14, 'deleted on pg, updated later on sqlite', 'y', -1, NULL, true, 1000000)");

  EXPECT_EQ(SqliteToPg(lite, pg), 5);
  // PostgreSQL's 5 rows, and the 4 SQLite rows whose numeric n PostgreSQL
  // stored in its own canonical form (text): new versions, sent back.
  EXPECT_EQ(PgToSqlite(pg, lite), 5 + 4);
  EXPECT_EQ(Joined(PgRows(pg)), Joined(SqliteRows(lite)));
  ASSERT_EQ(PgRows(pg).size(), 10u);

  // Edits of the other side's rows, deletes, a row created and deleted
  // before any sync (its tombstone still travels), and conflicts.
  lite.Exec("UPDATE notes SET title = 'edited on sqlite', score = 2.0, data = X'0102' WHERE id = '" + p[1] + "'");
  pg.Exec("UPDATE notes SET body = 'edited on pg', done = false, n = 99.90 WHERE id = '" + l[1] + "'");
  lite.Exec("DELETE FROM notes WHERE id = '" + p[3] + "'");
  pg.Exec("DELETE FROM notes WHERE id = '" + l[3] + "'");
  lite.Exec("INSERT INTO notes VALUES ('" + l[5] + "', 6, 'short-lived', NULL, NULL, NULL, NULL, NULL)");
  lite.Exec("DELETE FROM notes WHERE id = '" + l[5] + "'");
  pg.Exec("INSERT INTO notes VALUES ('" + p[5] + "', 15, 'new on pg', NULL, NULL, NULL, NULL, NULL)");
  // The same row on both sides: the later write wins, wherever it was made.
  lite.Exec("UPDATE notes SET title = 'sqlite, earlier' WHERE id = '" + p[0] + "'");
  Later();
  pg.Exec("UPDATE notes SET title = 'pg, later' WHERE id = '" + p[0] + "'");
  pg.Exec("UPDATE notes SET title = 'pg, earlier' WHERE id = '" + l[0] + "'");
  Later();
  lite.Exec("UPDATE notes SET title = 'sqlite, later' WHERE id = '" + l[0] + "'");
  // A delete against a later update, both ways round: the later one wins.
  lite.Exec("DELETE FROM notes WHERE id = '" + l[4] + "'");
  pg.Exec("DELETE FROM notes WHERE id = '" + p[4] + "'");
  Later();
  pg.Exec("UPDATE notes SET title = 'pg, after the delete' WHERE id = '" + l[4] + "'");
  lite.Exec("UPDATE notes SET title = 'sqlite, after the delete' WHERE id = '" + p[4] + "'");

  for (int round = 0; round < 2; ++round) {
    EXPECT_GE(SqliteToPg(lite, pg), 0);
    EXPECT_GE(PgToSqlite(pg, lite), 0);
  }
  // Quiet: nothing left to move either way (no echo, no ping-pong).
  EXPECT_EQ(SqliteToPg(lite, pg), 0);
  EXPECT_EQ(PgToSqlite(pg, lite), 0);

  EXPECT_EQ(Joined(PgRows(pg)), Joined(SqliteRows(lite)));
  const std::string title = "SELECT coalesce((SELECT title FROM notes WHERE id = $1::uuid), 'gone')";
  EXPECT_EQ(PgValue(pg, title, p[0]), "pg, later");
  EXPECT_EQ(PgValue(pg, title, l[0]), "sqlite, later");
  EXPECT_EQ(PgValue(pg, title, p[1]), "edited on sqlite");
  EXPECT_EQ(PgValue(pg, title, p[3]), "gone");
  EXPECT_EQ(PgValue(pg, title, l[3]), "gone");
  EXPECT_EQ(PgValue(pg, title, l[5]), "gone");
  EXPECT_EQ(PgValue(pg, title, p[5]), "new on pg");
  EXPECT_EQ(PgValue(pg, title, l[4]), "pg, after the delete");
  EXPECT_EQ(PgValue(pg, title, p[4]), "sqlite, after the delete");
  EXPECT_EQ(pg.Text("SELECT body || ' ' || n::text FROM notes WHERE id = $1::uuid", {l[1]}), "edited on pg 99.90");
  EXPECT_EQ(lite.Text("SELECT n FROM notes WHERE id = ?1", {l[1]}), "99.9");
  // Every row the protocol promises a tombstone for has one on both sides.
  EXPECT_EQ(pg.Text("SELECT count(*) FROM syncline.rows WHERE deleted"), "3");
  EXPECT_EQ(lite.Text("SELECT count(*) FROM syncline_rows WHERE deleted"), "3");
}

// Two SQLite clients that never talk to each other converge through the
// server: client1 -> server -> client2 and back.
TEST_F(CrossEngineTest, TwoClientsConvergeThroughTheServer) {
  Pg server(database.name());
  auto one_owner = Client("one.db"), two_owner = Client("two.db");
  Db& one = *one_owner;
  Db& two = *two_owner;
  auto sync_all = [&] {
    for (Db* client : {&one, &two}) {
      EXPECT_GE(SqliteToPg(*client, server), 0);
      EXPECT_GE(PgToSqlite(server, *client), 0);
    }
  };
  std::vector<std::string> a, b, s;
  for (int i = 0; i < 4; ++i)
    a.push_back(NewId()), b.push_back(NewId()), s.push_back(NewId());
  for (int i = 0; i < 4; ++i) {
    std::string k = std::to_string(i);
    one.Exec("INSERT INTO notes VALUES ('" + a[i] + "', 1, 'one " + k + "', NULL, " + k + ".5, X'0" + k + "', 1, " + k +
             ")");
    two.Exec("INSERT INTO notes VALUES ('" + b[i] + "', 2, 'two " + k + "', 'b', NULL, NULL, 0, " + k + ".25)");
    server.Exec("INSERT INTO notes VALUES ('" + s[i] + "', 3, 'server " + k + "', NULL, -" + k + ", NULL, NULL, NULL)");
  }
  // Many rows: several pages each way.
  one.Exec("BEGIN");
  for (int i = 0; i < 120; ++i)
    one.Exec("INSERT INTO notes VALUES ('" + NewId() + "', 7, 'bulk " + std::to_string(i) +
             "', NULL, NULL, NULL, NULL, NULL)");
  one.Exec("COMMIT");

  sync_all();
  sync_all();  // client2's rows reach client1 only on the second pass
  EXPECT_EQ(Joined(PgRows(server)), Joined(SqliteRows(one)));
  EXPECT_EQ(Joined(PgRows(server)), Joined(SqliteRows(two)));
  EXPECT_EQ(SqliteRows(two).size(), 4u * 3 + 120);

  // Edits of each other's rows, a three-way conflict, deletes.
  one.Exec("UPDATE notes SET title = 'one edits two' WHERE id = '" + b[0] + "'");
  two.Exec("UPDATE notes SET title = 'two edits one', data = X'ffee' WHERE id = '" + a[0] + "'");
  two.Exec("DELETE FROM notes WHERE id = '" + a[1] + "'");
  one.Exec("DELETE FROM notes WHERE id = '" + s[1] + "'");
  server.Exec("DELETE FROM notes WHERE id = '" + b[1] + "'");
  server.Exec("UPDATE notes SET title = 'server, earliest' WHERE id = '" + a[2] + "'");
  Later();
  two.Exec("UPDATE notes SET title = 'two, middle' WHERE id = '" + a[2] + "'");
  Later();
  one.Exec("UPDATE notes SET title = 'one, latest' WHERE id = '" + a[2] + "'");
  two.Exec("UPDATE notes SET title = 'two, only' WHERE id = '" + s[2] + "'");
  // client2 pushes its older edit of a[2] after client1's newer one (the
  // other order: LaterEditWinsWhenTheEarlierSyncsFirst).
  EXPECT_GE(SqliteToPg(one, server), 0);
  EXPECT_GE(SqliteToPg(two, server), 0);
  sync_all();
  sync_all();
  for (Db* client : {&one, &two}) {
    EXPECT_EQ(SqliteToPg(*client, server), 0);
    EXPECT_EQ(PgToSqlite(server, *client), 0);
  }

  std::string expected = Joined(PgRows(server));
  EXPECT_EQ(expected, Joined(SqliteRows(one)));
  EXPECT_EQ(expected, Joined(SqliteRows(two)));
  const std::string title = "SELECT coalesce((SELECT title FROM notes WHERE id = ?1), 'gone')";
  for (Db* client : {&one, &two}) {
    EXPECT_EQ(client->Text(title, {a[2]}), "one, latest");
    EXPECT_EQ(client->Text(title, {s[2]}), "two, only");
    EXPECT_EQ(client->Text(title, {b[0]}), "one edits two");
    EXPECT_EQ(client->Text(title, {a[0]}), "two edits one");
    EXPECT_EQ(client->Text(title, {a[1]}), "gone");
    EXPECT_EQ(client->Text(title, {b[1]}), "gone");
    EXPECT_EQ(client->Text(title, {s[1]}), "gone");
  }
  EXPECT_EQ(server.Text("SELECT count(*) FROM notes"), std::to_string(4 * 3 + 120 - 3));
}

// Keys in another form than PostgreSQL's (an upper-case UUID), a primary
// key changed on SQLite, and a TRUNCATE on PostgreSQL.
TEST_F(CrossEngineTest, KeyFormsKeyChangesAndTruncate) {
  Pg pg(database.name());
  auto lite_owner = Client("client.db");
  Db& lite = *lite_owner;
  const std::string upper = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE", lower = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
  const std::string old_id = NewId(), new_id = NewId(), pg_id = NewId();
  lite.Exec("INSERT INTO notes VALUES ('" + upper + "', 1, 'upper', NULL, NULL, NULL, NULL, NULL)");
  lite.Exec("INSERT INTO notes VALUES ('" + old_id + "', 2, 'renamed', NULL, NULL, NULL, NULL, NULL)");
  pg.Exec("INSERT INTO notes VALUES ('" + pg_id + "', 3, 'pg', NULL, NULL, NULL, NULL, NULL)");
  for (int round = 0; round < 2; ++round) {
    EXPECT_GE(SqliteToPg(lite, pg), 0);
    EXPECT_GE(PgToSqlite(pg, lite), 0);
  }
  // PostgreSQL's canonical key replaces SQLite's (a delete of the upper-case
  // key travels with the lower-case row): one row on both sides.
  EXPECT_EQ(lite.Text("SELECT group_concat(id) FROM notes WHERE lower(id) = ?1", {lower}), lower);
  EXPECT_EQ(Joined(PgRows(pg)), Joined(SqliteRows(lite)));

  lite.Exec("UPDATE notes SET id = '" + new_id + "' WHERE id = '" + old_id + "'");
  EXPECT_GE(SqliteToPg(lite, pg), 0);
  EXPECT_EQ(pg.Text("SELECT string_agg(id::text, ',') FROM notes WHERE title = 'renamed'"), new_id);
  Later();
  pg.Exec("TRUNCATE notes");
  EXPECT_GE(PgToSqlite(pg, lite), 0);
  EXPECT_EQ(lite.Text("SELECT count(*) FROM notes"), "0");
  EXPECT_EQ(SqliteToPg(lite, pg), 0);
  EXPECT_EQ(PgToSqlite(pg, lite), 0);
  EXPECT_EQ(Joined(PgRows(pg)), Joined(SqliteRows(lite)));
}

// Last writer wins across clients whatever order they sync in: client1
// edits a row, client2 edits it later, client1 syncs first. `n` is the value
// both write into the numeric column (NULL, or a number that PostgreSQL
// stores in another canonical form than SQLite's, "rewriting" the version).
void LaterEditWinsWhenTheEarlierSyncsFirst(Pg& server, Db& one, Db& two, const std::string& n) {
  auto push = [&](Db& client) { EXPECT_GE(SqliteToPg(client, server), 0); };
  auto pull = [&](Db& client) { EXPECT_GE(PgToSqlite(server, client), 0); };
  const std::string id = NewId();
  server.Exec("INSERT INTO notes VALUES ('" + id + "', 1, 'server', NULL, NULL, NULL, NULL, NULL)");
  pull(one);
  pull(two);
  Later();
  one.Exec("UPDATE notes SET title = 'one, earlier', n = " + n + " WHERE id = '" + id + "'");
  Later();
  two.Exec("UPDATE notes SET title = 'two, later', n = " + n + " WHERE id = '" + id + "'");
  Later();
  push(one);  // the earlier edit reaches the server first
  push(two);
  for (int round = 0; round < 2; ++round) {
    for (Db* client : {&one, &two}) {
      push(*client);
      pull(*client);
    }
  }
  const std::string title = "SELECT coalesce((SELECT title FROM notes WHERE id = ?1), 'gone')";
  EXPECT_EQ(server.Text("SELECT title FROM notes WHERE id = $1::uuid", {id}), "two, later");
  EXPECT_EQ(one.Text(title, {id}), "two, later");
  EXPECT_EQ(two.Text(title, {id}), "two, later");
  EXPECT_EQ(Joined(PgRows(server)), Joined(SqliteRows(one)));
  EXPECT_EQ(Joined(PgRows(server)), Joined(SqliteRows(two)));
}

TEST_F(CrossEngineTest, LaterEditWinsWhenTheEarlierSyncsFirst) {
  Pg server(database.name());
  auto one = Client("one.db"), two = Client("two.db");
  LaterEditWinsWhenTheEarlierSyncsFirst(server, *one, *two, "NULL");
}

// The same with a value PostgreSQL stores in another form (SQLite sends
// n = 2.5 as a real, numeric keeps the text "2.5"): the server records a
// rewritten version, stamped just above the one received, so a later edit
// from another client still wins.
TEST_F(CrossEngineTest, LaterEditWinsWhenTheEarlierSyncsFirstWithRewrittenValue) {
  Pg server(database.name());
  auto one = Client("one.db"), two = Client("two.db");
  LaterEditWinsWhenTheEarlierSyncsFirst(server, *one, *two, "2.5");
}

}  // namespace
}  // namespace syncline::test
