// Tombstone garbage collection (syncline_gc), the horizon it sets for pulls,
// and the resync a device runs against its server (syncline_resync_begin,
// apply_push's "resync" option, syncline_resync_end), between real files.
#include <set>

#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

constexpr const char* kNotes = "CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT)";
constexpr const char* kLocal = "{\"origin\":\"local\"}";

std::string Field(Db& db, const std::string& json, const std::string& path) {
  return db.Text("SELECT json_extract(?1, ?2)", {json, path});
}

// The ids a batch carries, sorted, e.g. "a,b".
std::string Ids(Db& db, const std::string& batch) {
  return db.Text("SELECT coalesce(group_concat(id, ','), '') FROM (SELECT json_extract(value, '$.pk.id') AS id "
                 "FROM json_each(?1, '$.changes') ORDER BY id)",
                 {batch});
}

// The metadata of notes as "id:deleted" pairs, sorted by id.
std::string Metadata(Db& db) {
  return db.Text("SELECT coalesce(group_concat(id || ':' || deleted, ','), '') FROM (SELECT json_extract(pk, '$[0]') "
                 "AS id, deleted FROM syncline_rows WHERE tid > 0 ORDER BY id)");
}

std::string Rows(Db& db) {
  return db.Text("SELECT coalesce(group_concat(id, ','), '') FROM (SELECT id FROM notes ORDER BY id)");
}

class GcTest : public ::testing::Test {
 protected:
  TempDir dir;
  Db db{dir.File("gc.db")};

  void SetUp() override {
    db.Exec(kNotes);
    db.Text("SELECT syncline_track('notes')");
  }
  std::string Gc(long long through) {
    return db.Text("SELECT syncline_gc(?1)", {"{\"through\":" + std::to_string(through) + "}"});
  }
  long long Highest() { return db.Int("SELECT max(version) FROM syncline_rows"); }
  long long VersionOf(const std::string& id) {
    return std::stoll(db.Text("SELECT version FROM syncline_rows WHERE pk = json_array(?1)", {id}));
  }
};

TEST_F(GcTest, CollectsExactlyTheTombstonesThroughTheVersion) {
  db.Exec("INSERT INTO notes VALUES ('a', 'x'), ('b', 'x'), ('c', 'x'), ('d', 'x')");
  db.Exec("DELETE FROM notes WHERE id = 'a'");
  long long first_tombstone = VersionOf("a");
  db.Exec("DELETE FROM notes WHERE id = 'b'");
  db.Exec("UPDATE notes SET title = 'y' WHERE id = 'c'");  // live, above both tombstones
  EXPECT_EQ(Gc(first_tombstone), "{\"collected\":1,\"horizon\":" + std::to_string(first_tombstone) + "}");
  EXPECT_EQ(Metadata(db), "b:1,c:0,d:0");
  const long long second_tombstone = VersionOf("b");
  EXPECT_EQ(Gc(1000), "{\"collected\":1,\"horizon\":" + std::to_string(second_tombstone) + "}");
  EXPECT_EQ(Metadata(db), "c:0,d:0");
  EXPECT_EQ(Rows(db), "c,d");
  // The horizon never moves back.
  EXPECT_EQ(Gc(0), "{\"collected\":0,\"horizon\":" + std::to_string(second_tombstone) + "}");
  EXPECT_EQ(db.Text("SELECT value FROM syncline_meta WHERE key = 'gc_horizon'"), std::to_string(second_tombstone));
}

TEST_F(GcTest, VersionsAreNeverReusedAfterCollectingTheHighest) {
  db.Exec("INSERT INTO notes VALUES ('a', 'x'), ('b', 'x')");
  db.Exec("DELETE FROM notes WHERE id = 'b'");
  const long long old_max = Highest();
  std::string full = db.Text("SELECT syncline_pull_since(NULL, 100)");
  std::string cursor = Field(db, full, "$.cursor");
  EXPECT_EQ(Gc(old_max), "{\"collected\":1,\"horizon\":" + std::to_string(old_max) + "}");
  EXPECT_EQ(Highest(), old_max);  // the sentinel keeps it
  db.Exec("INSERT INTO notes VALUES ('c', 'x')");
  EXPECT_GT(VersionOf("c"), old_max);
  // A reader at the old end (which saw the tombstone) still gets the write.
  std::string next = db.Text("SELECT syncline_pull_since(?1, 100)", {cursor});
  EXPECT_EQ(Ids(db, next), "c");
}

TEST_F(GcTest, CursorBelowTheHorizonMustResync) {
  db.Exec("INSERT INTO notes VALUES ('a', 'x'), ('b', 'x')");
  std::string early = Field(db, db.Text("SELECT syncline_pull_since(NULL, 1)"), "$.cursor");
  db.Exec("DELETE FROM notes WHERE id = 'a'");
  const long long tombstone = VersionOf("a");
  std::string at_horizon = Field(db, db.Text("SELECT syncline_pull_since(NULL, 100)"), "$.cursor");
  Gc(tombstone);
  std::string error = db.Error("SELECT syncline_pull_since(?1, 100)", {early});
  EXPECT_NE(error.find("syncline_pull_since: cursor position 1 is older than this database's garbage collection "
                       "horizon (" +
                       std::to_string(tombstone) + ")"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("resync"), std::string::npos) << error;
  EXPECT_NE(error.find("hint: Resync: push local changes"), std::string::npos) << error;
  // A full pull, and a cursor that saw every collected tombstone, are fine.
  EXPECT_EQ(Ids(db, db.Text("SELECT syncline_pull_since(NULL, 100)")), "b");
  EXPECT_EQ(Ids(db, db.Text("SELECT syncline_pull_since(?1, 100)", {at_horizon})), "");
}

// Pages of a full pull that began after a collection stop below the
// horizon; their cursors carry it, as their reader never saw the deleted
// rows. A collection between two pages does concern the reader.
TEST_F(GcTest, FullPullPagesGoOnPastTheHorizonUntilTheNextCollection) {
  db.Exec("INSERT INTO notes VALUES ('a', 'x'), ('b', 'x'), ('c', 'x'), ('d', 'x')");
  db.Exec("DELETE FROM notes WHERE id = 'd'");
  Gc(Highest());
  db.Exec("INSERT INTO notes VALUES ('e', 'x')");
  std::string ids;
  std::string page = db.Text("SELECT syncline_pull_since(NULL, 2)");
  std::string cursor = Field(db, page, "$.cursor");
  EXPECT_EQ(cursor.substr(cursor.rfind(':') + 1), "2." + std::to_string(Highest() - 1));  // a, b; d at 5
  ids += Ids(db, page);
  for (bool more = true; more;) {
    page = db.Text("SELECT syncline_pull_since(?1, 2)", {cursor});
    ids += "," + Ids(db, page);
    cursor = Field(db, page, "$.cursor");
    more = Field(db, page, "$.has_more") == "1";
  }
  EXPECT_EQ(ids, "a,b,c,e");

  std::string first = Field(db, db.Text("SELECT syncline_pull_since(NULL, 2)"), "$.cursor");
  db.Exec("DELETE FROM notes WHERE id = 'c'");
  Gc(Highest());
  EXPECT_NE(db.Error("SELECT syncline_pull_since(?1, 2)", {first}).find("garbage collection horizon"),
            std::string::npos);
}

TEST_F(GcTest, OptionsAreChecked) {
  EXPECT_NE(db.Error("SELECT syncline_gc()").find("\"through\""), std::string::npos);
  EXPECT_NE(db.Error("SELECT syncline_gc('{}')").find("\"through\""), std::string::npos);
  EXPECT_NE(db.Error("SELECT syncline_gc('{\"through\":-1}')").find("integer >= 0"), std::string::npos);
  EXPECT_NE(db.Error("SELECT syncline_gc('{\"through\":\"5\"}')").find("integer >= 0"), std::string::npos);
  EXPECT_NE(db.Error("SELECT syncline_gc('{\"through\":1,\"all\":true}')").find("unknown option \"all\""),
            std::string::npos);
  EXPECT_NE(db.Error("SELECT syncline_gc('[1]')").find("JSON object"), std::string::npos);
}

// A device and its "server" (another file whose pulls stand in for the
// server's pages): the device resyncs from a full pull of the server.
class ResyncTest : public ::testing::Test {
 protected:
  TempDir dir;
  Db server{dir.File("server.db")};
  Db device{dir.File("device.db")};

  void SetUp() override {
    device.Exec("PRAGMA journal_mode = WAL");
    for (Db* db : {&server, &device}) {
      db->Exec(kNotes);
      db->Text("SELECT syncline_track('notes')");
    }
  }

  // Applies every page of a pull of the server from `cursor` to the device.
  void Pull(const std::string& options, const std::string& cursor = "") {
    std::string position = cursor;
    for (bool more = true; more;) {
      std::string page = position.empty() ? server.Text("SELECT syncline_pull_since(NULL, 2)")
                                          : server.Text("SELECT syncline_pull_since(?1, 2)", {position});
      device.Text("SELECT syncline_apply_push(?1, ?2)", {page, options});
      position = Field(server, page, "$.cursor");
      more = Field(server, page, "$.has_more") == "1";
    }
  }

  // Pushes the device's local changes to the server; returns the cursor of
  // that local pull (what the server acknowledged).
  std::string Push() {
    std::string batch = device.Text("SELECT syncline_pull_since(NULL, 1000, ?1)", {kLocal});
    server.Text("SELECT syncline_apply_push(?1)", {batch});
    return Field(device, batch, "$.cursor");
  }

  // A resync in one transaction, from no acknowledged cursor.
  std::string Resync() {
    device.Exec("BEGIN IMMEDIATE");
    device.Text("SELECT syncline_resync_begin(NULL)");
    Pull("{\"from_server\":true,\"resync\":true}");
    std::string result = device.Text("SELECT syncline_resync_end()");
    device.Exec("COMMIT");
    return result;
  }
};

TEST_F(ResyncTest, RemovesWhatTheServerNoLongerHasAndKeepsTheRest) {
  server.Exec("INSERT INTO notes VALUES ('gone', 's'), ('kept', 's'), ('deleted', 's'), ('older', 's')");
  Pull("{\"from_server\":true}");
  device.Exec("INSERT INTO notes VALUES ('pushed', 'd')");
  const std::string acked = Push();
  // Acknowledged by the cursor but never reaching the server's copy: the
  // server's page carries an older version, which the device skips.
  device.Exec("UPDATE notes SET title = 'newer here' WHERE id = 'older'");
  const std::string acked_later =
      Field(device, device.Text("SELECT syncline_pull_since(?1, 100, ?2)", {acked, kLocal}), "$.cursor");
  device.Exec("INSERT INTO notes VALUES ('unacked', 'd')");
  // The server deletes two rows and collects one tombstone.
  server.Exec("DELETE FROM notes WHERE id = 'gone'");
  server.Text("SELECT syncline_gc(?1)",
              {"{\"through\":" + server.Text("SELECT max(version) FROM syncline_rows") + "}"});
  server.Exec("DELETE FROM notes WHERE id = 'deleted'");

  device.Exec("BEGIN IMMEDIATE");
  // Candidates: every row but the unacknowledged local one.
  EXPECT_EQ(device.Int("SELECT syncline_resync_begin('" + acked_later + "')"), 5);
  Db reader{dir.File("device.db")};
  Pull("{\"from_server\":true,\"resync\":true}");
  const long long highest = device.Int("SELECT max(version) FROM syncline_rows");
  EXPECT_EQ(device.Text("SELECT syncline_resync_end()"), "{\"removed\":1,\"rows_deleted\":1}");
  // The removal takes no local version (the high-water mark stays).
  EXPECT_EQ(device.Int("SELECT max(version) FROM syncline_rows"), highest);
  // Another connection sees the old state until the commit.
  EXPECT_EQ(Rows(reader), "deleted,gone,kept,older,pushed,unacked");
  device.Exec("COMMIT");
  EXPECT_EQ(Rows(reader), "kept,older,pushed,unacked");

  EXPECT_EQ(Metadata(device), "deleted:1,kept:0,older:0,pushed:0,unacked:0");
  EXPECT_EQ(device.Text("SELECT title FROM notes WHERE id = 'older'"), "newer here");
  // Nothing of the removal is a local change: the push queue holds the
  // unacknowledged row alone, and the high-water mark keeps versions unique.
  EXPECT_EQ(Ids(device, device.Text("SELECT syncline_pull_since(?1, 100, ?2)", {acked_later, kLocal})), "unacked");
  EXPECT_EQ(device.Int("SELECT count(*) FROM temp.sqlite_schema WHERE name = 'syncline_resync'"), 0);
}

TEST_F(ResyncTest, WithoutAnAcknowledgedCursorEveryLocalRowStays) {
  server.Exec("INSERT INTO notes VALUES ('s1', 's')");
  Pull("{\"from_server\":true}");
  device.Exec("INSERT INTO notes VALUES ('d1', 'd')");
  server.Exec("DELETE FROM notes WHERE id = 's1'");
  server.Text("SELECT syncline_gc('{\"through\":1000}')");
  device.Exec("BEGIN IMMEDIATE");
  EXPECT_EQ(device.Int("SELECT syncline_resync_begin(NULL)"), 1);
  device.Exec("COMMIT");  // the resync goes on in the next transaction
  device.Exec("BEGIN");
  Pull("{\"from_server\":true,\"resync\":true}");
  EXPECT_EQ(device.Text("SELECT syncline_resync_end()"), "{\"removed\":1,\"rows_deleted\":1}");
  device.Exec("COMMIT");
  EXPECT_EQ(Rows(device), "d1");
  EXPECT_EQ(Metadata(device), "d1:0");
}

TEST_F(ResyncTest, TombstonesTheServerCollectedLeaveTheMetadata) {
  server.Exec("INSERT INTO notes VALUES ('a', 's'), ('b', 's')");
  Pull("{\"from_server\":true}");
  server.Exec("DELETE FROM notes WHERE id = 'a'");
  Pull("{\"from_server\":true}");
  EXPECT_EQ(Metadata(device), "a:1,b:0");
  server.Text("SELECT syncline_gc('{\"through\":1000}')");
  const long long highest = device.Int("SELECT max(version) FROM syncline_rows");
  EXPECT_EQ(Resync(), "{\"removed\":1,\"rows_deleted\":0}");
  EXPECT_EQ(Metadata(device), "b:0");
  EXPECT_EQ(device.Int("SELECT max(version) FROM syncline_rows"), highest);  // sentinel
}

TEST_F(ResyncTest, RollbackUndoesTheWholeResync) {
  server.Exec("INSERT INTO notes VALUES ('a', 's')");
  Pull("{\"from_server\":true}");
  server.Exec("DELETE FROM notes WHERE id = 'a'");
  server.Text("SELECT syncline_gc('{\"through\":1000}')");
  device.Exec("BEGIN IMMEDIATE");
  device.Text("SELECT syncline_resync_begin(NULL)");
  Pull("{\"from_server\":true,\"resync\":true}");
  device.Text("SELECT syncline_resync_end()");
  device.Exec("ROLLBACK");
  EXPECT_EQ(Rows(device), "a");
  EXPECT_EQ(Metadata(device), "a:0");
  EXPECT_NE(device.Error("SELECT syncline_resync_end()").find("no resync in progress"), std::string::npos);
}

TEST_F(ResyncTest, ErrorsAreClear) {
  std::string page = server.Text("SELECT syncline_pull_since(NULL, 10)");
  auto apply_error = [&](const std::string& options) {
    return device.Error("SELECT syncline_apply_push(?1, ?2)", {page, options});
  };
  EXPECT_NE(apply_error("{\"from_server\":true,\"resync\":true}").find("no resync in progress"), std::string::npos);
  EXPECT_NE(apply_error("{\"resync\":true}").find("\"resync\" needs \"from_server\": true"), std::string::npos);
  EXPECT_NE(apply_error("{\"resynk\":true}").find("unknown option \"resynk\" (known: \"from_server\", \"resync\")"),
            std::string::npos);
  EXPECT_NE(apply_error("{\"from_server\":true,\"resync\":1}").find("\"resync\" must be true or false"),
            std::string::npos);
  EXPECT_EQ(device.Error("SELECT syncline_resync_end()"),
            "syncline_resync_end: no resync in progress (call syncline_resync_begin first)");
  EXPECT_NE(device.Error("SELECT syncline_resync_begin(1)").find("acked_cursor must be text or NULL"),
            std::string::npos);
  // A cursor of another pull filter, or of another file, is refused.
  device.Exec("INSERT INTO notes VALUES ('x', 'd')");
  std::string all = Field(device, device.Text("SELECT syncline_pull_since(NULL, 10)"), "$.cursor");
  EXPECT_NE(device.Error("SELECT syncline_resync_begin(?1)", {all}).find("syncline_resync_begin: acked_cursor"),
            std::string::npos);
  std::string foreign = Field(server, server.Text("SELECT syncline_pull_since(NULL, 10, ?1)", {kLocal}), "$.cursor");
  EXPECT_NE(device.Error("SELECT syncline_resync_begin(?1)", {foreign}).find("acked_cursor"), std::string::npos);
  device.Exec("BEGIN");
  EXPECT_EQ(device.Text("SELECT syncline_resync_begin(NULL)"), "0");
  EXPECT_NE(device.Error("SELECT syncline_resync_begin(NULL)").find("already in progress"), std::string::npos);
  device.Exec("ROLLBACK");
}

}  // namespace
}  // namespace syncline::test
