// Column-merge tables in SQLite (docs/sqlite.md, "Column-level merge"):
// syncline_track's "merge" option, and capture that stamps only the columns
// an UPDATE changed, compared as stored.
#include "core/column_merge.h"
#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

class ColumnCapture : public ::testing::Test {
 protected:
  TempDir dir;
  Db db{dir.File("a.db")};

  void SetUp() override {
    // `data` has no type: it keeps 1 and 1.0 apart, as the changeset does.
    db.Exec("CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT, body TEXT, score REAL, data)");
    EXPECT_EQ(db.Text("SELECT json_extract(syncline_track('notes', '{\"merge\": \"column\"}'), '$.merge')"), "column");
    db.Exec("INSERT INTO notes VALUES ('n1', 'title', 'body', 1.5, 1)");
  }

  // Each column's stamp as the metadata holds it.
  std::vector<core::Stamp> Stamps() {
    const std::string node = db.Text("SELECT syncline_node_id()");
    const core::Stamp latest{static_cast<core::Hlc>(db.Int("SELECT hlc FROM syncline_rows WHERE tid > 0")), node};
    EXPECT_EQ(db.Int("SELECT node FROM syncline_rows WHERE tid > 0"), 0);
    std::vector<core::Stamp> stamps;
    core::Status status = core::DecodeColumnStamps(Unhex(db.Text("SELECT hex(cols) FROM syncline_rows WHERE tid > 0")),
                                                   {"id", "title", "body", "score", "data"}, latest, &stamps);
    EXPECT_TRUE(status.ok()) << status.message();
    return stamps;
  }
  // The stamps' bytes in hex ("" for NULL).
  std::string Cols() { return db.Text("SELECT hex(cols) FROM syncline_rows WHERE tid > 0"); }
  static std::string Unhex(const std::string& hex) {
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
      bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return bytes;
  }
};

TEST_F(ColumnCapture, AnUpdateStampsOnlyTheColumnsItChanged) {
  EXPECT_EQ(Cols(), "");  // an insert: every column at the row's stamp
  const std::vector<core::Stamp> inserted = Stamps();
  db.Exec("UPDATE notes SET title = 'new title', body = 'body' WHERE id = 'n1'");
  std::vector<core::Stamp> now = Stamps();
  EXPECT_GT(now[1].hlc, inserted[1].hlc);
  EXPECT_EQ(now[2].hlc, inserted[2].hlc);  // set to the value it had
  EXPECT_EQ(now[0].hlc, inserted[0].hlc);
  const std::string cols = Cols();  // one short entry: "title" (5 bytes) at the row's stamp (tag 0)
  EXPECT_EQ(cols.substr(cols.size() - 14), "057469746C6500") << cols;

  // 1.0 stored where 1 was is a change of type; 1.5 into REAL, the same.
  const core::Hlc title = now[1].hlc;
  db.Exec("UPDATE notes SET data = 1.0, score = 1.5 WHERE id = 'n1'");
  now = Stamps();
  EXPECT_GT(now[4].hlc, title);
  EXPECT_EQ(now[3].hlc, inserted[3].hlc);
  EXPECT_EQ(now[1].hlc, title);
  // Text and blob of the same bytes differ; the same blob is no change.
  db.Exec("UPDATE notes SET data = X'31' WHERE id = 'n1'");
  const core::Hlc blob = Stamps()[4].hlc;
  EXPECT_GT(blob, now[4].hlc);
  db.Exec("UPDATE notes SET data = X'31' WHERE id = 'n1'");
  EXPECT_EQ(Stamps()[4].hlc, blob);
}

TEST_F(ColumnCapture, InsertDeleteAndNewKeysStampTheWholeRow) {
  db.Exec("UPDATE notes SET title = 'x' WHERE id = 'n1'");
  EXPECT_NE(Cols(), "");
  db.Exec("UPDATE notes SET id = 'n2' WHERE id = 'n1'");  // a delete of n1 and an insert of n2
  EXPECT_EQ(db.Text("SELECT group_concat(deleted || ':' || ifnull(nullif(hex(cols), ''), 'NULL'), ' ') FROM "
                    "(SELECT * FROM syncline_rows WHERE tid > 0 ORDER BY version)"),
            "1:NULL 0:NULL");
  db.Exec("DELETE FROM notes");
  db.Exec("INSERT INTO notes VALUES ('n1', 'again', NULL, NULL, NULL)");
  EXPECT_EQ(db.Text("SELECT ifnull(nullif(hex(cols), ''), 'NULL') FROM syncline_rows WHERE pk = '[\"n1\"]'"), "NULL");
}

TEST_F(ColumnCapture, TheModeSwitchesBothWaysAndOptionsAreChecked) {
  db.Exec("UPDATE notes SET title = 'x' WHERE id = 'n1'");
  // Again without options: the table keeps its mode.
  EXPECT_EQ(db.Text("SELECT json_extract(syncline_track('notes'), '$.merge')"), "column");
  EXPECT_NE(Cols(), "");
  // To row: the stamps go, every row is one version.
  EXPECT_EQ(db.Text("SELECT json_extract(syncline_track('notes', '{\"merge\": \"row\"}'), '$.merge')"), "row");
  EXPECT_EQ(Cols(), "");
  db.Exec("UPDATE notes SET body = 'y' WHERE id = 'n1'");
  EXPECT_EQ(Cols(), "");
  // And back: the rows start with every column at the row's stamp.
  db.Text("SELECT syncline_track('notes', '{\"merge\": \"column\"}')");
  db.Exec("UPDATE notes SET body = 'z' WHERE id = 'n1'");
  EXPECT_NE(Cols(), "");
  EXPECT_NE(db.Error("SELECT syncline_track('notes', '{\"merge\": \"cell\"}')")
                .find("\"merge\" is \"row\" or \"column\", not \"cell\""),
            std::string::npos);
  EXPECT_NE(
      db.Error("SELECT syncline_track('notes', '{\"merge\": \"column\", \"x\": 1}')").find("unknown option \"x\""),
      std::string::npos);
}

TEST_F(ColumnCapture, CaptureFollowsAnAddedColumn) {
  db.Exec("ALTER TABLE notes ADD COLUMN status TEXT");
  db.Exec("UPDATE notes SET status = 'done' WHERE id = 'n1'");
  const std::string cols = Cols();
  EXPECT_NE(cols.find("0673746174757300"), std::string::npos) << cols;  // "status" at the row's stamp
  EXPECT_EQ(cols.find("057469746C65"), std::string::npos) << cols;      // "title": not named
}

// Three files of one column-merge table, synced through a hub as a server's
// devices are: format 2, so every column keeps its own stamp.
class ColumnSync : public ::testing::Test {
 protected:
  TempDir dir;
  Db hub{dir.File("hub.db")}, laptop{dir.File("laptop.db")}, phone{dir.File("phone.db")};

  void SetUp() override {
    for (Db* db : {&hub, &laptop, &phone}) {
      db->Exec("CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT, body TEXT, status TEXT)");
      db->Text("SELECT syncline_track('notes', '{\"merge\": \"column\"}')");
    }
    hub.Exec("INSERT INTO notes VALUES ('n1', 'Shopping', 'eggs', 'open')");
    Everyone();
  }
  void Everyone() {
    for (int round = 0; round < 2; ++round) {
      for (Db* device : {&laptop, &phone}) {
        Sync(*device, hub, 50, 2);
        Sync(hub, *device, 50, 2);
      }
    }
  }
};

TEST_F(ColumnSync, EditsOfDifferentColumnsAreAllKept) {
  laptop.Exec("UPDATE notes SET title = 'Shopping list'");
  phone.Exec("UPDATE notes SET body = 'eggs, milk'");
  hub.Exec("UPDATE notes SET status = 'done'");
  Everyone();
  for (Db* db : {&hub, &laptop, &phone})
    EXPECT_EQ(db->Dump("notes"), "'n1'|'Shopping list'|'eggs, milk'|'done'");
  // Nothing more to exchange: the merge settled.
  EXPECT_EQ(Sync(laptop, hub, 50, 2) + Sync(hub, laptop, 50, 2), 0);
}

TEST_F(ColumnSync, TheLaterEditOfOneColumnWinsHoweverOftenTheOtherEdited) {
  for (int i = 0; i < 10; ++i)
    phone.Exec("UPDATE notes SET body = 'phone " + std::to_string(i) + "'");
  laptop.Exec("UPDATE notes SET body = 'laptop, later'");
  Everyone();
  for (Db* db : {&hub, &laptop, &phone})
    EXPECT_EQ(db->Dump("notes"), "'n1'|'Shopping'|'laptop, later'|'open'");
}

TEST_F(ColumnSync, ADeleteClearsOlderColumnsAndALaterEditBringsTheRowBack) {
  phone.Exec("DELETE FROM notes");
  laptop.Exec("UPDATE notes SET title = 'edited after the delete'");  // a later stamp
  Everyone();
  for (Db* db : {&hub, &laptop, &phone})
    EXPECT_EQ(db->Dump("notes"), "'n1'|'edited after the delete'|NULL|NULL");

  // Deleted again, then an edit older than that delete arrives: it loses.
  laptop.Exec("UPDATE notes SET body = 'old edit'");
  const std::string stale = laptop.Text("SELECT syncline_pull_since(NULL, 10, '{\"format\": 2}')");
  hub.Exec("DELETE FROM notes");
  Everyone();
  EXPECT_EQ(hub.Text("SELECT json_extract(syncline_apply_push(?1), '$.applied')", {stale}), "0");
  for (Db* db : {&hub, &laptop, &phone})
    EXPECT_EQ(db->Int("SELECT count(*) FROM notes"), 0);
}

TEST_F(ColumnSync, AFormatOneReaderSeesEachRowAsOneVersion) {
  Db old_reader(dir.File("old.db"));
  old_reader.Exec("CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT, body TEXT, status TEXT)");
  old_reader.Text("SELECT syncline_track('notes')");
  EXPECT_EQ(hub.Text("SELECT json_extract(syncline_pull_since(NULL, 10), '$.format')"), "1");
  Sync(hub, old_reader);
  // The phone's edit is older than the hub's: merged beneath the hub's row
  // stamp, which moves above it so that the format-1 reader takes the row.
  phone.Exec("UPDATE notes SET body = 'phone first'");
  hub.Exec("UPDATE notes SET status = 'hub later'");
  Sync(hub, old_reader);
  Sync(phone, hub, 50, 2);
  EXPECT_EQ(hub.Dump("notes"), "'n1'|'Shopping'|'phone first'|'hub later'");
  const std::string page = hub.Text("SELECT syncline_pull_since(NULL, 10)");
  EXPECT_EQ(hub.Text("SELECT json_extract(?1, '$.format')", {page}), "1");
  EXPECT_EQ(hub.Text("SELECT json_type(?1, '$.changes[0].columns')", {page}), "NULL");
  Sync(hub, old_reader);
  EXPECT_EQ(old_reader.Dump("notes"), hub.Dump("notes"));
}

// Found by the apply fuzzer: a new row's change that lacks columns leaves
// them never written, which the metadata must hold (and read back when the
// same batch comes again).
TEST_F(ColumnSync, ARowNewHereFromAChangeLackingColumnsAppliesTwice) {
  const std::string batch = R"({"format":1,"source":"33333333-3333-4333-8333-333333333333","changes":[)"
                            R"({"table":"notes","op":"upsert","pk":{"id":"n9"},"row":{"id":"n9","title":"t"},)"
                            R"("clock":1,"hlc":"018cc25109a00000","node":"33333333-3333-4333-8333-333333333333"}]})";
  EXPECT_EQ(hub.Text("SELECT json_extract(syncline_apply_push(?1), '$.applied')", {batch}), "1");
  EXPECT_EQ(hub.Text("SELECT json_extract(syncline_apply_push(?1), '$.skipped')", {batch}), "1");
  EXPECT_EQ(hub.Text("SELECT quote(title) || quote(body) FROM notes WHERE id = 'n9'"), "'t'NULL");
  // Any later write of the missing column wins.
  laptop.Exec("INSERT INTO notes VALUES ('n9', 'laptop', 'body', 'open')");
  Everyone();
  for (Db* db : {&hub, &laptop, &phone})
    EXPECT_EQ(db->Text("SELECT quote(body) FROM notes WHERE id = 'n9'"), "'body'");
}

// Found by the demo: a write of some columns of a row that exists must not
// be checked as a new row. INSERT ... ON CONFLICT DO UPDATE checks NOT NULL
// on the row it would insert before it finds the conflict, so a write of
// the title alone failed on a NOT NULL column it does not write.
TEST(ColumnMergeWrites, SomeColumnsOfARowWithNotNullColumns) {
  TempDir dir;
  Db hub(dir.File("hub.db")), laptop(dir.File("laptop.db")), phone(dir.File("phone.db"));
  for (Db* db : {&hub, &laptop, &phone}) {
    db->Exec("CREATE TABLE tasks(id INTEGER PRIMARY KEY, title TEXT NOT NULL, owner TEXT NOT NULL, "
             "done INTEGER NOT NULL DEFAULT 0)");
    db->Text("SELECT syncline_track('tasks', '{\"merge\": \"column\"}')");
  }
  hub.Exec("INSERT INTO tasks VALUES (1, 'task', 'ann', 0)");
  for (Db* device : {&laptop, &phone})
    Sync(hub, *device, 50, 2);
  laptop.Exec("UPDATE tasks SET title = 'renamed'");
  phone.Exec("UPDATE tasks SET done = 1");
  for (Db* device : {&laptop, &phone})
    EXPECT_EQ(Sync(*device, hub, 50, 2), 1);
  for (Db* device : {&laptop, &phone})
    Sync(hub, *device, 50, 2);
  for (Db* db : {&hub, &laptop, &phone})
    EXPECT_EQ(db->Dump("tasks"), "1|'renamed'|'ann'|1");
}

// Found by the PostgreSQL column simulator: a device pulled (from_server)
// another device's later edit of a row while its own edit of another column
// was not pushed yet. The merged row took the other device's version, so
// its push (origin local) left the row out and the edit never reached the
// hub. The device moves such a row to a version of its own.
TEST(ColumnMergeDevice, AnUnpushedEditSurvivesAPullOfANewerEditOfTheRow) {
  TempDir dir;
  Db hub(dir.File("hub.db")), d1(dir.File("d1.db")), d2(dir.File("d2.db"));
  for (Db* db : {&hub, &d1, &d2}) {
    db->Exec("CREATE TABLE t(id TEXT PRIMARY KEY, a TEXT, b TEXT)");
    db->Text("SELECT syncline_track('t', '{\"merge\": \"column\"}')");
  }
  hub.Exec("INSERT INTO t VALUES ('k', 'x', 'u')");
  // As the sync client does: pulls applied as from the server, pushes of the
  // device's own writes.
  auto pull = [&](Db& device) {
    const std::string options = "{\"exclude_origin\": \"" + device.NodeId() + "\", \"format\": 2}";
    const std::string cursor = device.Text("SELECT syncline_peer_cursor(?1, ?2)", {hub.NodeId(), options});
    const std::string batch = cursor == "NULL" ? hub.Text("SELECT syncline_pull_since(NULL, 100, ?1)", {options})
                                               : hub.Text("SELECT syncline_pull_since(?1, 100, ?2)", {cursor, options});
    device.Text("SELECT syncline_apply_push(?1, '{\"from_server\": true}')", {batch});
  };
  auto push = [&](Db& device) {
    const std::string options = "{\"origin\": \"local\", \"format\": 2}";
    const std::string cursor = hub.Text("SELECT syncline_peer_cursor(?1, ?2)", {device.NodeId(), options});
    const std::string batch = cursor == "NULL"
                                  ? device.Text("SELECT syncline_pull_since(NULL, 100, ?1)", {options})
                                  : device.Text("SELECT syncline_pull_since(?1, 100, ?2)", {cursor, options});
    hub.Text("SELECT syncline_apply_push(?1)", {batch});
  };
  pull(d1);
  pull(d2);
  d2.Exec("UPDATE t SET b = 'v'");  // not pushed yet
  d1.Exec("UPDATE t SET a = 'y'");  // later
  push(d1);
  pull(d2);
  push(d2);
  pull(d1);
  for (Db* db : {&hub, &d1, &d2})
    EXPECT_EQ(db->Dump("t"), "'k'|'y'|'v'");
}

}  // namespace
}  // namespace syncline::test
