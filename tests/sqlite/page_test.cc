// Pages capped in bytes on SQLite: pull_since stops a page before the change
// that would take it past its byte cap (16 MiB, or the "max_bytes" option),
// the next page starts at that change, a row larger than the cap travels
// alone, and a row larger than any batch is an error naming it.
#include <set>
#include <string>
#include <vector>

#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

constexpr const char* kNotes = "CREATE TABLE notes(id TEXT PRIMARY KEY, org_id INTEGER, title TEXT, body TEXT)";

class PageTest : public ::testing::Test {
 protected:
  TempDir dir;
  Db a{dir.File("a.db")};
  Db b{dir.File("b.db")};

  void SetUp() override {
    for (Db* db : {&a, &b}) {
      db->Exec(kNotes);
      db->Text("SELECT syncline_track('notes')");
    }
  }
  // Inserts rows n<first>..n<last> with bodies of `bytes` bytes.
  void Insert(int first, int last, int bytes) {
    a.Exec("BEGIN");
    for (int i = first; i <= last; ++i)
      a.Exec("INSERT INTO notes VALUES ('n" + std::to_string(i) + "', 1, 't', substr(hex(zeroblob(" +
             std::to_string(bytes) + ")), 1, " + std::to_string(bytes) + "))");
    a.Exec("COMMIT");
  }
  std::string Pull(const std::string& cursor, int limit, const std::string& options) {
    const std::string limit_text = std::to_string(limit);
    return cursor.empty() ? a.Text("SELECT syncline_pull_since(NULL, " + limit_text + ", ?1)", {options})
                          : a.Text("SELECT syncline_pull_since(?1, " + limit_text + ", ?2)", {cursor, options});
  }
  std::vector<std::string> Ids(const std::string& batch) {
    std::string ids = a.Text("SELECT coalesce(group_concat(json_extract(value, '$.pk.id'), ' '), '') FROM "
                             "json_each(?1, '$.changes')",
                             {batch});
    std::vector<std::string> out;
    for (std::size_t start = 0; start < ids.size();) {
      std::size_t end = ids.find(' ', start);
      if (end == std::string::npos) end = ids.size();
      out.push_back(ids.substr(start, end - start));
      start = end + 1;
    }
    return out;
  }
  bool HasMore(const std::string& batch) { return a.Text("SELECT json_extract(?1, '$.has_more')", {batch}) == "1"; }
  std::string Cursor(const std::string& batch) { return a.Text("SELECT json_extract(?1, '$.cursor')", {batch}); }
};

TEST_F(PageTest, APageStopsAtItsByteCapAndTheNextGoesOn) {
  Insert(0, 99, 1000);  // about 1100 bytes a change
  const std::size_t cap = 10000;
  std::vector<std::string> delivered;
  std::string cursor;
  int pages = 0;
  for (bool more = true; more; ++pages) {
    // The cap changes from page to page: it is not part of the cursor's filter.
    const std::size_t page_cap = pages % 2 == 0 ? cap : cap / 2;
    std::string batch = Pull(cursor, 1000, "{\"max_bytes\":" + std::to_string(page_cap) + "}");
    ASSERT_FALSE(batch.empty());
    EXPECT_LE(batch.size(), page_cap);
    std::vector<std::string> ids = Ids(batch);
    more = HasMore(batch);
    // One more change (and the room the writer keeps for the longest
    // cursor) would not have fitted.
    if (more) {
      EXPECT_GT(batch.size() + 1200 + 320, page_cap) << "page " << pages << " stopped early";
    }
    delivered.insert(delivered.end(), ids.begin(), ids.end());
    EXPECT_EQ(b.Text("SELECT json_extract(syncline_apply_push(?1), '$.applied')", {batch}), std::to_string(ids.size()));
    cursor = Cursor(batch);
  }
  EXPECT_GT(pages, 10);
  ASSERT_EQ(delivered.size(), 100u);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(delivered[i], "n" + std::to_string(i)) << "lost or repeated";
  EXPECT_EQ(a.Dump("notes"), b.Dump("notes"));
  // The last cursor is the end: nothing more, with or without a cap.
  EXPECT_TRUE(Ids(Pull(cursor, 1000, "{}")).empty());
}

TEST_F(PageTest, TheDefaultCapIs16MiB) {
  Insert(0, 19, 1 << 20);
  std::string first = Pull("", 1000, "");
  EXPECT_LE(first.size(), 16u << 20);
  EXPECT_EQ(Ids(first).size(), 15u);
  EXPECT_TRUE(HasMore(first));
  std::string second = Pull(Cursor(first), 1000, "");
  EXPECT_EQ(Ids(second), (std::vector<std::string>{"n15", "n16", "n17", "n18", "n19"}));
  EXPECT_FALSE(HasMore(second));
}

TEST_F(PageTest, ARowLargerThanTheCapTravelsAlone) {
  Insert(0, 1, 10);
  Insert(2, 2, 50000);
  Insert(3, 4, 10);
  const std::string options = R"({"max_bytes":2000})";
  std::string page = Pull("", 100, options);
  EXPECT_EQ(Ids(page), (std::vector<std::string>{"n0", "n1"}));
  EXPECT_TRUE(HasMore(page));
  page = Pull(Cursor(page), 100, options);
  EXPECT_EQ(Ids(page), std::vector<std::string>{"n2"});
  EXPECT_GT(page.size(), 50000u);
  EXPECT_TRUE(HasMore(page));
  EXPECT_NE(b.Text("SELECT syncline_apply_push(?1)", {page}), "");
  page = Pull(Cursor(page), 100, options);
  EXPECT_EQ(Ids(page), (std::vector<std::string>{"n3", "n4"}));
  EXPECT_FALSE(HasMore(page));
}

TEST_F(PageTest, ARowLargerThanAnyBatchIsAnErrorNamingIt) {
  Insert(0, 1, 10);
  // Hex of 33 MiB of zeros: 66 MiB of text, more than a batch may hold.
  a.Exec("INSERT INTO notes VALUES ('huge', 1, 't', hex(zeroblob(33 << 20)))");
  Insert(2, 2, 10);
  std::string page = Pull("", 100, "");
  EXPECT_EQ(Ids(page), (std::vector<std::string>{"n0", "n1"})) << "the rows before it still sync";
  EXPECT_TRUE(HasMore(page));
  std::string error = a.Error("SELECT syncline_pull_since(?1, 100)", {Cursor(page)});
  EXPECT_NE(error.find("table \"notes\", row [\"huge\"]: its change takes "), std::string::npos) << error;
  EXPECT_NE(error.find("more than a batch may hold (64 MiB)"), std::string::npos) << error;
  // Made smaller, it syncs.
  a.Exec("UPDATE notes SET body = 'small' WHERE id = 'huge'");
  page = Pull(Cursor(page), 100, "");
  EXPECT_EQ(Ids(page), (std::vector<std::string>{"n2", "huge"}));
}

}  // namespace
}  // namespace syncline::test
