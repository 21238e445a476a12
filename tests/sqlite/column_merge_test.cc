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
    core::Status status = core::ReadColumnStamps(db.Text("SELECT coalesce(cols, '') FROM syncline_rows WHERE tid > 0"),
                                                 {"id", "title", "body", "score", "data"}, latest, &stamps);
    EXPECT_TRUE(status.ok()) << status.message();
    return stamps;
  }
  std::string Cols() { return db.Text("SELECT coalesce(cols, 'NULL') FROM syncline_rows WHERE tid > 0"); }
};

TEST_F(ColumnCapture, AnUpdateStampsOnlyTheColumnsItChanged) {
  EXPECT_EQ(Cols(), "NULL");  // an insert: every column at the row's stamp
  const std::vector<core::Stamp> inserted = Stamps();
  db.Exec("UPDATE notes SET title = 'new title', body = 'body' WHERE id = 'n1'");
  std::vector<core::Stamp> now = Stamps();
  EXPECT_GT(now[1].hlc, inserted[1].hlc);
  EXPECT_EQ(now[2].hlc, inserted[2].hlc);  // set to the value it had
  EXPECT_EQ(now[0].hlc, inserted[0].hlc);
  const std::string cols = Cols();  // one short entry: [d,{"title":0}]
  EXPECT_EQ(cols.substr(cols.find(',')), ",{\"title\":0}]") << cols;

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
  EXPECT_NE(Cols(), "NULL");
  db.Exec("UPDATE notes SET id = 'n2' WHERE id = 'n1'");  // a delete of n1 and an insert of n2
  EXPECT_EQ(db.Text("SELECT group_concat(deleted || ':' || coalesce(cols, 'NULL'), ' ') FROM "
                    "(SELECT * FROM syncline_rows WHERE tid > 0 ORDER BY version)"),
            "1:NULL 0:NULL");
  db.Exec("DELETE FROM notes");
  db.Exec("INSERT INTO notes VALUES ('n1', 'again', NULL, NULL, NULL)");
  EXPECT_EQ(db.Text("SELECT coalesce(cols, 'NULL') FROM syncline_rows WHERE pk = '[\"n1\"]'"), "NULL");
}

TEST_F(ColumnCapture, TheModeSwitchesBothWaysAndOptionsAreChecked) {
  db.Exec("UPDATE notes SET title = 'x' WHERE id = 'n1'");
  // Again without options: the table keeps its mode.
  EXPECT_EQ(db.Text("SELECT json_extract(syncline_track('notes'), '$.merge')"), "column");
  EXPECT_NE(Cols(), "NULL");
  // To row: the stamps go, every row is one version.
  EXPECT_EQ(db.Text("SELECT json_extract(syncline_track('notes', '{\"merge\": \"row\"}'), '$.merge')"), "row");
  EXPECT_EQ(Cols(), "NULL");
  db.Exec("UPDATE notes SET body = 'y' WHERE id = 'n1'");
  EXPECT_EQ(Cols(), "NULL");
  // And back: the rows start with every column at the row's stamp.
  db.Text("SELECT syncline_track('notes', '{\"merge\": \"column\"}')");
  db.Exec("UPDATE notes SET body = 'z' WHERE id = 'n1'");
  EXPECT_NE(Cols(), "NULL");
  EXPECT_NE(db.Error("SELECT syncline_track('notes', '{\"merge\": \"cell\"}')")
                .find("\"merge\" is \"row\" or \"column\", not \"cell\""),
            std::string::npos);
  EXPECT_NE(db.Error("SELECT syncline_track('notes', '{\"merge\": \"column\", \"x\": 1}')")
                .find("unknown option \"x\""),
            std::string::npos);
}

TEST_F(ColumnCapture, CaptureFollowsAnAddedColumn) {
  db.Exec("ALTER TABLE notes ADD COLUMN status TEXT");
  db.Exec("UPDATE notes SET status = 'done' WHERE id = 'n1'");
  const std::string cols = Cols();
  EXPECT_NE(cols.find("\"status\":0"), std::string::npos) << cols;
  EXPECT_EQ(cols.find("\"title\""), std::string::npos) << cols;
}

}  // namespace
}  // namespace syncline::test
