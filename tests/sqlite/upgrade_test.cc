// A file written by an earlier build (tests/sqlite/data/v2.db, metadata
// version 2) keeps syncing with this one. The test works on a copy: the
// checked-in file never changes.
#include <sqlite3.h>

#include <filesystem>

#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

std::string DataFile(const std::string& name) {
  // The tests run from the repository root (make sqlite-test).
  return (std::filesystem::current_path() / "tests/sqlite/data" / name).string();
}

TEST(Upgrade, VersionTwoFileKeepsSyncing) {
  TempDir dir;
  const std::string copy = dir.File("v2.db");
  std::filesystem::copy_file(DataFile("v2.db"), copy);
  const auto size = std::filesystem::file_size(DataFile("v2.db"));
  {
    Db db(copy);
    EXPECT_EQ(db.Text("SELECT value FROM syncline_meta WHERE key = 'metadata_version'"), "2");
    // What the old build captured: two tracked tables, a tombstone, an edit.
    std::string batch = db.Text("SELECT syncline_pull_since(NULL, 100)");
    EXPECT_EQ(db.Text("SELECT group_concat(json_extract(value, '$.table') || ':' || json_extract(value, '$.pk') || "
                      "':' || json_extract(value, '$.op'), ' ') FROM json_each(?1, '$.changes')",
                      {batch}),
              "notes:{\"id\":\"0b6f2c1e-8d3a-4c5b-9e7f-1a2b3c4d5e6f\"}:upsert users:{\"id\":1}:upsert "
              "users:{\"id\":2}:upsert notes:{\"id\":\"n3\"}:delete notes:{\"id\":\"n2\"}:upsert");
    std::string cursor = db.Text("SELECT json_extract(?1, '$.cursor')", {batch});
    // New writes are captured, the REPLACE guard included.
    db.Exec("UPDATE notes SET body = 'b2' WHERE id = 'n2'");
    db.Exec("INSERT OR REPLACE INTO users VALUES (3, 'a@x', 'Ann again')");
    batch = db.Text("SELECT syncline_pull_since(?1, 100)", {cursor});
    EXPECT_EQ(db.Text("SELECT group_concat(json_extract(value, '$.table') || ':' || json_extract(value, '$.pk') || "
                      "':' || json_extract(value, '$.op'), ' ') FROM json_each(?1, '$.changes')",
                      {batch}),
              "notes:{\"id\":\"n2\"}:upsert users:{\"id\":1}:delete users:{\"id\":3}:upsert");
    // And it syncs to a new file.
    Db peer(dir.File("peer.db"));
    peer.Exec("CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT, body TEXT);"
              "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)");
    peer.Text("SELECT syncline_track('notes')");
    peer.Text("SELECT syncline_track('users')");
    Sync(db, peer);
    EXPECT_EQ(peer.Dump("notes"), db.Dump("notes"));
    EXPECT_EQ(peer.Dump("users"), db.Dump("users"));
    // Upgraded in place to version 3: the column stamps' column, empty.
    EXPECT_EQ(db.Text("SELECT value FROM syncline_meta WHERE key = 'metadata_version'"), "3");
    EXPECT_EQ(db.Int("SELECT count(*) FROM syncline_rows WHERE cols IS NOT NULL"), 0);
    // A table switched to column merge there stamps its columns.
    db.Text("SELECT syncline_track('notes', '{\"merge\": \"column\"}')");
    db.Exec("UPDATE notes SET body = 'b3' WHERE id = 'n2'");
    EXPECT_EQ(db.Int("SELECT count(*) FROM syncline_rows WHERE hex(cols) LIKE '%04626F647900'"), 1);
  }
  EXPECT_EQ(std::filesystem::file_size(DataFile("v2.db")), size);
}

}  // namespace
}  // namespace syncline::test
