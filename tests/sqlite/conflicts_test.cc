// The device's side of conflicts (docs/sqlite.md, "Conflicts"): a batch from
// the server is applied with trusted stamps and what this file cannot store
// is logged and skipped, then applied again; the server's refusals are
// recorded once and the rows it says to drop are dropped, uncaptured, only at
// the refused version; entries are resubmitted and pruned.
#include "core/hlc.h"
#include "core/node_id.h"
#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

const std::string kServer = "9d2e8c4a-1b3f-4e5d-a6c7-b8d9e0f1a2b3";

std::string Hlc(long long offset_ms, int logical = 0) {
  return core::HlcToText(core::HlcFromPhysicalMs(core::WallClockMs() + offset_ms) + logical);
}

std::string Tag(const std::string& id, const std::string& name, const std::string& hlc) {
  return R"({"table":"tags","op":"upsert","pk":{"id":")" + id + R"("},"row":{"id":")" + id + R"(","name":")" + name +
         R"("},"clock":1,"hlc":")" + hlc + R"(","node":")" + kServer + R"("})";
}

std::string Batch(const std::vector<std::string>& changes) {
  std::string list;
  for (const auto& change : changes)
    list += (list.empty() ? "" : ",") + change;
  return R"({"format":1,"source":")" + kServer + R"(","changes":[)" + list + "]}";
}

class ConflictsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<Db>(dir_.File("device.db"));
    db_->Exec("CREATE TABLE tags(id TEXT PRIMARY KEY, name TEXT UNIQUE)");
    db_->Text("SELECT syncline_track('tags')");
  }
  std::string FromServer(const std::string& batch) {
    return db_->Text("SELECT syncline_apply_push(?1, '{\"from_server\":true}')", {batch});
  }
  TempDir dir_;
  std::unique_ptr<Db> db_;
};

TEST_F(ConflictsTest, ServerStampsAheadOfThisClockAreTrusted) {
  const std::string ahead = Hlc(24 * 3600 * 1000);
  const std::string batch = Batch({Tag("t1", "a", ahead)});
  // As any peer's batch, a stamp a day ahead is refused (its origin is the source)...
  EXPECT_NE(db_->Error("SELECT syncline_apply_push(?1)", {batch}).find("ahead of this node's clock"),
            std::string::npos);
  // ... but a device trusts its server, and its clock moves past the stamp.
  EXPECT_NE(FromServer(batch).find("\"applied\":1"), std::string::npos);
  db_->Exec("INSERT INTO tags VALUES ('t2', 'b')");
  EXPECT_GT(db_->Text("SELECT printf('%016x', hlc) FROM syncline_rows WHERE node = 0"), ahead);
}

TEST_F(ConflictsTest, WhatThisFileCannotStoreIsLoggedSkippedAndAppliedAgainLater) {
  db_->Exec("INSERT INTO tags VALUES ('mine', 'standup')");
  const std::string summary = FromServer(Batch({Tag("theirs", "standup", Hlc(-1000)), Tag("other", "retro", Hlc(-900)),
                                                R"({"table":"tags","op":"upsert","pk":{"id":"x"},"row":{"id":"x",)"
                                                R"("name":"n","colour":"red"},"clock":1,"hlc":")" +
                                                    Hlc(-800) + R"(","node":")" + kServer + R"("})"}));
  EXPECT_NE(summary.find("\"applied\":1"), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"change\":0,\"table\":\"tags\""), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"sqlstate\":\"23000\""), std::string::npos) << summary;
  EXPECT_NE(summary.find("unknown column \\\"colour\\\""), std::string::npos) << summary;
  EXPECT_EQ(db_->Text("SELECT group_concat(id) FROM (SELECT id FROM tags ORDER BY id)"), "mine,other");
  EXPECT_EQ(db_->Text("SELECT group_concat(side || ' ' || sqlstate, '; ') FROM syncline_conflicts"),
            "local 23000; local 42703");
  // Still held: applying again resolves nothing and logs nothing new.
  EXPECT_EQ(db_->Text("SELECT syncline_retry_conflicts()"), "0");
  EXPECT_EQ(db_->Text("SELECT count(*) FROM syncline_conflicts WHERE resolved_at IS NULL"), "2");
  // Once the value is free (the server's tombstone removed this device's
  // row), the version goes in.
  db_->Exec("DELETE FROM tags WHERE id = 'mine'");
  EXPECT_EQ(db_->Text("SELECT syncline_retry_conflicts()"), "1");
  EXPECT_EQ(db_->Text("SELECT name FROM tags WHERE id = 'theirs'"), "standup");
  EXPECT_EQ(db_->Text("SELECT count(*) FROM syncline_conflicts WHERE resolved_at IS NULL"), "1");
  // Applied versions are the server's, not local writes.
  EXPECT_EQ(db_->Text("SELECT count(*) FROM syncline_rows WHERE node = 0 AND pk LIKE '%theirs%'"), "0");
}

TEST_F(ConflictsTest, ForgetDropsTheRowOnlyAtTheRefusedVersionAndUncaptured) {
  db_->Exec("INSERT INTO tags VALUES ('t1', 'a')");
  const std::string hlc = db_->Text("SELECT printf('%016x', hlc) FROM syncline_rows WHERE node = 0");
  const std::string before = db_->Text("SELECT syncline_pull_since(NULL, 100, '{\"origin\":\"local\"}')");
  EXPECT_EQ(db_->Text("SELECT syncline_forget('tags', '{\"id\":\"t1\"}', '0000000000000001')"), "0");
  EXPECT_EQ(db_->Text("SELECT count(*) FROM tags"), "1");
  EXPECT_EQ(db_->Text("SELECT syncline_forget('tags', '{\"id\":\"t1\"}', ?1)", {hlc}), "1");
  EXPECT_EQ(db_->Text("SELECT count(*) FROM tags"), "0");
  // Not a local delete to push: the push queue moved not at all.
  const std::string cursor = db_->Text("SELECT json_extract(?1, '$.cursor')", {before});
  EXPECT_EQ(db_->Text("SELECT json_array_length(syncline_pull_since(?1, 100, '{\"origin\":\"local\"}'), '$.changes')",
                      {cursor}),
            "0");
  // Any version from the server beats what is left, even an older one.
  EXPECT_NE(FromServer(Batch({Tag("t1", "server's", Hlc(-3600 * 1000))})).find("\"applied\":1"), std::string::npos);
  EXPECT_EQ(db_->Text("SELECT name FROM tags"), "server's");
}

TEST_F(ConflictsTest, ServerEntriesAreRecordedOnceResubmittedAndPruned) {
  db_->Exec("INSERT INTO tags VALUES ('t1', 'a')");
  const std::string hlc = db_->Text("SELECT printf('%016x', hlc) FROM syncline_rows WHERE node = 0");
  const std::string entry = R"({"id":41,"table_name":"tags","pk":"{\"id\": \"t1\"}","op":"upsert",)"
                            R"("row":"{\"id\": \"t1\", \"name\": \"a\"}","hlc":")" +
                            hlc +
                            R"(","origin":"x","sqlstate":"42501","reason":"not yours","answer":"restamped",)"
                            R"("forget":true})";
  EXPECT_EQ(db_->Text("SELECT syncline_note_conflict(?1)", {entry}), "1");
  EXPECT_EQ(db_->Text("SELECT syncline_note_conflict(?1)", {entry}), "0");
  EXPECT_EQ(db_->Text("SELECT count(*) || ' ' || server_id || ' ' || side FROM syncline_conflicts"), "1 41 server");
  EXPECT_EQ(db_->Text("SELECT count(*) FROM tags"), "0");
  // Resubmitted, edited: a new local write, and the entry resolved.
  EXPECT_EQ(db_->Text("SELECT syncline_resubmit_conflict(1, '{\"id\":\"t1\",\"name\":\"fixed\"}')"), "1");
  EXPECT_EQ(db_->Text("SELECT name FROM tags"), "fixed");
  EXPECT_EQ(db_->Text("SELECT count(*) FROM syncline_rows WHERE node = 0 AND deleted = 0 AND hlc > 0"), "1");
  EXPECT_NE(db_->Error("SELECT syncline_resubmit_conflict(1)").find("no open conflict #1"), std::string::npos);
  // Pruning keeps recent entries and drops old resolved ones.
  EXPECT_EQ(db_->Text("SELECT syncline_prune_conflicts()"), "0");
  db_->Exec("UPDATE syncline_conflicts SET resolved_at = '2000-01-01T00:00:00.000Z'");
  EXPECT_EQ(db_->Text("SELECT syncline_prune_conflicts(30, 90)"), "1");
  EXPECT_NE(db_->Error("SELECT syncline_prune_conflicts(-1)").find("negative"), std::string::npos);
}

TEST_F(ConflictsTest, UnknownApplyOptionsAreErrors) {
  EXPECT_NE(db_->Error("SELECT syncline_apply_push(?1, '{\"trust\":true}')", {Batch({})}).find("unknown option"),
            std::string::npos);
  EXPECT_NE(db_->Error("SELECT syncline_apply_push(?1, '{\"from_server\":1}')", {Batch({})}).find("true or false"),
            std::string::npos);
}

}  // namespace
}  // namespace syncline::test
