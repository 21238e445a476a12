// Tracking and capture: the triggers keep one metadata row per row, in the
// same transaction as the write.
#include <sqlite3.h>

#include "core/changeset.h"
#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

class Tracking : public ::testing::Test {
 protected:
  TempDir dir;
  Db db{dir.File("a.db")};

  void SetUp() override { db.Exec("CREATE TABLE notes(id TEXT PRIMARY KEY, org_id INTEGER, title TEXT, body TEXT)"); }
  long long MetaRows() { return db.Int("SELECT count(*) FROM syncline_rows WHERE tid > 0"); }
  std::string Meta(const std::string& key) {
    return db.Text("SELECT clock || ':' || deleted FROM syncline_rows WHERE pk = ?1", {key});
  }
};

TEST_F(Tracking, BackfillsExistingRowsAndIsHarmlessTwice) {
  db.Exec("INSERT INTO notes VALUES ('n1', 7, 'a', 'b'), ('n2', 7, 'c', 'd')");
  EXPECT_EQ(db.Text("SELECT json_extract(syncline_track('notes'), '$.backfilled')"), "2");
  EXPECT_EQ(db.Text("SELECT json_extract(syncline_track('notes'), '$.backfilled')"), "0");
  EXPECT_EQ(MetaRows(), 2);
  EXPECT_EQ(db.Int("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"), 4);
  std::string batch = db.Text("SELECT syncline_pull_since(NULL, 10)");
  EXPECT_EQ(db.Text("SELECT json_array_length(?1, '$.changes')", {batch}), "2");
}

TEST_F(Tracking, RefusesWhatCannotBeTracked) {
  db.Exec("CREATE TABLE nokey(a, b); CREATE VIEW v AS SELECT 1 AS x;");
  EXPECT_NE(db.Error("SELECT syncline_track('nokey')").find("has no PRIMARY KEY"), std::string::npos);
  EXPECT_NE(db.Error("SELECT syncline_track('missing')").find("no such table \"missing\""), std::string::npos);
  EXPECT_NE(db.Error("SELECT syncline_track('v')").find("is a view"), std::string::npos);
  db.Text("SELECT syncline_node_id()");
  EXPECT_NE(db.Error("SELECT syncline_track('syncline_rows')").find("belongs to syncline"), std::string::npos);
  EXPECT_NE(db.Error("SELECT syncline_track('notes', '{\"bogus\":1}')").find("unknown option \"bogus\""),
            std::string::npos);
  db.Exec("CREATE TABLE u(id TEXT PRIMARY KEY, email TEXT); CREATE UNIQUE INDEX u_lower ON u(lower(email));");
  EXPECT_NE(db.Error("SELECT syncline_track('u')").find("UNIQUE index on an expression"), std::string::npos);
}

TEST_F(Tracking, InsertUpdateDeleteKeepOneMetadataRowPerRow) {
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 7, 'a', 'b')");
  EXPECT_EQ(Meta("[\"n1\"]"), "1:0");
  db.Exec("BEGIN");
  for (int i = 0; i < 1000; ++i)
    db.Exec("UPDATE notes SET title = 't" + std::to_string(i) + "' WHERE id = 'n1'");
  db.Exec("COMMIT");
  EXPECT_EQ(MetaRows(), 1);  // a million updates would not grow the log either
  EXPECT_EQ(Meta("[\"n1\"]"), "1001:0");
  db.Exec("DELETE FROM notes");
  EXPECT_EQ(db.Int("SELECT count(*) FROM notes"), 0);  // the user's table stays clean
  EXPECT_EQ(Meta("[\"n1\"]"), "1002:1");               // the tombstone lives in the metadata
  db.Exec("INSERT INTO notes VALUES ('n1', 8, 'again', '')");
  EXPECT_EQ(Meta("[\"n1\"]"), "1003:0");
}

TEST_F(Tracking, StampsAndVersionsOnlyGrow) {
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 7, 'a', 'b'), ('n2', 7, 'c', 'd')");
  long long hlc1 = db.Int("SELECT hlc FROM syncline_rows WHERE pk = '[\"n1\"]'");
  long long version2 = db.Int("SELECT version FROM syncline_rows WHERE pk = '[\"n2\"]'");
  db.Exec("UPDATE notes SET title = 'x' WHERE id = 'n1'");
  EXPECT_GT(db.Int("SELECT hlc FROM syncline_rows WHERE pk = '[\"n1\"]'"), hlc1);
  EXPECT_GT(db.Int("SELECT version FROM syncline_rows WHERE pk = '[\"n1\"]'"), version2);
}

TEST_F(Tracking, PrimaryKeyChangeIsDeleteOfOldKeyAndUpsertOfNew) {
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 7, 'a', 'b')");
  db.Exec("UPDATE notes SET id = 'n9' WHERE id = 'n1'");
  EXPECT_EQ(Meta("[\"n1\"]"), "2:1");
  EXPECT_EQ(Meta("[\"n9\"]"), "1:0");
  EXPECT_LT(db.Int("SELECT version FROM syncline_rows WHERE pk = '[\"n1\"]'"),
            db.Int("SELECT version FROM syncline_rows WHERE pk = '[\"n9\"]'"));
}

TEST_F(Tracking, CompositeKeys) {
  db.Exec("CREATE TABLE pt(playlist INTEGER, track INTEGER, pos REAL, PRIMARY KEY (track, playlist))");
  db.Text("SELECT syncline_track('pt')");
  db.Exec("INSERT INTO pt VALUES (1, 10, 0.5), (1, 11, 1.5)");
  db.Exec("UPDATE pt SET playlist = 2 WHERE track = 11");
  // Keys list the columns in primary key order, not table order.
  EXPECT_EQ(db.Text("SELECT group_concat(pk || '=' || deleted, ' ') FROM (SELECT * FROM syncline_rows ORDER BY "
                    "version)"),
            "[10,1]=0 [11,1]=1 [11,2]=0");
  std::string batch = db.Text("SELECT syncline_pull_since(NULL, 10)");
  EXPECT_EQ(db.Text("SELECT json_extract(?1, '$.changes[2].pk')", {batch}), "{\"track\":11,\"playlist\":2}");
}

TEST_F(Tracking, UpsertAndReplaceWritesAreCaptured) {
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 7, 'a', 'b')");
  db.Exec("INSERT INTO notes VALUES ('n1', 7, 'a2', 'b') ON CONFLICT (id) DO UPDATE SET title = excluded.title");
  EXPECT_EQ(Meta("[\"n1\"]"), "2:0");
  db.Exec("INSERT OR REPLACE INTO notes VALUES ('n1', 7, 'a3', 'b')");
  EXPECT_EQ(Meta("[\"n1\"]"), "3:0");
  db.Exec("REPLACE INTO notes VALUES ('n2', 7, 'x', 'y')");
  EXPECT_EQ(Meta("[\"n2\"]"), "1:0");
}

TEST_F(Tracking, ReplaceThroughSecondaryUniqueKeyLeavesTombstones) {
  db.Exec("CREATE TABLE users(id TEXT PRIMARY KEY, email TEXT UNIQUE, handle TEXT, UNIQUE (handle))");
  db.Text("SELECT syncline_track('users')");
  db.Exec("INSERT INTO users VALUES ('u1', 'a@x', 'a'), ('u2', 'b@x', 'b'), ('u3', 'c@x', 'c')");
  // Clashes with u1 on email and u2 on handle: REPLACE silently deletes both,
  // and no DELETE trigger fires (recursive_triggers is off).
  db.Exec("INSERT OR REPLACE INTO users VALUES ('u4', 'a@x', 'b')");
  EXPECT_EQ(db.Dump("users"), "'u3'|'c@x'|'c'\n'u4'|'a@x'|'b'");
  EXPECT_EQ(db.Text("SELECT group_concat(pk || '=' || deleted, ' ') FROM (SELECT * FROM syncline_rows ORDER BY "
                    "pk)"),
            "[\"u1\"]=1 [\"u2\"]=1 [\"u3\"]=0 [\"u4\"]=0");
  // UPDATE OR REPLACE too.
  db.Exec("UPDATE OR REPLACE users SET email = 'c@x' WHERE id = 'u4'");
  EXPECT_EQ(Meta("[\"u3\"]"), "2:1");
  // A clash that did not delete anything (OR IGNORE) leaves no tombstone.
  db.Exec("INSERT OR IGNORE INTO users VALUES ('u5', 'c@x', 'z')");
  db.Exec("INSERT INTO users VALUES ('u6', 'f@x', 'f')");
  EXPECT_EQ(Meta("[\"u4\"]"), "2:0");
  EXPECT_EQ(db.Int("SELECT count(*) FROM syncline_displaced"), 0);
  EXPECT_EQ(db.Int("SELECT count(*) FROM syncline_rows WHERE deleted = 0"), db.Int("SELECT count(*) FROM users"));
}

// The REPLACE guard notes and checks displaced rows by their metadata key,
// which for UUID keys is the compact blob.
TEST_F(Tracking, ReplaceDisplacingAUuidKeyedRowLeavesItsTombstone) {
  db.Exec("CREATE TABLE users(id TEXT PRIMARY KEY, email TEXT UNIQUE)");
  db.Text("SELECT syncline_track('users')");
  const std::string u1 = "0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11", u2 = "5D1C2A9B-7E3F-4A60-8B12-C0FFEE000001";
  db.Exec("INSERT INTO users VALUES ('" + u1 + "', 'a@x')");
  db.Exec("INSERT OR REPLACE INTO users VALUES ('" + u2 + "', 'a@x')");
  EXPECT_EQ(db.Text("SELECT group_concat(typeof(pk) || '=' || deleted, ' ') FROM (SELECT * FROM syncline_rows WHERE "
                    "tid > 0 ORDER BY version)"),
            "blob=1 blob=0");
  std::string batch = db.Text("SELECT syncline_pull_since(NULL, 10)");
  EXPECT_EQ(db.Text("SELECT json_extract(?1, '$.changes[0].op') || ' ' || json_extract(?1, '$.changes[0].pk.id') || "
                    "' ' || json_extract(?1, '$.changes[1].pk.id')",
                    {batch}),
            "delete " + u1 + " " + u2);
  EXPECT_EQ(db.Int("SELECT count(*) FROM syncline_displaced"), 0);
}

// syncline_key's compact form (a tag byte and the 16 bytes) is taken only by
// text that is exactly a UUID in one case; anything else near it stays the
// key's protocol text.
TEST_F(Tracking, OnlyAUuidInOneCaseTakesTheCompactKey) {
  EXPECT_EQ(db.Text("SELECT hex(syncline_key('0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11'))"),
            "010B6F6F2E6A864C1C9D1E5A2F9A0D7C11");
  EXPECT_EQ(db.Text("SELECT hex(syncline_key('5D1C2A9B-7E3F-4A60-8B12-C0FFEE000001'))"),
            "025D1C2A9B7E3F4A608B12C0FFEE000001");
  EXPECT_EQ(db.Text("SELECT hex(syncline_key('00000000-0000-0000-0000-000000000000'))"),
            "0100000000000000000000000000000000");  // no letters: the lower-case tag
  const std::vector<std::string> near = {
      "0b6f6f2e-6a86-4c1c-9d1e-5A2F9A0D7C11",   // mixed case
      "0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c1g",   // not a hex digit
      "0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c1",    // one digit short
      "0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c111",  // one digit more
      "0b6f6f2e6-a86-4c1c-9d1e-5a2f9a0d7c11",   // a dash out of place
      "0b6f6f2e-6a86-4c1c-9d1e:5a2f9a0d7c11",   // not a dash
  };
  for (const std::string& text : near)
    EXPECT_EQ(db.Text("SELECT typeof(syncline_key(?1)) || ' ' || syncline_key(?1)", {text}), "text [\"" + text + "\"]")
        << text;
}

// Metadata of another version (here the first, which kept every key as text)
// is refused with an error rather than misread.
TEST_F(Tracking, MetadataOfAnotherVersionIsRefused) {
  db.Text("SELECT syncline_track('notes')");
  db.Exec("UPDATE syncline_meta SET value = '1' WHERE key = 'metadata_version'");
  EXPECT_NE(db.Error("SELECT syncline_pull_since(NULL, 10)").find("metadata version 1; this build reads version 3"),
            std::string::npos);
}

TEST_F(Tracking, WriteWithoutTheExtensionFailsLoudly) {
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 7, 'a', 'b')");
  Db plain(dir.File("a.db"), /*load_extension=*/false);
  EXPECT_NE(plain.Error("INSERT INTO notes VALUES ('n2', 7, 'a', 'b')").find("no such function: syncline_"),
            std::string::npos);
  EXPECT_NE(plain.Error("UPDATE notes SET title = 'x'").find("no such function: syncline_"), std::string::npos);
  EXPECT_NE(plain.Error("DELETE FROM notes").find("no such function: syncline_"), std::string::npos);
  EXPECT_EQ(db.Dump("notes"), "'n1'|7|'a'|'b'");
}

TEST_F(Tracking, UntrackRemovesTriggersAndMetadataButKeepsRows) {
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 7, 'a', 'b')");
  std::string cursor = db.Text("SELECT json_extract(syncline_pull_since(NULL, 10), '$.cursor')");
  EXPECT_EQ(db.Int("SELECT syncline_untrack('notes')"), 1);
  EXPECT_EQ(db.Int("SELECT syncline_untrack('notes')"), 0);
  EXPECT_EQ(db.Int("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"), 0);
  EXPECT_EQ(MetaRows(), 0);
  EXPECT_EQ(db.Dump("notes"), "'n1'|7|'a'|'b'");
  // Versions are never reused: a cursor taken before untrack still sees
  // every change made after tracking again.
  db.Text("SELECT syncline_track('notes')");
  std::string batch = db.Text("SELECT syncline_pull_since(?1, 10)", {cursor});
  EXPECT_EQ(db.Text("SELECT json_array_length(?1, '$.changes')", {batch}), "1");
}

TEST_F(Tracking, InvalidUtf8KeyIsRefusedAtWriteTime) {
  db.Text("SELECT syncline_track('notes')");
  EXPECT_NE(db.Error("INSERT INTO notes VALUES (CAST(X'FF' AS TEXT), 1, 'a', 'b')").find("not valid UTF-8"),
            std::string::npos);
  EXPECT_EQ(db.Int("SELECT count(*) FROM notes"), 0);
}

// The triggers' syncline_key must write exactly the key core::EncodeKey
// writes (pull and apply decode and encode with it): printable ASCII takes a
// shortcut, everything else the escaping writer; both in one key too.
TEST_F(Tracking, CapturedKeysAreTheProtocolsKeyEncoding) {
  db.Exec("CREATE TABLE k(a, b, c, PRIMARY KEY (a, b, c))");
  db.Text("SELECT syncline_track('k')");
  const std::vector<std::vector<core::Value>> keys = {
      {core::Value::Text("0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11"), core::Value::Integer(1), core::Value::Text("x")},
      {core::Value::Text(" ~plain~ "), core::Value::Text("quote\" and \\ back"), core::Value::Text("")},
      {core::Value::Text("line\nbreak\ttab"), core::Value::Text("caf\xc3\xa9 \xe2\x82\xac"),
       core::Value::Text("del\x7f")},
      {core::Value::Integer(-7), core::Value::Real(2.5), core::Value::Blob(std::string("\x00\x01", 2))},
      {core::Value::Real(3.0), core::Value::Text("after a real"), core::Value::Null()},
  };
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db.handle(), "INSERT INTO k VALUES (?1, ?2, ?3)", -1, &insert, nullptr), SQLITE_OK);
  std::string expected;
  for (const auto& key : keys) {
    for (int i = 0; i < 3; ++i) {
      const core::Value& v = key[i];
      switch (v.type) {
        case core::Value::Type::kNull: sqlite3_bind_null(insert, i + 1); break;
        case core::Value::Type::kInteger: sqlite3_bind_int64(insert, i + 1, v.integer); break;
        case core::Value::Type::kReal: sqlite3_bind_double(insert, i + 1, v.real); break;
        case core::Value::Type::kText:
          sqlite3_bind_text(insert, i + 1, v.bytes.data(), static_cast<int>(v.bytes.size()), SQLITE_TRANSIENT);
          break;
        case core::Value::Type::kBlob:
          sqlite3_bind_blob(insert, i + 1, v.bytes.data(), static_cast<int>(v.bytes.size()), SQLITE_TRANSIENT);
          break;
      }
    }
    EXPECT_EQ(sqlite3_step(insert), SQLITE_DONE) << sqlite3_errmsg(db.handle());
    sqlite3_reset(insert);
    std::string encoded;
    ASSERT_TRUE(core::EncodeKey(key, &encoded).ok());
    expected += (expected.empty() ? "" : "\n") + encoded;
  }
  sqlite3_finalize(insert);
  EXPECT_EQ(db.Text("SELECT group_concat(pk, char(10)) FROM (SELECT pk FROM syncline_rows WHERE tid > 0 ORDER BY "
                    "version)"),
            expected);
}

// A row that has no metadata (written while capture was off, e.g. by a user
// trigger during an apply) gets it on its next local write, update or delete:
// the capture upserts rather than assuming the metadata row exists.
TEST_F(Tracking, WritesToRowsWithoutMetadataAreCaptured) {
  db.Text("SELECT syncline_track('notes')");
  db.Exec("INSERT INTO notes VALUES ('n1', 7, 'a', 'b'), ('n2', 7, 'c', 'd')");
  db.Exec("DELETE FROM syncline_rows WHERE tid > 0");
  db.Exec("UPDATE notes SET title = 'x' WHERE id = 'n1'");
  db.Exec("DELETE FROM notes WHERE id = 'n2'");
  EXPECT_EQ(Meta("[\"n1\"]"), "1:0");
  EXPECT_EQ(Meta("[\"n2\"]"), "1:1");
  std::string batch = db.Text("SELECT syncline_pull_since(NULL, 10)");
  EXPECT_EQ(db.Text("SELECT json_extract(?1, '$.changes[0].row.title')", {batch}), "x");
  EXPECT_EQ(db.Text("SELECT json_extract(?1, '$.changes[1].op')", {batch}), "delete");
}

// A version at the greatest stamp (7fffffffffffffff) and clock (2^63 - 1):
// the row's next writes saturate there instead of overflowing (SQLite would
// turn clock + 1 into a real).
TEST_F(Tracking, RowsAtTheTopOfTheStampAndClockRangesStillTakeWrites) {
  db.Text("SELECT syncline_track('notes')");
  db.Exec(
      "INSERT INTO notes VALUES ('n1', 7, 'a', 'b'), ('n2', 7, 'a', 'b'), ('n3', 7, 'a', 'b'), ('n4', 7, 'a', 'b')");
  auto top = [&](const std::string& id) {
    db.Text("UPDATE syncline_rows SET hlc = 9223372036854775807, clock = 9223372036854775807 WHERE pk = ?1",
            {"[\"" + id + "\"]"});
  };
  auto version = [&](const std::string& id) {
    return db.Text("SELECT typeof(clock) || ' ' || clock || ' ' || printf('%016x', hlc) || ' ' || node || ' ' || "
                   "deleted FROM syncline_rows WHERE pk = ?1",
                   {"[\"" + id + "\"]"});
  };
  const std::string at_top = "integer 9223372036854775807 7fffffffffffffff 0 ";

  top("n1");
  db.Exec("UPDATE notes SET title = 'b' WHERE id = 'n1'");
  EXPECT_EQ(version("n1"), at_top + "0");
  std::string batch = db.Text("SELECT syncline_pull_since(NULL, 10)");
  EXPECT_EQ(db.Text("SELECT json_extract(value, '$.hlc') || ' ' || json_extract(value, '$.clock') || ' ' || "
                    "json_extract(value, '$.row.title') FROM json_each(?1, '$.changes') WHERE "
                    "json_extract(value, '$.pk.id') = 'n1'",
                    {batch}),
            "7fffffffffffffff 9223372036854775807 b");

  top("n2");
  db.Exec("DELETE FROM notes WHERE id = 'n2'");
  EXPECT_EQ(version("n2"), at_top + "1");
  db.Exec("INSERT INTO notes VALUES ('n2', 7, 'back', 'b')");
  EXPECT_EQ(version("n2"), at_top + "0");

  top("n3");
  db.Exec("UPDATE notes SET id = 'n5' WHERE id = 'n3'");  // a key change: a tombstone for the old key
  EXPECT_EQ(version("n3"), at_top + "1");

  // A row the metadata holds as deleted exists again (written without
  // capture): tracking again makes it a new local version.
  db.Exec("UPDATE syncline_rows SET deleted = 1 WHERE pk = '[\"n4\"]'");
  top("n4");
  db.Text("SELECT syncline_track('notes')");
  EXPECT_EQ(version("n4"), at_top + "0");

  // The connection's clock, at the top now, stays there.
  db.Exec("INSERT INTO notes VALUES ('n6', 7, 'new', 'b')");
  EXPECT_EQ(version("n6"), "integer 1 7fffffffffffffff 0 0");
}

TEST_F(Tracking, RollbackUndoesCapture) {
  db.Text("SELECT syncline_track('notes')");
  db.Exec("BEGIN; INSERT INTO notes VALUES ('n1', 7, 'a', 'b'); ROLLBACK;");
  EXPECT_EQ(MetaRows(), 0);
}

}  // namespace
}  // namespace syncline::test
