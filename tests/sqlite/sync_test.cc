// pull_since and apply_push between real SQLite files: paging, the conflict
// rule, idempotence, relays, cursors and atomic rejection of bad batches.
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "core/hlc.h"
#include "core/node_id.h"
#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

constexpr const char* kNotes = "CREATE TABLE notes(id TEXT PRIMARY KEY, org_id INTEGER, title TEXT, body TEXT)";

std::string Hlc(long long offset_ms, int logical = 0) {
  return core::HlcToText(core::HlcFromPhysicalMs(core::WallClockMs() + offset_ms) + logical);
}

// One change of a hand-made batch.
std::string Upsert(const std::string& id, const std::string& title, const std::string& hlc, const std::string& node,
                   const std::string& table = "notes") {
  return R"({"table":")" + table + R"(","op":"upsert","pk":{"id":")" + id + R"("},"row":{"id":")" + id +
         R"(","org_id":1,"title":")" + title + R"(","body":"b"},"clock":1,"hlc":")" + hlc + R"(","node":")" + node +
         R"("})";
}

std::string Delete(const std::string& id, const std::string& hlc, const std::string& node) {
  return R"({"table":"notes","op":"delete","pk":{"id":")" + id + R"("},"clock":2,"hlc":")" + hlc + R"(","node":")" +
         node + R"("})";
}

std::string Batch(const std::string& source, const std::vector<std::string>& changes) {
  std::string list;
  for (const auto& change : changes)
    list += (list.empty() ? "" : ",") + change;
  return R"({"format":1,"source":")" + source + R"(","changes":[)" + list + "]}";
}

class SyncTest : public ::testing::Test {
 protected:
  TempDir dir;
  Db a{dir.File("a.db")};
  Db b{dir.File("b.db")};
  std::string remote = core::NewNodeId();

  void SetUp() override {
    for (Db* db : {&a, &b}) {
      db->Exec(kNotes);
      db->Text("SELECT syncline_track('notes')");
    }
  }
  std::string Apply(Db& db, const std::string& batch) { return db.Text("SELECT syncline_apply_push(?1)", {batch}); }
  std::string ApplyError(Db& db, const std::string& batch) {
    return db.Error("SELECT syncline_apply_push(?1)", {batch});
  }
  std::string Title(Db& db, const std::string& id) {
    return db.Text("SELECT coalesce((SELECT title FROM notes WHERE id = ?1), 'gone')", {id});
  }
  // Everything apply_push may write, to prove a rejected batch wrote nothing.
  std::string State(Db& db) {
    return db.Dump("notes") + "#" +
           db.Text("SELECT group_concat(version || pk || clock || hlc || node || deleted) FROM syncline_rows") + "#" +
           db.Text("SELECT group_concat(node_id || cursor) FROM syncline_peers") + "#" +
           db.Text("SELECT group_concat(node_id) FROM syncline_nodes");
  }
};

TEST_F(SyncTest, PullPagesNeverSkipOrRepeatAChange) {
  a.Exec("BEGIN");
  for (int i = 0; i < 250; ++i)
    a.Exec("INSERT INTO notes VALUES ('n" + std::to_string(i) + "', 1, 't', 'b')");
  a.Exec("COMMIT");
  std::set<std::string> seen;  // (pk, hlc): one version of one row
  std::string cursor;
  int pages = 0;
  for (bool more = true; more; ++pages) {
    std::string batch = cursor.empty() ? a.Text("SELECT syncline_pull_since(NULL, 40)")
                                       : a.Text("SELECT syncline_pull_since(?1, 40)", {cursor});
    long long count = a.Int("SELECT json_array_length(json_extract('" + batch + "', '$.changes'))");
    for (long long i = 0; i < count; ++i) {
      std::string path = "$.changes[" + std::to_string(i) + "]";
      std::string id = a.Text("SELECT json_extract(?1, ?2)", {batch, path + ".pk.id"});
      std::string hlc = a.Text("SELECT json_extract(?1, ?2)", {batch, path + ".hlc"});
      EXPECT_TRUE(seen.insert(id + "@" + hlc).second) << "repeated " << id;
    }
    cursor = a.Text("SELECT json_extract(?1, '$.cursor')", {batch});
    more = a.Text("SELECT json_extract(?1, '$.has_more')", {batch}) == "1";
    // Writes between pages: rows already pulled come again (a new version),
    // rows not yet pulled come once with their latest version.
    if (pages == 1) a.Exec("UPDATE notes SET title = 'late' WHERE id IN ('n0', 'n200')");
  }
  EXPECT_EQ(seen.size(), 251u);  // 250 inserts, plus n0's later version
  EXPECT_EQ(pages, 7);
  // A pull from the final cursor is empty and keeps the cursor.
  std::string last = a.Text("SELECT syncline_pull_since(?1, 40)", {cursor});
  EXPECT_EQ(a.Text("SELECT json_array_length(?1, '$.changes')", {last}), "0");
  EXPECT_EQ(a.Text("SELECT json_extract(?1, '$.cursor')", {last}), cursor);
}

TEST_F(SyncTest, AppliedChangesKeepOriginAndAreNotRecaptured) {
  a.Exec("INSERT INTO notes VALUES ('n1', 1, 'from a', 'b')");
  EXPECT_EQ(Sync(a, b), 1);
  EXPECT_EQ(b.Dump("notes"), a.Dump("notes"));
  // b's own push queue stays empty: the change is a's.
  std::string local = b.Text("SELECT syncline_pull_since(NULL, 10, '{\"origin\":\"local\"}')");
  EXPECT_EQ(b.Text("SELECT json_array_length(?1, '$.changes')", {local}), "0");
  // But b relays it, with a's node, clock and stamp.
  std::string all = b.Text("SELECT syncline_pull_since(NULL, 10)");
  std::string original = a.Text("SELECT syncline_pull_since(NULL, 10)");
  for (const char* field : {"node", "hlc", "clock", "row"}) {
    std::string path = std::string("$.changes[0].") + field;
    EXPECT_EQ(b.Text("SELECT json_extract(?1, ?2)", {all, path}),
              a.Text("SELECT json_extract(?1, ?2)", {original, path}));
  }
  // No echo: pulling from b excluding a yields nothing.
  EXPECT_EQ(Sync(b, a), 0);
}

// A key of one UUID text column is kept as a 17-byte blob (a tag for the
// letters' case and the 16 bytes); other keys as their protocol text. Capture
// (syncline_key) and apply must write the same key, or a row would get two
// metadata rows; a pull must give the key back exactly as written.
TEST_F(SyncTest, UuidKeysAreStoredCompactlyAndRoundTrip) {
  const std::vector<std::pair<std::string, std::string>> keys = {
      // id, how its metadata key is stored: typeof/length/hex prefix
      {"0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11", "blob/17/010B6F6F2E6A864C1C9D1E5A2F9A0D7C11"},
      {"0B6F6F2E-6A86-4C1C-9D1E-5A2F9A0D7C11", "blob/17/020B6F6F2E6A864C1C9D1E5A2F9A0D7C11"},
      {"12345678-1234-1234-1234-123456789012", "blob/17/0112345678123412341234123456789012"},
      {"0b6f6f2e-6a86-4c1c-9d1e-5A2F9A0D7C11", "text/40/"},   // mixed case
      {"0b6f6f2e-6a86-4c1c-9d1e5-a2f9a0d7c11", "text/40/"},   // a hyphen out of place
      {"0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c1g", "text/40/"},   // not hex
      {"0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c111", "text/41/"},  // too long
  };
  for (const auto& [id, stored] : keys)
    a.Exec("INSERT INTO notes VALUES ('" + id + "', 1, 'from a', 'b')");
  for (const auto& [id, stored] : keys) {
    std::string pk = "syncline_key(" + std::string("'") + id + "')";
    EXPECT_EQ(a.Text("SELECT typeof(pk) || '/' || length(CAST(pk AS BLOB)) || '/' || CASE typeof(pk) WHEN 'blob' THEN "
                     "hex(pk) ELSE '' END FROM syncline_rows WHERE tid > 0 AND pk = " +
                     pk),
              stored)
        << id;
  }
  // The pull gives each key back as it was written; apply stores the same
  // metadata keys as capture did, so re-applying skips everything and b's
  // own writes to the rows update their one metadata row.
  std::string batch = a.Text("SELECT syncline_pull_since(NULL, 100)");
  for (std::size_t i = 0; i < keys.size(); ++i)
    EXPECT_EQ(a.Text("SELECT json_extract(?1, ?2)", {batch, "$.changes[" + std::to_string(i) + "].pk.id"}),
              keys[i].first);
  EXPECT_EQ(b.Text("SELECT json_extract(?1, '$.applied')", {Apply(b, batch)}), std::to_string(keys.size()));
  EXPECT_EQ(b.Dump("notes"), a.Dump("notes"));
  std::string keys_in = "SELECT group_concat(hex(pk), ' ') FROM (SELECT pk FROM syncline_rows WHERE tid > 0 ORDER BY "
                        "hex(pk))";
  EXPECT_EQ(b.Text(keys_in), a.Text(keys_in));
  EXPECT_EQ(b.Text("SELECT json_extract(?1, '$.skipped')", {Apply(b, batch)}), std::to_string(keys.size()));
  b.Exec("UPDATE notes SET title = 'from b'");
  b.Exec("DELETE FROM notes WHERE id = '" + keys[0].first + "'");
  EXPECT_EQ(b.Int("SELECT count(*) FROM syncline_rows WHERE tid > 0"), static_cast<long long>(keys.size()));
  EXPECT_EQ(b.Int("SELECT count(*) FROM syncline_rows WHERE tid > 0 AND node = 0"),
            static_cast<long long>(keys.size()));
  EXPECT_EQ(Sync(b, a), static_cast<long long>(keys.size()));
  EXPECT_EQ(a.Dump("notes"), b.Dump("notes"));
  EXPECT_EQ(Title(a, keys[0].first), "gone");
}

// INSERT OR REPLACE that removes a row through a secondary UNIQUE key: the
// tombstone must come before the upsert in the version order, or a peer
// applying the batch would insert the new row while the old one still holds
// the UNIQUE value, and reject the batch.
TEST_F(SyncTest, ReplaceThroughASecondaryKeySyncsInOrder) {
  for (Db* db : {&a, &b}) {
    db->Exec("CREATE TABLE users(id TEXT PRIMARY KEY, email TEXT UNIQUE)");
    db->Text("SELECT syncline_track('users')");
  }
  a.Exec("INSERT INTO users VALUES ('u1', 'a@x')");
  EXPECT_EQ(Sync(a, b), 1);
  a.Exec("INSERT OR REPLACE INTO users VALUES ('u2', 'a@x')");
  EXPECT_EQ(Sync(a, b), 2);
  EXPECT_EQ(b.Dump("users"), "'u2'|'a@x'");
  a.Exec("INSERT INTO users VALUES ('u3', 'c@x')");
  EXPECT_EQ(Sync(a, b), 1);
  a.Exec("UPDATE OR REPLACE users SET email = 'c@x' WHERE id = 'u2'");
  EXPECT_EQ(Sync(a, b), 2);
  EXPECT_EQ(b.Dump("users"), "'u2'|'c@x'");
}

TEST_F(SyncTest, ApplyingTheSameBatchTwiceChangesNothing) {
  a.Exec("INSERT INTO notes VALUES ('n1', 1, 't', 'b'), ('n2', 2, 't', 'b'); DELETE FROM notes WHERE id = 'n2';");
  std::string batch = a.Text("SELECT syncline_pull_since(NULL, 10)");
  EXPECT_EQ(b.Text("SELECT json_extract(?1, '$.applied')", {Apply(b, batch)}), "2");
  std::string before = State(b);
  std::string again = Apply(b, batch);
  EXPECT_EQ(b.Text("SELECT json_extract(?1, '$.applied') || '/' || json_extract(?1, '$.skipped')", {again}), "0/2");
  EXPECT_EQ(State(b), before);
}

TEST_F(SyncTest, LastWriterWinsByStamp) {
  a.Exec("INSERT INTO notes VALUES ('n1', 1, 'local', 'b')");
  // An older remote edit loses; a newer one wins.
  Apply(a, Batch(remote, {Upsert("n1", "older", Hlc(-60000), remote)}));
  EXPECT_EQ(Title(a, "n1"), "local");
  const std::string ahead = Hlc(60000);
  Apply(a, Batch(remote, {Upsert("n1", "newer", ahead, remote)}));
  EXPECT_EQ(Title(a, "n1"), "newer");
  // A local edit made after receiving that stamp beats it, whatever the wall
  // clock says.
  a.Exec("UPDATE notes SET title = 'edited' WHERE id = 'n1'");
  EXPECT_GT(a.Text("SELECT printf('%016x', hlc) FROM syncline_rows WHERE pk = '[\"n1\"]'"), ahead);
  std::string batch = a.Text("SELECT syncline_pull_since(NULL, 10)");
  Apply(b, Batch(remote, {Upsert("n1", "newer", ahead, remote)}));
  Apply(b, batch);
  EXPECT_EQ(Title(b, "n1"), "edited");
}

TEST_F(SyncTest, EqualTimesAreOrderedByNodeId) {
  std::string low = "00000000-0000-4000-8000-000000000000";
  std::string high = "ffffffff-ffff-4fff-bfff-ffffffffffff";
  std::string hlc = Hlc(0);
  Apply(a, Batch(low, {Upsert("n1", "low", hlc, low)}));
  Apply(a, Batch(high, {Upsert("n1", "high", hlc, high)}));
  Apply(b, Batch(high, {Upsert("n1", "high", hlc, high)}));
  Apply(b, Batch(low, {Upsert("n1", "low", hlc, low)}));
  EXPECT_EQ(Title(a, "n1"), "high");
  EXPECT_EQ(Title(b, "n1"), "high");
  // Node ids compare in canonical (lower-case) form whatever the batch used.
  std::string upper = "FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF";
  std::string result = Apply(a, Batch(upper, {Upsert("n1", "high", hlc, upper)}));
  EXPECT_EQ(a.Text("SELECT json_extract(?1, '$.skipped')", {result}), "1");
}

TEST_F(SyncTest, DeletesBeatOlderEditsAndLaterEditsResurrect) {
  Apply(a, Batch(remote, {Upsert("n1", "v1", Hlc(-3000), remote), Delete("n1", Hlc(-2000), remote)}));
  EXPECT_EQ(Title(a, "n1"), "gone");
  Apply(a, Batch(remote, {Upsert("n1", "older edit", Hlc(-2500), remote)}));
  EXPECT_EQ(Title(a, "n1"), "gone");
  Apply(a, Batch(remote, {Upsert("n1", "later edit", Hlc(-1000), remote)}));
  EXPECT_EQ(Title(a, "n1"), "later edit");
}

TEST_F(SyncTest, TombstonesOfUnseenRowsStopLateUpserts) {
  // b never had n7, but keeps the tombstone...
  Apply(b, Batch(remote, {Delete("n7", Hlc(-1000), remote)}));
  EXPECT_EQ(b.Int("SELECT deleted FROM syncline_rows WHERE pk = '[\"n7\"]'"), 1);
  // ...so the late, older upsert does not bring it back.
  Apply(b, Batch(remote, {Upsert("n7", "late", Hlc(-5000), remote)}));
  EXPECT_EQ(Title(b, "n7"), "gone");
  // A local insert of that key stamps above the tombstone, so it wins.
  std::string future_node = core::NewNodeId();
  Apply(b, Batch(future_node, {Delete("n8", Hlc(120000), future_node)}));
  b.Exec("INSERT INTO notes VALUES ('n8', 1, 'mine', 'b')");
  Sync(b, a);
  EXPECT_EQ(Title(a, "n8"), "mine");
}

TEST_F(SyncTest, SeveralVersionsOfOneRowInOneBatch) {
  // One stamp for both copies of v2 (two calls may fall in two milliseconds).
  const std::string v2 = Hlc(-1000);
  std::string result = Apply(a, Batch(remote, {Upsert("n1", "v2", v2, remote), Upsert("n1", "v1", Hlc(-2000), remote),
                                               Upsert("n1", "v2", v2, remote)}));
  EXPECT_EQ(a.Text("SELECT json_extract(?1, '$.applied') || '/' || json_extract(?1, '$.skipped')", {result}), "1/2");
  EXPECT_EQ(Title(a, "n1"), "v2");
  // Equal stamps with different content: a corrupt batch, rejected whole.
  std::string before = State(b);
  std::string hlc = Hlc(-1000);
  std::string error =
      ApplyError(b, Batch(remote, {Upsert("n2", "x", Hlc(-3000), remote), Upsert("n1", "v2", hlc, remote),
                                   Upsert("n1", "other", hlc, remote)}));
  EXPECT_NE(error.find("change 2 (table \"notes\"): stamp"), std::string::npos) << error;
  EXPECT_NE(error.find("different content"), std::string::npos) << error;
  EXPECT_EQ(State(b), before);
}

TEST_F(SyncTest, DriftBoundAppliesWhereAChangeEntersFromItsOrigin) {
  std::string far = Hlc(10 * 60 * 1000);
  std::string error = ApplyError(a, Batch(remote, {Upsert("n1", "future", far, remote)}));
  EXPECT_NE(error.find("ahead of this node's clock"), std::string::npos) << error;
  EXPECT_EQ(Title(a, "n1"), "gone");
  // Relayed by a third node, the same change passes: its origin was checked
  // at the first hop.
  std::string relay = core::NewNodeId();
  Apply(a, Batch(relay, {Upsert("n1", "future", far, remote)}));
  EXPECT_EQ(Title(a, "n1"), "future");
  // The bound is configurable.
  EXPECT_EQ(b.Int("SELECT syncline_config('max_drift_ms', 900000)"), 900000);
  Apply(b, Batch(remote, {Upsert("n1", "future", far, remote)}));
  EXPECT_EQ(Title(b, "n1"), "future");
}

TEST_F(SyncTest, ReceivedStampsAdvanceTheClock) {
  const std::string ahead = Hlc(90000);
  Apply(a, Batch(remote, {Upsert("n1", "x", ahead, remote)}));
  EXPECT_GT(a.Text("SELECT syncline_hlc_now()"), ahead);
  // The clock is saved with the apply: a new connection starts past it.
  Db again(dir.File("a.db"));
  EXPECT_GT(again.Text("SELECT syncline_hlc_now()"), ahead);
  std::string first = again.Text("SELECT syncline_hlc_now()");
  EXPECT_LT(first, again.Text("SELECT syncline_hlc_now()"));
}

TEST_F(SyncTest, SameIntegerKeyFromTwoOfflineNodesIsOneRow) {
  // Why client-made keys should be UUIDs: integer keys collide, and the later
  // insert silently wins.
  for (Db* db : {&a, &b}) {
    db->Exec("CREATE TABLE todo(id INTEGER PRIMARY KEY, what TEXT)");
    db->Text("SELECT syncline_track('todo')");
  }
  a.Exec("INSERT INTO todo(what) VALUES ('buy milk')");
  // Within one millisecond the node ids would order the two stamps; wait so
  // that b's insert is later in time too.
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  b.Exec("INSERT INTO todo(what) VALUES ('call mum')");
  Sync(a, b);
  Sync(b, a);
  EXPECT_EQ(a.Dump("todo"), "1|'call mum'");
  EXPECT_EQ(b.Dump("todo"), "1|'call mum'");
}

TEST_F(SyncTest, RelayThroughAThirdNode) {
  Db c(dir.File("c.db"));
  c.Exec(kNotes);
  c.Text("SELECT syncline_track('notes')");
  a.Exec("INSERT INTO notes VALUES ('n1', 1, 'a wrote', 'b')");
  Sync(a, b);
  Sync(b, c);
  EXPECT_EQ(c.Dump("notes"), a.Dump("notes"));
  EXPECT_EQ(c.Text("SELECT json_extract(syncline_pull_since(NULL, 5), '$.changes[0].node')"), a.NodeId());
}

TEST_F(SyncTest, PeerCursorIsRecordedAndNeverMovesBack) {
  for (int i = 0; i < 5; ++i)
    a.Exec("INSERT INTO notes VALUES ('n" + std::to_string(i) + "', 1, 't', 'b')");
  std::string page1 = a.Text("SELECT syncline_pull_since(NULL, 2)");
  std::string cursor1 = a.Text("SELECT json_extract(?1, '$.cursor')", {page1});
  std::string page2 = a.Text("SELECT syncline_pull_since(?1, 2)", {cursor1});
  std::string cursor2 = a.Text("SELECT json_extract(?1, '$.cursor')", {page2});
  EXPECT_EQ(b.Text("SELECT syncline_peer_cursor(?1)", {a.NodeId()}), "NULL");
  Apply(b, page2);
  Apply(b, page1);  // delivered late
  EXPECT_EQ(b.Text("SELECT syncline_peer_cursor(?1)", {a.NodeId()}), cursor2);
  EXPECT_EQ(b.Text("SELECT syncline_peer_cursor(?1, '{\"origin\":\"local\"}')", {a.NodeId()}), "NULL");
}

TEST_F(SyncTest, CursorsDescribeThemselves) {
  a.Exec("INSERT INTO notes VALUES ('n1', 1, 't', 'b')");
  std::string cursor = a.Text("SELECT json_extract(syncline_pull_since(NULL, 10), '$.cursor')");
  EXPECT_NE(b.Error("SELECT syncline_pull_since(?1, 10)", {cursor}).find("issued by another database"),
            std::string::npos);
  EXPECT_NE(
      a.Error("SELECT syncline_pull_since(?1, 10, '{\"origin\":\"local\"}')", {cursor}).find("other pull options"),
      std::string::npos);
  std::string forged = cursor.substr(0, cursor.rfind(':') + 1) + "999";
  EXPECT_NE(a.Error("SELECT syncline_pull_since(?1, 10)", {forged}).find("never issued"), std::string::npos);
  EXPECT_NE(a.Error("SELECT syncline_pull_since('garbage', 10)").find("malformed"), std::string::npos);
  EXPECT_NE(a.Error("SELECT syncline_pull_since(NULL, 0)").find("limit must be at least 1"), std::string::npos);
  EXPECT_NE(a.Error("SELECT syncline_pull_since(NULL, 10, '{\"origin\":\"remote\"}')").find("\"origin\""),
            std::string::npos);
}

TEST_F(SyncTest, ApplyInsideACallersTransactionRollsBackWithIt) {
  a.Exec("INSERT INTO notes VALUES ('n1', 1, 't', 'b')");
  std::string batch = a.Text("SELECT syncline_pull_since(NULL, 10)");
  std::string before = State(b);
  b.Exec("BEGIN");
  Apply(b, batch);
  EXPECT_EQ(Title(b, "n1"), "t");
  b.Exec("ROLLBACK");
  EXPECT_EQ(State(b), before);
  // And commits with it.
  b.Exec("BEGIN");
  Apply(b, batch);
  b.Exec("COMMIT");
  EXPECT_EQ(b.Dump("notes"), a.Dump("notes"));
}

TEST_F(SyncTest, CopiedDatabaseFileIsDetected) {
  a.Exec("INSERT INTO notes VALUES ('n1', 1, 't', 'b')");
  a.Exec("VACUUM INTO '" + dir.File("copy.db") + "'");
  Db copy(dir.File("copy.db"));
  copy.Exec("INSERT INTO notes VALUES ('n2', 1, 'written on the copy', 'b')");
  std::string batch = copy.Text("SELECT syncline_pull_since(NULL, 10)");
  std::string before = State(a);
  std::string error = ApplyError(a, batch);
  EXPECT_NE(error.find("probably a copy"), std::string::npos) << error;
  EXPECT_EQ(State(a), before);
}

// Capture during an apply (docs/protocol.md, "Applying"): the applied row
// keeps its origin's version, but what a user's trigger writes to another
// tracked row is a local write, captured as on PostgreSQL.
TEST_F(SyncTest, WritesOfUserTriggersDuringAnApplyAreCaptured) {
  b.Exec("CREATE TABLE audit(id TEXT PRIMARY KEY, note_id TEXT)");
  b.Text("SELECT syncline_track('audit')");
  b.Exec("CREATE TRIGGER log_notes AFTER INSERT ON notes BEGIN "
         "INSERT INTO audit VALUES ('audit-' || NEW.id, NEW.id); END");
  Apply(b, Batch(remote, {Upsert("n1", "from remote", Hlc(0), remote)}));
  EXPECT_EQ(b.Text("SELECT count(*) FROM syncline_rows r JOIN syncline_tables t USING (tid) "
                   "WHERE t.name = 'notes' AND r.node = 0"),
            "0")
      << "the applied row keeps its origin's version";
  std::string local = b.Text("SELECT syncline_pull_since(NULL, 10, '{\"origin\": \"local\"}')");
  EXPECT_NE(local.find("\"audit-n1\""), std::string::npos) << local;
  EXPECT_EQ(local.find("\"table\":\"notes\""), std::string::npos) << local;
}

TEST_F(SyncTest, ValuesRoundTripExactly) {
  for (Db* db : {&a, &b}) {
    db->Exec("CREATE TABLE vals(k INTEGER PRIMARY KEY, v)");  // no type: keeps every value as written
    db->Text("SELECT syncline_track('vals')");
  }
  a.Exec("INSERT INTO vals VALUES (1, NULL), (2, 9223372036854775807), (3, -9223372036854775808), (4, 1.0),"
         "(5, -0.0), (6, 1e308), (7, 9e999), (8, -9e999), (9, 'héllo 日本 🎉'), (10, X''), (11, X'00FF10'),"
         "(12, '1'), (13, 0.1), (14, 4.9e-324), (15, 'quote \" and \\ and ' || char(0) || ' nul'), (16, 1)");
  Sync(a, b, 3);
  EXPECT_EQ(b.Dump("vals"), a.Dump("vals"));
  EXPECT_EQ(b.Text("SELECT typeof(v) || ':' || length(CAST(v AS BLOB)) FROM vals WHERE k = 15"), "text:23");
  EXPECT_EQ(b.Text("SELECT group_concat(typeof(v), ' ') FROM vals WHERE k IN (4, 5, 12, 16)"),
            "real real text integer");
}

// --- bad input: a clear error naming the change, and nothing written -------

TEST_F(SyncTest, BadBatchesAreRejectedWhole) {
  b.Exec("CREATE TABLE untracked(id TEXT PRIMARY KEY)");
  b.Exec("CREATE TABLE strict_t(id TEXT PRIMARY KEY, n INTEGER NOT NULL, r REAL, t TEXT, blob_col BLOB) STRICT");
  b.Text("SELECT syncline_track('strict_t')");
  b.Exec("INSERT INTO notes VALUES ('keep', 1, 'x', 'y')");
  std::string good = Upsert("g1", "good", Hlc(-1000), remote);
  auto with = [&](const std::string& bad) { return Batch(remote, {good, bad}); };
  auto change = [&](const std::string& table, const std::string& pk, const std::string& row) {
    return R"({"table":")" + table + R"(","op":"upsert","pk":)" + pk + R"(,"row":)" + row + R"(,"clock":1,"hlc":")" +
           Hlc(-500) + R"(","node":")" + remote + R"("})";
  };
  const std::string row = R"({"id":"x","org_id":1,"title":"t","body":"b"})";
  struct Case {
    std::string name, batch, expected;
  };
  std::vector<Case> cases = {
      {"malformed JSON", "{\"format\":1,", "batch: malformed JSON at byte"},
      {"not an object", "[1]", "batch: must be a JSON object"},
      {"wrong format version", R"({"format":3,"source":")" + remote + R"(","changes":[]})", "unsupported format 3"},
      {"unknown table", with(change("nope", R"({"id":"x"})", row)), "change 1 (table \"nope\"): no such table"},
      {"untracked table", with(change("untracked", R"({"id":"x"})", R"({"id":"x"})")),
       "change 1 (table \"untracked\"): table is not tracked"},
      {"missing key column", with(change("notes", R"({"org_id":1})", row)), "not in the table's primary key"},
      {"extra key column", with(change("notes", R"({"id":"x","title":"t"})", row)), "not in the table's primary key"},
      {"unknown column",
       with(change("notes", R"({"id":"x"})", R"({"id":"x","org_id":1,"title":"t","body":"b","zz":1})")),
       "change 1 (table \"notes\"): unknown column \"zz\""},
      {"missing column", with(change("notes", R"({"id":"x"})", R"({"id":"x","org_id":1,"title":"t"})")),
       "\"row\" lacks column \"body\""},
      {"wrong type", with(change("notes", R"({"id":"x"})", R"({"id":"x","org_id":"seven","title":"t","body":"b"})")),
       "column \"org_id\" expects integer, got text"},
      {"text into a text column as a number",
       with(change("notes", R"({"id":"x"})", R"({"id":"x","org_id":1,"title":5,"body":"b"})")),
       "column \"title\" expects text, got integer"},
      {"strict table type",
       with(change("strict_t", R"({"id":"x"})", R"({"id":"x","n":"abc","r":1.5,"t":"t","blob_col":null})")),
       "change 1 (table \"strict_t\"): cannot store TEXT value in INTEGER column"},
      {"NULL into NOT NULL",
       with(change("strict_t", R"({"id":"x"})", R"({"id":"x","n":null,"r":1.5,"t":"t","blob_col":null})")),
       "NOT NULL constraint failed"},
      {"NaN", with(change("notes", R"({"id":"x"})", R"({"id":"x","org_id":{"real":"NaN"},"title":"t","body":"b"})")),
       "cannot hold NaN"},
      {"invalid UTF-8", "{\"format\":1,\"source\":\"" + remote + "\",\"changes\":[],\"x\":\"\xff\"}", "malformed JSON"},
      {"injection through the table name", with(change("notes\\\"; DROP TABLE notes; --", R"({"id":"x"})", row)),
       "no such table"},
      {"injection through a column name",
       with(
           change("notes", R"({"id":"x"})", R"({"id":"x","org_id":1,"title\"; DROP TABLE notes; --":"t","body":"b"})")),
       "unknown column"},
      {"integer overflow",
       with(change("notes", R"({"id":"x"})", R"({"id":"x","org_id":99999999999999999999,"title":"t","body":"b"})")),
       "out of the 64-bit range"},
      {"clock far in the future", with(Upsert("f", "x", Hlc(24LL * 3600 * 1000), remote)),
       "ahead of this node's clock"},
      {"bad cursor in batch", R"({"format":1,"source":")" + remote + R"(","cursor":"nope","changes":[]})",
       "cursor \"nope\" is malformed"},
  };
  std::string before = State(b);
  for (const Case& c : cases) {
    std::string error = ApplyError(b, c.batch);
    EXPECT_NE(error.find("syncline_apply_push: "), std::string::npos) << c.name << ": " << error;
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.name << ": " << error;
    EXPECT_EQ(State(b), before) << c.name;
  }
  EXPECT_EQ(b.Int("SELECT count(*) FROM notes"), 1);  // no injection ran
}

TEST_F(SyncTest, IntegralRealKeysAreTheRowsTheyName) {
  // SQLite's unique index takes 2.0 and 2 for one key: so must the metadata,
  // or an older change could replace a newer row under a second key.
  for (Db* db : {&a, &b}) {
    db->Exec("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE loose(id PRIMARY KEY, v TEXT)");
    db->Text("SELECT syncline_track('users')");
    db->Text("SELECT syncline_track('loose')");
  }
  a.Exec("INSERT INTO users VALUES (2, 'now'); INSERT INTO loose VALUES (2.0, 'now')");
  auto old = [&](const std::string& table, const std::string& column, const std::string& key) {
    return R"({"table":")" + table + R"(","op":"upsert","pk":{"id":)" + key + R"(},"row":{"id":)" + key + R"(,")" +
           column + R"(":"older"},"clock":1,"hlc":")" + Hlc(-60000) + R"(","node":")" + remote + R"("})";
  };
  std::string result = Apply(a, Batch(remote, {old("users", "name", "2.0"), old("loose", "v", "2")}));
  EXPECT_EQ(a.Text("SELECT json_extract(?1, '$.skipped')", {result}), "2");
  EXPECT_EQ(a.Dump("users"), "2|'now'");
  EXPECT_EQ(a.Dump("loose"), "2.0|'now'");
  EXPECT_EQ(a.Int("SELECT count(*) FROM syncline_rows WHERE tid > 0"), 2);
  // And the stored key travels as stored.
  Sync(a, b);
  EXPECT_EQ(b.Dump("loose"), "2.0|'now'");
}

TEST_F(SyncTest, HugeBatchFailsCleanly) {
  std::string huge = Batch(remote, {Upsert("h", std::string(65u << 20, 'x'), Hlc(-100), remote)});
  std::string before = State(b);
  std::string error = ApplyError(b, huge);
  EXPECT_NE(error.find("more than the limit of 64 MiB"), std::string::npos) << error.substr(0, 200);
  EXPECT_EQ(State(b), before);
}

TEST_F(SyncTest, ConstraintViolationsRollBackTheWholeBatch) {
  b.Exec("CREATE TABLE parent(id TEXT PRIMARY KEY); CREATE TABLE child(id TEXT PRIMARY KEY, "
         "parent_id TEXT NOT NULL REFERENCES parent(id), email TEXT UNIQUE); PRAGMA foreign_keys = ON;");
  b.Text("SELECT syncline_track('child')");
  b.Exec("INSERT INTO parent VALUES ('p1'); INSERT INTO child VALUES ('c1', 'p1', 'taken@x');");
  auto child = [&](const std::string& id, const std::string& parent, const std::string& email) {
    return R"({"table":"child","op":"upsert","pk":{"id":")" + id + R"("},"row":{"id":")" + id + R"(","parent_id":")" +
           parent + R"(","email":")" + email + R"("},"clock":1,"hlc":")" + Hlc(-100) + R"(","node":")" + remote +
           R"("})";
  };
  std::string before = State(b) + b.Dump("child");
  std::string error = ApplyError(b, Batch(remote, {child("c2", "p1", "ok@x"), child("c3", "missing", "c3@x")}));
  // Foreign keys are checked when the batch commits (deferred), so the error
  // names the batch rather than one change.
  EXPECT_NE(error.find("batch: FOREIGN KEY constraint failed"), std::string::npos) << error;
  error = ApplyError(b, Batch(remote, {child("c2", "p1", "ok@x"), child("c4", "p1", "taken@x")}));
  EXPECT_NE(error.find("change 1 (table \"child\"): UNIQUE constraint failed: child.email"), std::string::npos)
      << error;
  EXPECT_EQ(State(b) + b.Dump("child"), before);
}

TEST_F(SyncTest, ChildrenBeforeTheirParentsApplyWithForeignKeysOn) {
  // A parent updated after its children has a later version, so a batch
  // (or a pull from scratch) carries the children first.
  for (Db* db : {&a, &b}) {
    db->Exec("PRAGMA foreign_keys = ON; CREATE TABLE invoice(id TEXT PRIMARY KEY, total REAL); "
             "CREATE TABLE line(id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL REFERENCES invoice(id), amount REAL)");
    db->Text("SELECT syncline_track('invoice')");
    db->Text("SELECT syncline_track('line')");
  }
  a.Exec("INSERT INTO invoice VALUES ('i1', 0); INSERT INTO line VALUES ('l1', 'i1', 2.5), ('l2', 'i1', 4.0);"
         "UPDATE invoice SET total = 6.5 WHERE id = 'i1';");
  std::string batch = a.Text("SELECT syncline_pull_since(NULL, 10)");
  EXPECT_EQ(a.Text("SELECT json_extract(?1, '$.changes[0].table')", {batch}), "line");
  EXPECT_EQ(b.Text("SELECT json_extract(syncline_apply_push(?1), '$.applied')", {batch}), "3");
  EXPECT_EQ(b.Dump("line"), a.Dump("line"));
  // Deletes too: the parent's delete may come before its children's.
  a.Exec("DELETE FROM line; DELETE FROM invoice;");
  std::string deletes =
      a.Text("SELECT syncline_pull_since(?1, 10)", {a.Text("SELECT json_extract(?1, '$.cursor')", {batch})});
  b.Text("SELECT syncline_apply_push(?1)", {deletes});
  EXPECT_EQ(b.Int("SELECT count(*) FROM invoice") + b.Int("SELECT count(*) FROM line"), 0);
}

// --- convergence ------------------------------------------------------------

TEST(Convergence, ThreeFilesEditedIndependentlyEndIdentical) {
  TempDir dir;
  std::vector<std::unique_ptr<Db>> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(std::make_unique<Db>(dir.File("n" + std::to_string(i) + ".db")));
    nodes.back()->Exec("CREATE TABLE items(org INTEGER, id TEXT, qty INTEGER, note TEXT, weight REAL, PRIMARY KEY "
                       "(org, id)); CREATE TABLE tags(id TEXT PRIMARY KEY, label TEXT)");
    nodes.back()->Text("SELECT syncline_track('items')");
    nodes.back()->Text("SELECT syncline_track('tags')");
  }
  std::mt19937_64 random(20261123);
  auto pick = [&](int n) { return static_cast<int>(random() % n); };
  for (int round = 0; round < 12; ++round) {
    for (auto& node : nodes) {
      node->Exec("BEGIN");
      for (int op = 0; op < 15; ++op) {
        std::string org = std::to_string(pick(2));
        std::string id = "'k" + std::to_string(pick(8)) + "'";
        std::string tag = "'t" + std::to_string(pick(5)) + "'";
        switch (pick(6)) {
          case 0:
            node->Exec("INSERT OR REPLACE INTO items VALUES (" + org + ", " + id + ", " + std::to_string(pick(100)) +
                       ", 'n" + std::to_string(pick(1000)) + "', " + std::to_string(pick(1000)) + ".5)");
            break;
          case 1:
            node->Exec("UPDATE items SET qty = qty + 1, note = 'u" + std::to_string(round) + "' WHERE org = " + org +
                       " AND id = " + id);
            break;
          case 2: node->Exec("DELETE FROM items WHERE org = " + org + " AND id = " + id); break;
          case 3:
            node->Exec("UPDATE items SET id = 'm" + std::to_string(pick(8)) + "' WHERE org = " + org +
                       " AND id = " + id + " AND NOT EXISTS (SELECT 1 FROM items WHERE id LIKE 'm%')");
            break;
          case 4:
            node->Exec("INSERT INTO tags VALUES (" + tag + ", 'l" + std::to_string(pick(9)) +
                       "') ON CONFLICT (id) DO UPDATE SET label = excluded.label");
            break;
          case 5: node->Exec("DELETE FROM tags WHERE id = " + tag); break;
        }
      }
      node->Exec("COMMIT");
    }
    // Random pairwise syncs with random page sizes.
    for (int s = 0; s < 3; ++s) {
      int from = pick(3), to = pick(3);
      if (from != to) Sync(*nodes[from], *nodes[to], 1 + pick(20));
    }
  }
  // Final full sync in both directions around the ring, twice.
  for (int pass = 0; pass < 2; ++pass)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        if (i != j) Sync(*nodes[i], *nodes[j], 7);
  for (const char* table : {"items", "tags"}) {
    std::string reference = nodes[0]->Dump(table);
    EXPECT_FALSE(reference.empty());
    for (int i = 1; i < 3; ++i)
      EXPECT_EQ(nodes[i]->Dump(table), reference) << table << " differs on node " << i;
  }
  // The metadata agrees too: same live rows, same winning stamps.
  std::string meta = "SELECT group_concat(pk || hlc || deleted, ' ') FROM (SELECT * FROM syncline_rows WHERE tid > 0 "
                     "ORDER BY tid, pk)";
  for (int i = 1; i < 3; ++i)
    EXPECT_EQ(nodes[i]->Text(meta), nodes[0]->Text(meta));
}

}  // namespace
}  // namespace syncline::test
