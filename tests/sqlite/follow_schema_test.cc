// syncline_follow_schema: a file brought to the server's schema document
// keeps its rows, its tracking and its metadata, has nothing to push
// afterwards and captures new writes; a file that migrates by hand is only
// told; a bad document changes nothing.
#include <string>
#include <vector>

#include "core/hlc.h"
#include "core/node_id.h"
#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

// A column of a document: name, PostgreSQL type, category, NOT NULL and
// any further members ("default": ...), as JSON.
std::string Col(const std::string& name, const std::string& type, const std::string& category, bool not_null = false,
                const std::string& extra = "") {
  return R"({"name":")" + name + R"(","type":")" + type + R"(","base_type":")" + type.substr(0, type.find('(')) +
         R"(","category":")" + category + R"(","not_null":)" + (not_null ? "true" : "false") +
         (extra.empty() ? "" : "," + extra) + "}";
}

std::string Join(const std::vector<std::string>& items) {
  std::string list;
  for (const std::string& item : items)
    list += (list.empty() ? "" : ",") + item;
  return list;
}

std::string Table(const std::string& name, const std::vector<std::string>& columns, const std::string& fks = "[]",
                  const std::string& key = "id") {
  return R"({"name":")" + name + R"(","primary_key":[")" + key + R"("],"columns":[)" + Join(columns) +
         R"(],"foreign_keys":)" + fks + "}";
}

std::string Doc(int version, const std::vector<std::string>& tables, const std::vector<std::string>& changes = {}) {
  return R"({"version":)" + std::to_string(version) + R"(,"tables":[)" + Join(tables) + R"(],"changes":[)" +
         Join(changes) + "]}";
}

std::string Event(int version, const std::string& event, const std::string& table, const std::string& rest = "") {
  return R"({"version":)" + std::to_string(version) + R"(,"event":")" + event + R"(","table":")" + table + "\"" +
         (rest.empty() ? "" : "," + rest) + "}";
}

std::string Rename(int version, const std::string& event, const std::string& table, const std::string& from,
                   const std::string& to) {
  return Event(version, event, table, R"("from":")" + from + R"(","to":")" + to + "\"");
}

const std::string kId = Col("id", "text", "S", true);

class FollowSchema : public ::testing::Test {
 protected:
  TempDir dir;
  Db db{dir.File("a.db")};

  // notes(id, body, color) tracked, with two rows; the local cursor taken.
  void SetUp() override {
    db.Exec("CREATE TABLE notes(id TEXT NOT NULL, body TEXT, color INTEGER, PRIMARY KEY (id))");
    db.Text("SELECT syncline_track('notes')");
    db.Exec("INSERT INTO notes VALUES ('n1', 'one', 1), ('n2', 'two', 2)");
    TakeCursor();
  }
  void TakeCursor() {
    cursor_ = db.Text("SELECT json_extract(syncline_pull_since(NULL, 1000, '{\"origin\":\"local\"}'), '$.cursor')");
  }

  std::string Follow(const std::string& document) { return db.Text("SELECT syncline_follow_schema(?1)", {document}); }
  std::string FollowError(const std::string& document) {
    return db.Error("SELECT syncline_follow_schema(?1)", {document});
  }
  std::string Summary(const std::string& summary, const std::string& path) {
    return db.Text("SELECT json_extract(?1, ?2)", {summary, path});
  }
  // The file's whole schema and syncline's metadata, to compare.
  std::string Schema() {
    return db.Text("SELECT group_concat(type || ' ' || name || ': ' || coalesce(sql, ''), char(10)) FROM "
                   "(SELECT * FROM sqlite_schema ORDER BY type, name)");
  }
  std::string Rows() {
    return db.Text("SELECT group_concat(tid || ' ' || hex(pk) || ' ' || version || ' ' || hlc || ' ' || deleted, "
                   "char(10)) FROM (SELECT * FROM syncline_rows ORDER BY version)");
  }
  std::string Metadata() {
    return Rows() + "\n" + db.Text("SELECT group_concat(tid || ' ' || name, ', ') FROM syncline_tables");
  }
  std::string Columns(const std::string& table) {
    return db.Text("SELECT group_concat(name || ' ' || type || (CASE WHEN \"notnull\" THEN ' NOT NULL' ELSE '' END), "
                   "', ') FROM pragma_table_info(?1)",
                   {table});
  }
  // Local changes after the cursor taken before the migration.
  long long PendingSince() {
    return std::stoll(db.Text(
        "SELECT json_array_length(syncline_pull_since(?1, 1000, '{\"origin\":\"local\"}'), '$.changes')", {cursor_}));
  }
  // A new write is captured: it is the one change to push.
  void ExpectCaptures(const std::string& write, const std::string& table) {
    db.Exec(write);
    std::string batch = db.Text("SELECT syncline_pull_since(?1, 1000, '{\"origin\":\"local\"}')", {cursor_});
    EXPECT_EQ(db.Text("SELECT json_array_length(?1, '$.changes')", {batch}), "1") << batch;
    EXPECT_EQ(db.Text("SELECT json_extract(?1, '$.changes[0].table')", {batch}), table) << batch;
  }

  std::string cursor_;
};

TEST_F(FollowSchema, CreatesTablesWithTypesDefaultsKeysAndForeignKeys) {
  const std::string folders =
      Table("folders", {kId, Col("flag", "boolean", "B", true, R"("default":true)"),
                        Col("price", "numeric(10,2)", "N", false, R"("default":"12.50")"),
                        Col("big", "numeric", "N", false, R"("default":"123456789012345678901")"),
                        Col("ratio", "double precision", "N", false, R"("default":{"real":"NaN"})"),
                        Col("far", "real", "N", false, R"("default":{"real":"-Infinity"})"),
                        Col("raw", "bytea", "U", false, R"("default":{"blob":"AAE="})"),
                        Col("name", "text", "S", true, R"("default":"it's")"),
                        Col("made", "timestamp with time zone", "D", false, R"x("default_expression":"now()")x")});
  const std::string notes =
      Table("notes", {kId, Col("body", "text", "S"), Col("color", "integer", "N"), Col("folder", "text", "S")},
            R"([{"columns":["folder"],"references":"folders","ref_columns":["id"]}])");
  std::string summary = Follow(Doc(1, {folders, notes}));
  EXPECT_EQ(Summary(summary, "$.created"), "[\"folders\"]") << summary;
  EXPECT_EQ(Columns("folders"), "id TEXT NOT NULL, flag INTEGER NOT NULL, price NUMERIC, big TEXT, ratio REAL, "
                                "far REAL, raw BLOB, name TEXT NOT NULL, made TEXT");
  EXPECT_EQ(db.Int("SELECT count(*) FROM syncline_tables WHERE name = 'folders'"), 1);
  db.Exec("INSERT INTO folders(id) VALUES ('f1')");
  EXPECT_EQ(db.Dump("folders"), "'f1'|1|12.5|'123456789012345678901'|'NaN'|-Inf|X'0001'|'it''s'|NULL");
  // notes gained its column, with the foreign key of that column alone.
  EXPECT_EQ(Summary(summary, "$.added[0].column"), "folder");
  EXPECT_EQ(db.Text("SELECT \"table\" || '.' || \"to\" FROM pragma_foreign_key_list('notes')"), "folders.id");
  EXPECT_EQ(db.Text("SELECT syncline_config('schema_version')"), "1");
  // New tables are created with their foreign keys.
  Follow(Doc(2, {folders, notes,
                 Table("tags", {kId, Col("folder", "text", "S")},
                       R"([{"columns":["folder"],"references":"folders","ref_columns":["id"]}])")}));
  EXPECT_EQ(db.Text("SELECT \"table\" || '.' || \"to\" FROM pragma_foreign_key_list('tags')"), "folders.id");
  EXPECT_EQ(PendingSince(), 1);  // the folder row written above; the migrations themselves wrote nothing
}

TEST_F(FollowSchema, AddsRenamesAndDropsColumnsKeepingRowsAndMetadata) {
  const std::string metadata = Metadata();
  std::string summary = Follow(
      Doc(3,
          {Table("notes", {kId, Col("text", "text", "S"), Col("title", "text", "S", true, R"("default":"untitled")"),
                           Col("stars", "integer", "N", true)})},
          {Rename(2, "rename_column", "notes", "body", "text"), Event(3, "drop_column", "notes", R"("column":"color")"),
           Event(3, "add_column", "notes", R"("column":"title")")}));
  EXPECT_EQ(Summary(summary, "$.renamed[0].to"), "text") << summary;
  EXPECT_EQ(Summary(summary, "$.dropped[0].column"), "color") << summary;
  EXPECT_EQ(Summary(summary, "$.added[1].column"), "stars") << summary;
  EXPECT_NE(Summary(summary, "$.warnings[0].note").find("nullable"), std::string::npos) << summary;
  EXPECT_EQ(Columns("notes"), "id TEXT NOT NULL, text TEXT, title TEXT NOT NULL, stars INTEGER");
  EXPECT_EQ(db.Dump("notes"), "'n1'|'one'|'untitled'|NULL\n'n2'|'two'|'untitled'|NULL");
  EXPECT_EQ(Metadata(), metadata);
  EXPECT_EQ(PendingSince(), 0);
  ExpectCaptures("UPDATE notes SET text = 'edited' WHERE id = 'n2'", "notes");
}

TEST_F(FollowSchema, RenameChainsAcrossMigrationsInOneDocument) {
  const std::string rows = Rows();
  std::string summary = Follow(
      Doc(5, {Table("memos", {kId, Col("content", "text", "S"), Col("color", "integer", "N")})},
          {Rename(2, "rename_column", "notes", "body", "text"), Rename(3, "rename_table", "notes", "notes", "drafts"),
           Rename(4, "rename_column", "drafts", "text", "content"),
           Rename(5, "rename_table", "drafts", "drafts", "memos")}));
  EXPECT_EQ(db.Int("SELECT count(*) FROM sqlite_schema WHERE name IN ('notes', 'drafts')"), 0) << summary;
  EXPECT_EQ(db.Dump("memos"), "'n1'|'one'|1\n'n2'|'two'|2");
  EXPECT_EQ(db.Text("SELECT name FROM syncline_tables"), "memos");
  EXPECT_EQ(PendingSince(), 0);
  EXPECT_EQ(Rows(), rows);
  EXPECT_EQ(db.Int("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND sql LIKE '%notes%'"), 0);
  ExpectCaptures("INSERT INTO memos VALUES ('n3', 'three', 3)", "memos");
}

// A renamed table keeps the foreign keys and views that name it, as a
// PostgreSQL rename does, whatever the app's legacy_alter_table says.
TEST_F(FollowSchema, ATableRenameReachesWhatNamesIt) {
  db.Exec("CREATE TABLE tags(id TEXT PRIMARY KEY NOT NULL, note TEXT REFERENCES notes(id))");
  db.Text("SELECT syncline_track('tags')");
  db.Exec("INSERT INTO tags VALUES ('t1', 'n1')");
  db.Exec("CREATE VIEW bodies AS SELECT body FROM notes");
  db.Exec("PRAGMA legacy_alter_table = ON");
  TakeCursor();
  const std::string fk = R"([{"columns":["note"],"references":"memos","ref_columns":["id"]}])";
  std::string summary = Follow(Doc(2,
                                   {Table("memos", {kId, Col("body", "text", "S"), Col("color", "integer", "N")}),
                                    Table("tags", {kId, Col("note", "text", "S")}, fk)},
                                   {Rename(2, "rename_table", "notes", "notes", "memos")}));
  EXPECT_EQ(db.Text("SELECT \"table\" FROM pragma_foreign_key_list('tags')"), "memos") << summary;
  EXPECT_EQ(db.Text("SELECT group_concat(body) FROM bodies"), "one,two");
  EXPECT_EQ(Summary(summary, "$.rebuilt"), "[]");  // the key the server has is the one here
  EXPECT_EQ(db.Int("PRAGMA legacy_alter_table"), 1);
  EXPECT_EQ(PendingSince(), 0);
}

TEST_F(FollowSchema, RenamedNamesReusedLater) {
  // body -> text, then a new body; notes -> memos, then a new notes.
  std::string summary = Follow(
      Doc(4,
          {Table("memos", {kId, Col("text", "text", "S"), Col("body", "text", "S", false, R"("default":"new")"),
                           Col("color", "integer", "N")}),
           Table("notes", {kId, Col("x", "integer", "N")})},
          {Rename(2, "rename_column", "notes", "body", "text"), Event(2, "add_column", "notes", R"("column":"body")"),
           Rename(3, "rename_table", "notes", "notes", "memos"), Event(4, "track", "notes")}));
  EXPECT_EQ(db.Dump("memos"), "'n1'|'one'|1|'new'\n'n2'|'two'|2|'new'") << summary;
  EXPECT_EQ(Columns("notes"), "id TEXT NOT NULL, x INTEGER");
  EXPECT_EQ(Summary(summary, "$.created"), "[\"notes\"]");
  EXPECT_EQ(db.Text("SELECT group_concat(name, ',') FROM (SELECT name FROM syncline_tables ORDER BY tid)"),
            "memos,notes");
  EXPECT_EQ(PendingSince(), 0);
  ExpectCaptures("INSERT INTO notes VALUES ('m1', 1)", "notes");
}

TEST_F(FollowSchema, ColumnNameFreedByADropThenTaken) {
  db.Exec("ALTER TABLE notes ADD COLUMN text TEXT");  // an old column the server drops at 2
  db.Exec("UPDATE notes SET text = 'old'");
  TakeCursor();
  Follow(Doc(
      3, {Table("notes", {kId, Col("text", "text", "S"), Col("color", "integer", "N")})},
      {Event(2, "drop_column", "notes", R"("column":"text")"), Rename(3, "rename_column", "notes", "body", "text")}));
  EXPECT_EQ(db.Dump("notes"), "'n1'|'one'|1\n'n2'|'two'|2");
  EXPECT_EQ(Columns("notes"), "id TEXT NOT NULL, text TEXT, color INTEGER");
  EXPECT_EQ(PendingSince(), 0);
}

TEST_F(FollowSchema, TypeChangeRebuildsTheTableKeepingTheAppsObjects) {
  // notes references folders (cascading deletes): a rebuild of folders, in
  // a transaction with foreign keys on as a pull runs, leaves notes alone.
  db.Exec("CREATE TABLE folders(id TEXT PRIMARY KEY NOT NULL, rank TEXT)");
  db.Text("SELECT syncline_track('folders')");
  db.Exec("INSERT INTO folders VALUES ('f1', '10'), ('f2', '20')");
  db.Exec("CREATE TABLE log(what TEXT)");
  db.Exec("CREATE INDEX folders_rank ON folders(rank)");
  db.Exec("CREATE TRIGGER folders_log AFTER UPDATE ON folders BEGIN INSERT INTO log VALUES (NEW.id); END");
  db.Exec("ALTER TABLE notes ADD COLUMN folder TEXT REFERENCES folders(id) ON DELETE CASCADE");
  db.Exec("UPDATE notes SET folder = 'f1'");
  TakeCursor();
  const std::string metadata = Metadata();
  const std::string fk = R"([{"columns":["folder"],"references":"folders","ref_columns":["id"]}])";
  db.Exec("PRAGMA foreign_keys = ON");
  db.Exec("BEGIN");
  std::string summary = Follow(Doc(
      2,
      {Table("folders", {kId, Col("rank", "integer", "N")}),
       Table("notes", {kId, Col("body", "text", "S"), Col("color", "integer", "N"), Col("folder", "text", "S")}, fk)},
      {Event(2, "alter_type", "folders", R"("column":"rank")")}));
  db.Exec("COMMIT");
  EXPECT_EQ(Summary(summary, "$.rebuilt"), "[\"folders\"]") << summary;
  EXPECT_EQ(Columns("folders"), "id TEXT NOT NULL, rank INTEGER");
  EXPECT_EQ(db.Dump("folders"), "'f1'|10\n'f2'|20");  // converted by the new affinity
  EXPECT_EQ(db.Dump("notes"), "'n1'|'one'|1|'f1'\n'n2'|'two'|2|'f1'");
  EXPECT_EQ(db.Int("SELECT count(*) FROM sqlite_schema WHERE name IN ('folders_rank', 'folders_log')"), 2);
  EXPECT_EQ(db.Text("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'syncline_rebuild%'"), "0");
  EXPECT_EQ(db.Int("PRAGMA foreign_keys"), 1);
  EXPECT_EQ(Metadata(), metadata);
  EXPECT_EQ(PendingSince(), 0);
  ExpectCaptures("UPDATE folders SET rank = 30 WHERE id = 'f2'", "folders");
  EXPECT_EQ(db.Text("SELECT group_concat(what) FROM log"), "f2");
  // The references still hold.
  EXPECT_NE(db.Error("INSERT INTO notes VALUES ('n9', '', 0, 'nowhere')"), "");
}

TEST_F(FollowSchema, NotNullTheServerDroppedIsDroppedHere) {
  db.Exec("CREATE TABLE tags(id TEXT PRIMARY KEY NOT NULL, label TEXT NOT NULL)");
  db.Text("SELECT syncline_track('tags')");
  db.Exec("INSERT INTO tags VALUES ('t1', 'a')");
  TakeCursor();
  const std::string notes = Table("notes", {kId, Col("body", "text", "S"), Col("color", "integer", "N")});
  std::string summary = Follow(Doc(2, {notes, Table("tags", {kId, Col("label", "text", "S")})}));
  EXPECT_EQ(Summary(summary, "$.rebuilt"), "[\"tags\"]") << summary;
  db.Exec("INSERT INTO tags VALUES ('t2', NULL)");
  EXPECT_EQ(PendingSince(), 1);
}

TEST_F(FollowSchema, ADropThatTheAppsIndexBlocksFailsAndChangesNothing) {
  db.Exec("CREATE INDEX notes_color ON notes(color)");
  const std::string schema = Schema(), metadata = Metadata();
  std::string error = FollowError(Doc(2, {Table("notes", {kId, Col("body", "text", "S")})}));
  EXPECT_NE(error.find("table \"notes\": cannot drop column \"color\""), std::string::npos) << error;
  EXPECT_NE(error.find("index \"notes_color\""), std::string::npos) << error;
  EXPECT_EQ(Schema(), schema);
  EXPECT_EQ(Metadata(), metadata);
  EXPECT_EQ(db.Text("SELECT syncline_config('schema_version')"), "0");
  ExpectCaptures("UPDATE notes SET body = 'x' WHERE id = 'n1'", "notes");
}

TEST_F(FollowSchema, TablesTheServerStoppedTrackingStayUntracked) {
  db.Exec("CREATE TABLE tags(id TEXT PRIMARY KEY NOT NULL)");
  db.Text("SELECT syncline_track('tags')");
  db.Exec("INSERT INTO tags VALUES ('t1')");
  TakeCursor();
  std::string summary = Follow(Doc(2, {Table("tags", {kId})}, {Event(2, "untrack", "notes")}));
  EXPECT_EQ(Summary(summary, "$.untracked"), "[\"notes\"]") << summary;
  EXPECT_EQ(db.Int("SELECT count(*) FROM notes"), 2);
  EXPECT_EQ(db.Int("SELECT count(*) FROM syncline_tables WHERE name = 'notes'"), 0);
  db.Exec("UPDATE notes SET body = 'local only'");
  EXPECT_EQ(PendingSince(), 0);
  // Tracked again later: the server's rows come by pull; the ones kept here
  // move aside, untouched.
  summary = Follow(
      Doc(3, {Table("tags", {kId}), Table("notes", {kId, Col("body", "text", "S")})}, {Event(3, "track", "notes")}));
  EXPECT_EQ(Summary(summary, "$.set_aside[0].as"), "notes_untracked") << summary;
  EXPECT_EQ(db.Int("SELECT count(*) FROM notes_untracked"), 2);
  EXPECT_EQ(db.Int("SELECT count(*) FROM notes"), 0);
  EXPECT_EQ(PendingSince(), 0);
  ExpectCaptures("INSERT INTO notes VALUES ('n5', 'five')", "notes");
}

TEST_F(FollowSchema, AFileThatMigratesByHandIsOnlyTold) {
  EXPECT_EQ(db.Text("SELECT syncline_config('follow_schema')"), "auto");
  EXPECT_EQ(db.Text("SELECT syncline_config('follow_schema', 'manual')"), "manual");
  const std::string schema = Schema();
  std::string summary = Follow(Doc(7, {Table("notes", {kId, Col("text", "text", "S")})}));
  EXPECT_EQ(Summary(summary, "$.manual"), "1") << summary;
  EXPECT_EQ(Schema(), schema);
  EXPECT_EQ(db.Text("SELECT syncline_config('schema_due')"), "7");
  EXPECT_EQ(db.Text("SELECT syncline_config('schema_version')"), "0");
  Follow(Doc(5, {Table("notes", {kId})}));  // an older one does not lower it
  EXPECT_EQ(db.Text("SELECT syncline_config('schema_due')"), "7");
  // The app migrates and says so.
  db.Exec("ALTER TABLE notes RENAME COLUMN body TO text");
  EXPECT_EQ(db.Text("SELECT syncline_config('schema_version', 7)"), "7");
  EXPECT_EQ(db.Text("SELECT syncline_config('schema_due')"), "NULL");
  EXPECT_EQ(Summary(Follow(Doc(7, {Table("notes", {kId})})), "$.unchanged"), "1");
  EXPECT_NE(db.Error("SELECT syncline_config('follow_schema', 'sometimes')").find("'auto' or 'manual'"),
            std::string::npos);
  EXPECT_NE(db.Error("SELECT syncline_config('schema_due', 3)").find("read only"), std::string::npos);
}

TEST_F(FollowSchema, AMalformedDocumentChangesNothing) {
  const std::string schema = Schema(), metadata = Metadata();
  const std::string good = Table("notes", {kId, Col("body", "text", "S")});
  const std::pair<std::string, std::string> cases[] = {
      {"{", "schema document: "},
      {"[]", "must be a JSON object"},
      {R"({"tables":[]})", "lacks \"version\""},
      {R"({"version":-1,"tables":[]})", "\"version\" must be a non-negative integer or null"},
      {R"({"version":2})", "\"tables\" must be a list"},
      {Doc(2, {R"({"name":"t","primary_key":["id"],"columns":[{"type":"text"}]})"}),
       "tables[0] (\"t\"): columns[0]: lacks \"name\""},
      {Doc(2, {R"({"name":"t","primary_key":["k"],"columns":[{"name":"id"}]})"}),
       "primary key column \"k\" is not among its columns"},
      {Doc(2, {R"({"name":"t","primary_key":[],"columns":[{"name":"id"}]})"}), "\"primary_key\" must be a non-empty"},
      {Doc(2, {good, good}), "table \"notes\" appears twice"},
      {Doc(2, {Table("t", {kId, Col("n", "integer", "N", false, R"("default":[1])")})}), "\"default\": "},
      {Doc(2, {Table("t", {kId}, R"([{"columns":["id"],"references":"x","ref_columns":["a","b"]}])")}),
       "differ in length"},
      {Doc(2, {good}, {R"({"version":2,"event":"rename_column","table":"notes","from":"body"})"}), "lacks \"to\""},
      {Doc(3, {good}, {Event(3, "track", "a"), Event(2, "track", "b")}), "changes must be in version order"},
      {Doc(2, {Table("syncline_x", {kId})}), "may not start with syncline_"},
  };
  for (const auto& [document, expected] : cases) {
    std::string error = FollowError(document);
    EXPECT_NE(error.find(expected), std::string::npos) << document << "\n  -> " << error;
  }
  EXPECT_EQ(Schema(), schema);
  EXPECT_EQ(Metadata(), metadata);
}

TEST_F(FollowSchema, TheSameDocumentTwiceAndOlderOnesChangeNothing) {
  const std::string document = Doc(2, {Table("notes", {kId, Col("text", "text", "S"), Col("color", "integer", "N")})},
                                   {Rename(2, "rename_column", "notes", "body", "text")});
  Follow(document);
  const std::string schema = Schema(), metadata = Metadata();
  EXPECT_EQ(Summary(Follow(document), "$.unchanged"), "1");
  EXPECT_EQ(Summary(Follow(Doc(1, {Table("notes", {kId})})), "$.unchanged"), "1");
  EXPECT_EQ(Schema(), schema);
  EXPECT_EQ(Metadata(), metadata);
}

TEST_F(FollowSchema, ADocumentWithoutAVersionOnlyAdds) {
  std::string summary = Follow(
      R"({"version":null,"tables":[)" +
      Join({Table("notes", {kId, Col("body", "text", "S"), Col("extra", "text", "S")}), Table("tags", {kId})}) + "]}");
  EXPECT_EQ(Summary(summary, "$.created"), "[\"tags\"]") << summary;
  EXPECT_EQ(Columns("notes"), "id TEXT NOT NULL, body TEXT, color INTEGER, extra TEXT");  // color stays
  EXPECT_EQ(db.Text("SELECT syncline_config('schema_version')"), "0");
  EXPECT_EQ(PendingSince(), 0);
}

TEST_F(FollowSchema, AChangedPrimaryKeyIsRefused) {
  const std::string schema = Schema();
  std::string error = FollowError(
      Doc(2, {Table("notes", {kId, Col("body", "text", "S", true), Col("color", "integer", "N")}, "[]", "body")}));
  EXPECT_NE(error.find("table \"notes\": the server's primary key differs"), std::string::npos) << error;
  EXPECT_EQ(Schema(), schema);
}

// A page from the server that carries its schema document: apply_push
// follows it before merging the page's rows, in the same savepoint.
TEST_F(FollowSchema, ApplyFollowsThePagesSchemaFirst) {
  const std::string server = core::NewNodeId();
  const std::string hlc = core::HlcToText(core::HlcFromPhysicalMs(core::WallClockMs()));
  const std::string document = Doc(
      2, {Table("notes", {kId, Col("text", "text", "S"), Col("color", "integer", "N"), Col("stars", "integer", "N")})},
      {Rename(2, "rename_column", "notes", "body", "text")});
  auto page = [&](const std::string& row, const std::string& schema) {
    return R"({"format":1,"source":")" + server +
           R"(","changes":[{"table":"notes","op":"upsert","pk":{"id":"n3"},"row":)" + row + R"(,"clock":1,"hlc":")" +
           hlc + R"(","node":")" + server + R"("}],"schema_version":2,)" + schema + R"("cursor":"","has_more":false})";
  };
  const std::string row = R"({"id":"n3","text":"three","color":3,"stars":5})";
  const std::string schema = Schema();
  // Not from the server: the document is not followed.
  EXPECT_NE(db.Error("SELECT syncline_apply_push(?1)", {page(row, R"("schema":)" + document + ",")}).find("\"text\""),
            std::string::npos);
  // A bad document: nothing changes.
  EXPECT_NE(
      db.Error("SELECT syncline_apply_push(?1, '{\"from_server\":true}')", {page(row, R"("schema":{"version":2},)")})
          .find("batch: schema: schema document: \"tables\" must be a list"),
      std::string::npos);
  // A page whose rows break a foreign key at the end: the schema goes too.
  const std::string fk = R"([{"columns":["stars"],"references":"stars","ref_columns":["id"]}])";
  const std::string breaking = Doc(
      2,
      {Table("notes", {kId, Col("text", "text", "S"), Col("color", "integer", "N"), Col("stars", "integer", "N")}, fk),
       Table("stars", {Col("id", "integer", "N", true)})});
  db.Exec("PRAGMA foreign_keys = ON");
  EXPECT_NE(db.Error("SELECT syncline_apply_push(?1, '{\"from_server\":true}')",
                     {page(row, R"("schema":)" + breaking + ",")}),
            "");
  EXPECT_EQ(Schema(), schema);
  EXPECT_EQ(db.Text("SELECT syncline_config('schema_version')"), "0");

  std::string summary =
      db.Text("SELECT syncline_apply_push(?1, '{\"from_server\":true}')", {page(row, R"("schema":)" + document + ",")});
  EXPECT_EQ(Summary(summary, "$.applied"), "1") << summary;
  EXPECT_EQ(Summary(summary, "$.schema.version"), "2") << summary;
  EXPECT_EQ(Summary(summary, "$.schema.added[0].column"), "stars") << summary;
  EXPECT_EQ(db.Dump("notes"), "'n1'|'one'|1|NULL\n'n2'|'two'|2|NULL\n'n3'|'three'|3|5");
  EXPECT_EQ(db.Text("SELECT syncline_config('schema_version')"), "2");
  EXPECT_EQ(PendingSince(), 0);
  // Later pages of the same pull carry the document again: nothing to do.
  summary =
      db.Text("SELECT syncline_apply_push(?1, '{\"from_server\":true}')", {page(row, R"("schema":)" + document + ",")});
  EXPECT_EQ(Summary(summary, "$.schema.unchanged"), "1") << summary;
}

}  // namespace
}  // namespace syncline::test
