// The app's own migrations on tracked tables keep capture correct
// (docs/sqlite.md, "Schema changes").
#include <sqlite3.h>

#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

class SchemaChange : public ::testing::Test {
 protected:
  TempDir dir;
  Db db{dir.File("a.db")};

  // "pk=deleted" of every metadata row of a table, in version order.
  std::string Meta(const std::string& table) {
    return db.Text("SELECT coalesce(group_concat(pk || '=' || deleted, ' '), '') FROM (SELECT m.pk, m.deleted FROM "
                   "syncline_rows m JOIN syncline_tables t USING (tid) WHERE t.name = ?1 ORDER BY m.version)",
                   {table});
  }
  // The changes of a whole pull as "table:pk:op", in order.
  std::string Pulled(const std::string& expression = "") {
    std::string batch = db.Text("SELECT syncline_pull_since(NULL, 1000)");
    return db.Text("SELECT coalesce(group_concat(json_extract(value, '$.table') || ':' || json_extract(value, '$.pk') "
                   "|| ':' || json_extract(value, '$.op')" +
                       expression + ", ' '), '') FROM json_each(?1, '$.changes')",
                   {batch});
  }
  long long Triggers(const std::string& table) {
    return db.Int("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = '" + table + "'");
  }
};

TEST_F(SchemaChange, AddColumnIsCapturedAndPulled) {
  db.Exec("CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT)");
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 'a')");
  db.Exec("ALTER TABLE notes ADD COLUMN tag TEXT DEFAULT 'none'");
  db.Exec("INSERT INTO notes VALUES ('n2', 'b', 'red')");
  db.Exec("UPDATE notes SET tag = 'blue' WHERE id = 'n1'");
  EXPECT_EQ(Pulled(" || ':' || json_extract(value, '$.row.tag')"),
            "notes:{\"id\":\"n2\"}:upsert:red notes:{\"id\":\"n1\"}:upsert:blue");
}

TEST_F(SchemaChange, RenameColumnKeepsKeysAndGuards) {
  db.Exec(
      "CREATE TABLE users(id TEXT PRIMARY KEY, email TEXT, name TEXT); CREATE UNIQUE INDEX u_email ON users(email)");
  db.Text("SELECT syncline_track('users')");
  db.Exec("INSERT INTO users VALUES ('u1', 'a@x', 'Ann'), ('u2', 'b@x', 'Bob')");
  db.Exec("ALTER TABLE users RENAME COLUMN id TO user_id");
  db.Exec("ALTER TABLE users RENAME COLUMN email TO mail");
  db.Exec("UPDATE users SET name = 'Anne' WHERE user_id = 'u1'");
  db.Exec("UPDATE users SET user_id = 'u9' WHERE user_id = 'u2'");
  db.Exec("INSERT OR REPLACE INTO users VALUES ('u3', 'a@x', 'Ann again')");  // displaces u1 through mail
  EXPECT_EQ(Meta("users"), "[\"u2\"]=1 [\"u9\"]=0 [\"u1\"]=1 [\"u3\"]=0");
  EXPECT_EQ(Pulled(), "users:{\"user_id\":\"u2\"}:delete users:{\"user_id\":\"u9\"}:upsert "
                      "users:{\"user_id\":\"u1\"}:delete users:{\"user_id\":\"u3\"}:upsert");
  EXPECT_EQ(db.Text("SELECT pk_columns FROM syncline_tables WHERE name = 'users'"), "[\"user_id\"]");
}

TEST_F(SchemaChange, DropColumnOfAFormerUniqueIndex) {
  db.Exec("CREATE TABLE users(id TEXT PRIMARY KEY, email TEXT UNIQUE, handle TEXT, name TEXT);"
          "CREATE UNIQUE INDEX u_handle ON users(handle)");
  db.Text("SELECT syncline_track('users')");
  db.Exec("INSERT INTO users VALUES ('u1', 'a@x', 'a', 'Ann'), ('u2', 'b@x', 'b', 'Bob')");
  db.Exec("DROP INDEX u_handle");
  db.Exec("INSERT INTO users VALUES ('u3', 'c@x', 'c', 'Cy')");  // any captured write re-arms the guard
  EXPECT_EQ(db.TryExec("ALTER TABLE users DROP COLUMN handle"), "");
  db.Exec("INSERT OR REPLACE INTO users VALUES ('u4', 'b@x', 'Bo')");  // displaces u2 through email
  EXPECT_EQ(Meta("users"), "[\"u1\"]=0 [\"u3\"]=0 [\"u2\"]=1 [\"u4\"]=0");
}

TEST_F(SchemaChange, DropColumnAfterASyncCall) {
  db.Exec("CREATE TABLE users(id TEXT PRIMARY KEY, handle TEXT, name TEXT); CREATE UNIQUE INDEX u_handle ON "
          "users(handle)");
  db.Text("SELECT syncline_track('users')");
  db.Exec("DROP INDEX u_handle");
  db.Text("SELECT syncline_pull_since(NULL, 10)");
  EXPECT_EQ(db.TryExec("ALTER TABLE users DROP COLUMN handle"), "");
  db.Exec("INSERT INTO users VALUES ('u1', 'Ann')");
  EXPECT_EQ(Meta("users"), "[\"u1\"]=0");
}

TEST_F(SchemaChange, RenameTableIsFollowed) {
  db.Exec("CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT)");
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 'a')");
  db.Exec("ALTER TABLE notes RENAME TO memos");
  db.Exec("INSERT INTO memos VALUES ('n2', 'b')");
  EXPECT_EQ(Pulled(), "memos:{\"id\":\"n1\"}:upsert memos:{\"id\":\"n2\"}:upsert");
  EXPECT_EQ(db.Text("SELECT group_concat(name, ' ') FROM syncline_tables"), "memos");
  EXPECT_EQ(db.Int("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'syncline%memos'"), 4);
  EXPECT_EQ(db.Text("SELECT syncline_untrack('memos')"), "1");
  EXPECT_EQ(Triggers("memos"), 0);
  db.Exec("INSERT INTO memos VALUES ('n3', 'c')");  // untracked: no error, not captured
  EXPECT_EQ(db.Int("SELECT count(*) FROM syncline_rows WHERE tid > 0"), 0);
}

TEST_F(SchemaChange, UniqueIndexAddedAfterTrackIsGuarded) {
  db.Exec("CREATE TABLE users(id TEXT PRIMARY KEY, email TEXT, name TEXT)");
  db.Text("SELECT syncline_track('users')");
  db.Exec("INSERT INTO users VALUES ('u1', 'a@x', 'Ann'), ('u2', 'b@x', 'Bob')");
  db.Exec("CREATE UNIQUE INDEX u_email ON users(email)");
  db.Exec("INSERT OR REPLACE INTO users VALUES ('u3', 'a@x', 'Ann again')");
  // The tombstone comes before the row that took its email.
  EXPECT_EQ(Meta("users"), "[\"u2\"]=0 [\"u1\"]=1 [\"u3\"]=0");
  db.Exec("UPDATE OR REPLACE users SET email = 'b@x' WHERE id = 'u3'");
  EXPECT_EQ(Meta("users"), "[\"u1\"]=1 [\"u2\"]=1 [\"u3\"]=0");
}

// SQLite's 12-step rebuild (https://www.sqlite.org/lang_altertable.html#otheralter).
void Rebuild(Db& db, const std::string& create_new, const std::string& copy, bool restore_triggers) {
  db.Exec("CREATE TEMP TABLE saved AS SELECT sql FROM sqlite_schema WHERE tbl_name = 'notes' AND type = 'trigger'");
  db.Exec("BEGIN");
  db.Exec(create_new);
  db.Exec(copy);
  db.Exec("DROP TABLE notes");
  db.Exec("ALTER TABLE new_notes RENAME TO notes");
  db.Exec("CREATE INDEX notes_title ON notes(title)");
  if (restore_triggers) {
    std::string sql = db.Text("SELECT group_concat(sql, ';' || char(10)) FROM saved");
    db.Exec(sql);
  }
  db.Exec("COMMIT");
  db.Exec("DROP TABLE temp.saved");
}

void TrackNotesAndRebuild(Db& db, bool restore_triggers) {
  db.Exec("CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT, body TEXT)");
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 'a', 'x'), ('n2', 'b', 'y')");
  Rebuild(db, "CREATE TABLE new_notes(id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT)",
          "INSERT INTO new_notes SELECT id, title, body FROM notes", restore_triggers);
}

TEST_F(SchemaChange, RebuildThatRestoresTheTriggersKeepsCapturing) {
  TrackNotesAndRebuild(db, true);
  db.Exec("UPDATE notes SET title = 'c' WHERE id = 'n1'");
  db.Exec("DELETE FROM notes WHERE id = 'n2'");
  EXPECT_EQ(Meta("notes"), "[\"n1\"]=0 [\"n2\"]=1");
  EXPECT_EQ(db.Text("SELECT tid FROM syncline_tables WHERE name = 'notes'"), "1");
}

TEST_F(SchemaChange, RebuildWithoutTheTriggersRefusesWritesUntilReArmed) {
  TrackNotesAndRebuild(db, false);
  // The write that would go uncaptured is refused where it is prepared.
  EXPECT_EQ(db.TryExec("UPDATE notes SET title = 'c' WHERE id = 'n1'"), "not authorized");
  EXPECT_EQ(db.Text("SELECT title FROM notes WHERE id = 'n1'"), "a");
  // Any syncline call re-arms capture on the rebuilt table, same tid.
  db.Text("SELECT syncline_pull_since(NULL, 1)");
  EXPECT_EQ(Triggers("notes"), 4);
  db.Exec("UPDATE notes SET title = 'c' WHERE id = 'n1'");
  db.Exec("DELETE FROM notes WHERE id = 'n2'");
  EXPECT_EQ(Meta("notes"), "[\"n1\"]=0 [\"n2\"]=1");
  EXPECT_EQ(db.Text("SELECT tid FROM syncline_tables WHERE name = 'notes'"), "1");
}

TEST_F(SchemaChange, RebuildByAnotherConnectionIsReArmedByACapturedWrite) {
  db.Exec("CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT, body TEXT); CREATE TABLE other(id PRIMARY KEY)");
  db.Text("SELECT syncline_track('notes')");
  db.Text("SELECT syncline_track('other')");
  db.Exec("INSERT INTO notes VALUES ('n1', 'a', 'x'), ('n2', 'b', 'y')");
  {
    Db migrator(dir.File("a.db"), /*load_extension=*/false);
    Rebuild(migrator, "CREATE TABLE new_notes(id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT)",
            "INSERT INTO new_notes SELECT id, title, body FROM notes", false);
  }
  // This connection's statements are prepared again for the new schema; a
  // captured write to any tracked table re-arms the rest.
  db.Exec("INSERT INTO other VALUES (1)");
  db.Exec("UPDATE notes SET title = 'c' WHERE id = 'n1'");
  EXPECT_EQ(Meta("notes"), "[\"n2\"]=0 [\"n1\"]=0");
}

TEST_F(SchemaChange, RebuildThatChangesThePrimaryKeyIsRefused) {
  db.Exec("CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT, body TEXT)");
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 'a', 'x')");
  for (bool restore : {true, false}) {
    SCOPED_TRACE(restore ? "triggers restored" : "triggers not restored");
    long long clock = db.Int("SELECT clock FROM syncline_rows WHERE pk = '[\"n1\"]'");
    Rebuild(db, "CREATE TABLE new_notes(id TEXT, title TEXT, body TEXT, PRIMARY KEY (title, id))",
            "INSERT INTO new_notes SELECT id, title, body FROM notes", restore);
    const std::string refused =
        "table \"notes\" now has primary key (title, id) but its sync metadata is keyed by (id)";
    if (restore) {  // refused by the first captured row, before any syncline call
      std::string error = db.TryExec("UPDATE notes SET body = 'z' WHERE id = 'n1'");
      EXPECT_NE(error.find(refused), std::string::npos) << error;
    }
    // Pulls refuse the table too; the call installs the blocking triggers.
    EXPECT_NE(db.Error("SELECT syncline_pull_since(NULL, 1)").find("does not match the primary key"),
              std::string::npos);
    std::string error = db.TryExec("UPDATE notes SET body = 'z' WHERE id = 'n1'");
    EXPECT_NE(error.find(refused), std::string::npos) << error;
    EXPECT_EQ(db.Text("SELECT body FROM notes"), restore ? "x" : "y");
    // Back to the recorded key: captured again.
    Rebuild(db, "CREATE TABLE new_notes(id TEXT PRIMARY KEY, title TEXT, body TEXT)",
            "INSERT INTO new_notes SELECT id, title, body FROM notes", false);
    db.Text("SELECT syncline_pull_since(NULL, 1)");
    db.Exec("UPDATE notes SET body = 'y' WHERE id = 'n1'");
    EXPECT_EQ(db.Int("SELECT clock FROM syncline_rows WHERE pk = '[\"n1\"]'"), clock + 1);
  }
}

}  // namespace
}  // namespace syncline::test
