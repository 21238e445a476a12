// NaN on SQLite (docs/types.md, "SQLite"): SQLite stores a NaN as NULL, so
// a REAL column of a table that is not STRICT holds it as the text 'NaN',
// and a pull reads that text there back as the real NaN. Elsewhere NaN is
// refused: no stored form could be told apart from the text 'NaN'.
#include <string>
#include <vector>

#include "core/hlc.h"
#include "core/node_id.h"
#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

class NanTest : public ::testing::Test {
 protected:
  TempDir dir;
  Db a{dir.File("a.db")};
  Db b{dir.File("b.db")};
  const std::string remote = core::NewNodeId();

  void SetUp() override {
    for (Db* db : {&a, &b}) {
      db->Exec("CREATE TABLE m(id TEXT PRIMARY KEY, score REAL, n NUMERIC, u, s REAL)");
      db->Exec("CREATE TABLE k(x REAL PRIMARY KEY, v TEXT)");
      db->Exec("CREATE TABLE st(id TEXT PRIMARY KEY, r REAL) STRICT");
      for (const char* table : {"m", "k", "st"})
        db->Text(std::string("SELECT syncline_track('") + table + "')");
    }
  }
  // A stamp `seconds` from now.
  std::string Stamp(int seconds) {
    return core::HlcToText(core::HlcFromPhysicalMs(core::WallClockMs() + seconds * 1000));
  }
  std::string Change(const std::string& table, const std::string& op, const std::string& pk, const std::string& row,
                     int seconds) {
    return R"({"table":")" + table + R"(","op":")" + op + R"(","pk":)" + pk + (row.empty() ? "" : R"(,"row":)" + row) +
           R"(,"clock":1,"hlc":")" + Stamp(seconds) + R"(","node":")" + remote + R"("})";
  }
  std::string Batch(const std::vector<std::string>& changes) {
    std::string list;
    for (const std::string& change : changes)
      list += (list.empty() ? "" : ",") + change;
    return R"({"format":1,"source":")" + remote + R"(","changes":[)" + list + "]}";
  }
  std::string Apply(Db& db, const std::string& batch) { return db.Text("SELECT syncline_apply_push(?1)", {batch}); }
  // The change of a pull of everything whose pk is `pk`, as JSON.
  std::string Pulled(Db& db, const std::string& pk) {
    return db.Text("SELECT value FROM json_each(json_extract(syncline_pull_since(NULL, 100), '$.changes')) "
                   "WHERE json(json_extract(value, '$.pk')) = json(?1)",
                   {pk});
  }
};

TEST_F(NanTest, ARealColumnHoldsNanAsTextAndPullsItAsNan) {
  const std::string nan_row =
      Batch({Change("m", "upsert", R"({"id":"a"})", R"({"id":"a","score":{"real":"NaN"},"n":1,"u":2,"s":0.5})", -60)});
  EXPECT_EQ(Apply(a, nan_row), R"({"applied":1,"skipped":0,"source":")" + remote + R"(","cursor":null})");
  EXPECT_EQ(a.Text("SELECT quote(score) || ' ' || typeof(score) FROM m WHERE id = 'a'"), "'NaN' text");
  std::string pulled = Pulled(a, R"({"id":"a"})");
  EXPECT_NE(pulled.find(R"("score":{"real":"NaN"})"), std::string::npos) << pulled;
  // Applied again: the same content, compared in its stored form.
  EXPECT_EQ(a.Text("SELECT json_extract(syncline_apply_push(?1), '$.skipped')", {nan_row}), "1");
  // Relayed to another node, it arrives as it left.
  Sync(a, b);
  EXPECT_EQ(b.Dump("m"), a.Dump("m"));
  EXPECT_EQ(Pulled(b, R"({"id":"a"})"), pulled);
  // The infinities need no text: SQLite stores them as reals.
  Apply(a, Batch({Change("m", "upsert", R"({"id":"a"})",
                         R"({"id":"a","score":{"real":"Infinity"},"n":1,"u":2,"s":{"real":"-Infinity"}})", -59)}));
  EXPECT_EQ(a.Text("SELECT typeof(score) || ' ' || typeof(s) FROM m WHERE id = 'a'"), "real real");
  pulled = Pulled(a, R"({"id":"a"})");
  EXPECT_NE(pulled.find(R"("score":{"real":"Infinity"})"), std::string::npos) << pulled;
}

TEST_F(NanTest, ALocalWriteOfTheTextNanInARealColumnIsNan) {
  a.Exec("INSERT INTO m VALUES ('l', 'NaN', 'NaN', 'NaN', 1.5)");
  std::string pulled = Pulled(a, R"({"id":"l"})");
  // In the REAL column the text is NaN; in the others it is text.
  EXPECT_NE(pulled.find(R"("score":{"real":"NaN"},"n":"NaN","u":"NaN","s":1.5)"), std::string::npos) << pulled;
  Sync(a, b);
  EXPECT_EQ(b.Dump("m"), a.Dump("m"));
}

TEST_F(NanTest, ANanKeyIsOneRowWithItsStoredForm) {
  EXPECT_NE(
      Apply(a, Batch({Change("k", "upsert", R"({"x":{"real":"NaN"}})", R"({"x":{"real":"NaN"},"v":"one"})", -60)})),
      "");
  EXPECT_EQ(a.Text("SELECT quote(x) || ' ' || v FROM k"), "'NaN' one");
  EXPECT_EQ(a.Text("SELECT group_concat(pk) FROM syncline_rows WHERE tid = (SELECT tid FROM syncline_tables "
                   "WHERE name = 'k')"),
            "[\"NaN\"]");
  // A local edit of the row is captured under the same metadata row.
  a.Exec("UPDATE k SET v = 'two'");
  EXPECT_EQ(a.Int("SELECT count(*) FROM syncline_rows WHERE pk = '[\"NaN\"]'"), 1);
  std::string pulled = Pulled(a, R"({"x":{"real":"NaN"}})");
  EXPECT_NE(pulled.find(R"("row":{"x":{"real":"NaN"},"v":"two"})"), std::string::npos) << pulled;
  Sync(a, b);
  EXPECT_EQ(b.Dump("k"), a.Dump("k"));
  // A later delete names the key as the real NaN, and removes the row.
  EXPECT_NE(Apply(a, Batch({Change("k", "delete", R"({"x":{"real":"NaN"}})", "", 10)})), "");
  EXPECT_EQ(a.Int("SELECT count(*) FROM k"), 0);
  pulled = Pulled(a, R"({"x":{"real":"NaN"}})");
  EXPECT_NE(pulled.find(R"("op":"delete")"), std::string::npos) << pulled;
}

// A row the server refused, written again from its conflict entry: its NaN
// is written as any other (docs/sqlite.md, "Conflicts").
TEST_F(NanTest, AResubmittedRowKeepsItsNan) {
  const std::string entry =
      R"({"id":7,"table_name":"m","pk":"{\"id\": \"r\"}","op":"upsert",)"
      R"("row":"{\"id\": \"r\", \"score\": {\"real\": \"NaN\"}, \"n\": 1, \"u\": 2, \"s\": 0.5}",)"
      R"("hlc":"0000000000000001","origin":"x","sqlstate":"23514","reason":"refused","answer":"none","forget":false})";
  EXPECT_EQ(a.Text("SELECT syncline_note_conflict(?1)", {entry}), "0");  // (nothing here to drop)
  EXPECT_EQ(a.Text("SELECT syncline_resubmit_conflict(id) FROM syncline_conflicts"), "1");
  EXPECT_EQ(a.Text("SELECT quote(score) FROM m WHERE id = 'r'"), "'NaN'");
  std::string pulled = Pulled(a, R"({"id":"r"})");
  EXPECT_NE(pulled.find(R"("score":{"real":"NaN"})"), std::string::npos) << pulled;
}

TEST_F(NanTest, NanIsRefusedWhereNoColumnCanTellItFromText) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Change("m", "upsert", R"({"id":"x"})", R"({"id":"x","score":1.0,"n":{"real":"NaN"},"u":2,"s":0.5})", -60),
       "column \"n\" cannot hold NaN"},
      {Change("m", "upsert", R"({"id":"x"})", R"({"id":"x","score":1.0,"n":1,"u":{"real":"NaN"},"s":0.5})", -60),
       "column \"u\" cannot hold NaN"},
      {Change("st", "upsert", R"({"id":"x"})", R"({"id":"x","r":{"real":"NaN"}})", -60),
       "column \"r\" cannot hold NaN"},
  };
  for (const auto& [change, error] : cases) {
    std::string message = a.Error("SELECT syncline_apply_push(?1)", {Batch({change})});
    EXPECT_NE(message.find(error), std::string::npos) << message;
  }
  EXPECT_EQ(a.Int("SELECT count(*) FROM m") + a.Int("SELECT count(*) FROM st"), 0);
}

}  // namespace
}  // namespace syncline::test
