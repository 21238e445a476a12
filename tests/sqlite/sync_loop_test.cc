// The sync loop in the extension (sqlite_extension/sync_loop.h): what a
// driver sends, and what it does with each answer. Another SQLite file
// plays the server.
#include <gtest/gtest.h>

#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

class SyncLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (Db* db : {&device, &server}) {
      db->Exec("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)");
      db->Exec("SELECT syncline_track('notes')");
    }
    device.Exec("INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e')");
  }

  // The next page's change count (-1: nothing left to push; the harness reads NULL as "NULL"), keeping its text in
  // `page`.
  long long NextPage() {
    page = device.Text("SELECT syncline_push_page()");
    return page == "NULL" ? -1 : std::stoll(device.Text("SELECT json_array_length(?1, '$.changes')", {page}));
  }
  std::string Answer(const std::string& summary) {
    return device.Text("SELECT syncline_push_answer(?1, NULL, NULL)", {summary});
  }
  std::string Refused(const std::string& sqlstate, const std::string& message) {
    return device.Text("SELECT syncline_push_answer(NULL, ?1, ?2)", {sqlstate, message});
  }

  TempDir dir;
  Db device{dir.File("device.db")};
  Db server{dir.File("server.db")};
  std::string page;
};

TEST_F(SyncLoopTest, PagesGoOutUntilTheServerHasAcknowledgedEverything) {
  device.Exec(R"(SELECT syncline_push_begin(NULL, '{"page_size": 2}'))");
  std::vector<std::string> actions;
  while (actions.size() < 10 && NextPage() >= 0) {
    std::string summary = server.Text("SELECT syncline_apply_push(?1)", {page});
    actions.push_back(
        device.Text("SELECT json_extract(?1, '$.action') || ':' || json_extract(?1, '$.applied')", {Answer(summary)}));
    if (actions.back().rfind("done", 0) == 0) break;
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"next:2", "next:2", "done:1"}));
  EXPECT_EQ(server.Int("SELECT count(*) FROM notes"), 5);
  // The acknowledgement is recorded: the next push has nothing to send.
  EXPECT_FALSE(device.Text("SELECT syncline_push_acked()").empty());
  device.Exec("SELECT syncline_push_begin(syncline_push_acked())");
  EXPECT_EQ(NextPage(), -1);
  device.Exec("INSERT INTO notes VALUES (6, 'later')");
  device.Exec("SELECT syncline_push_begin(syncline_push_acked())");
  EXPECT_EQ(NextPage(), 1);
}

TEST_F(SyncLoopTest, APageThatNeedsTheNextIsMergedUntilItCannotGrow) {
  device.Exec(R"(SELECT syncline_push_begin(NULL, '{"page_size": 2}'))");
  EXPECT_EQ(NextPage(), 2);
  std::string decision = Refused("23503", "insert or update violates foreign key constraint");
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.action')", {decision}), "merge");
  EXPECT_NE(decision.find("retrying with 4 changes a page"), std::string::npos) << decision;
  EXPECT_EQ(NextPage(), 4);
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.action')", {Refused("23503", "still")}), "merge");
  // All five fit: no more to come, so a refusal now is final.
  EXPECT_EQ(NextPage(), 5);
  decision = Refused("23503", "the parent is missing");
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.action') || '|' || json_extract(?1, '$.prefix')", {decision}),
            "failed|push: ");
}

TEST_F(SyncLoopTest, ConcurrentWritesAreRetriedThreeTimesAndAStampAheadIsDeferred) {
  device.Exec("SELECT syncline_push_begin(NULL)");
  for (int attempt = 0; attempt < 3; ++attempt) {
    EXPECT_EQ(NextPage(), 5);
    EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.action')", {Refused("40001", "could not serialize")}), "retry");
  }
  EXPECT_EQ(NextPage(), 5);
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.action')", {Refused("40P01", "deadlock detected")}), "failed");

  device.Exec("SELECT syncline_push_begin(NULL)");
  EXPECT_EQ(NextPage(), 5);
  std::string decision = Refused("55000", "a stamp is ahead of the server's clock");
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.action') || '|' || json_extract(?1, '$.log')", {decision}),
            "deferred|push deferred: a stamp is ahead of the server's clock");
  EXPECT_EQ(device.Text("SELECT syncline_push_acked()"), "NULL");  // nothing was acknowledged
}

TEST_F(SyncLoopTest, CallsOutOfOrderAreClearErrors) {
  EXPECT_NE(device.Error("SELECT syncline_push_page()").find("syncline_push_page: no push in progress"),
            std::string::npos);
  device.Exec("SELECT syncline_push_begin(NULL)");
  EXPECT_NE(device.Error("SELECT syncline_push_answer('{}', NULL, NULL)").find("an answer with no page sent"),
            std::string::npos);
  EXPECT_NE(device.Error(R"(SELECT syncline_push_begin(NULL, '{"page_size": 0}'))").find("page_size"),
            std::string::npos);
}

// Pulls from the other file as a device pulls from its server: requests as
// syncline_pull_begin and syncline_pull_next give them, pages applied with
// syncline_pull_apply; the results in order.
std::vector<std::string> PullAll(Db& device, Db& server, const std::string& options) {
  std::vector<std::string> results;
  std::string request = device.Text("SELECT syncline_pull_begin(?1, ?2)", {server.NodeId(), options});
  while (request != "NULL" && results.size() < 20) {
    std::string cursor = device.Text("SELECT json_extract(?1, '$.cursor')", {request});
    std::string page =
        server.Text(cursor == "NULL"
                        ? "SELECT syncline_pull_since(NULL, json_extract(?1, '$.limit'), json_extract(?1, '$.options'))"
                        : "SELECT syncline_pull_since(json_extract(?1, '$.cursor'), json_extract(?1, '$.limit'), "
                          "json_extract(?1, '$.options'))",
                    {request});
    request = device.Text("SELECT syncline_pull_next(?1)", {page});
    results.push_back(device.Text("SELECT syncline_pull_apply(?1)", {page}));
  }
  return results;
}

TEST_F(SyncLoopTest, APullAppliesPagesAndCommitsAtTheEnd) {
  server.Exec("INSERT INTO notes VALUES (10, 'x'), (11, 'y'), (12, 'z')");
  const std::string request =
      device.Text("SELECT syncline_pull_begin(?1, '{\"page_size\": 2, \"legacy_schema\": true}')", {server.NodeId()});
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.cursor') IS NULL", {request}), "1");
  EXPECT_EQ(device.Text("SELECT json_extract(json_extract(?1, '$.options'), '$.exclude_origin')", {request}),
            device.NodeId());
  device.Exec("BEGIN");
  std::vector<std::string> results = PullAll(device, server, R"({"page_size": 2, "legacy_schema": true})");
  device.Exec("COMMIT");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.commit') || json_extract(?1, '$.last') || "
                        "json_extract(?1, '$.summary.applied')",
                        {results[0]}),
            "002");
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.commit') || json_extract(?1, '$.last') || "
                        "json_extract(?1, '$.summary.applied')",
                        {results[1]}),
            "111");
  EXPECT_EQ(device.Int("SELECT count(*) FROM notes WHERE id >= 10"), 3);
  // The usual pulls' cursor is where this one ended: the next has nothing.
  EXPECT_NE(device.Text("SELECT syncline_pull_cursor(?1)", {server.NodeId()}), "NULL");
  device.Exec("BEGIN");
  results = PullAll(device, server, R"({"legacy_schema": true})");
  device.Exec("COMMIT");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.summary.applied')", {results[0]}), "0");
}

TEST_F(SyncLoopTest, AResyncKeepsUnacknowledgedRowsAndDropsWhatTheServerLacks) {
  server.Exec("INSERT INTO notes VALUES (10, 'x')");
  device.Exec("BEGIN");
  PullAll(device, server, R"({"legacy_schema": true})");
  device.Exec("COMMIT");
  // The server loses row 10 without a tombstone the device could pull (a
  // collection); the device's own rows 1-5 were never acknowledged.
  server.Exec("SELECT syncline_untrack('notes')");
  server.Exec("DELETE FROM notes WHERE id = 10");
  server.Exec("SELECT syncline_track('notes')");
  server.Exec("INSERT INTO notes VALUES (11, 'new')");
  device.Exec("BEGIN");
  std::vector<std::string> results = PullAll(device, server, R"({"resync": true, "legacy_schema": true})");
  device.Exec("COMMIT");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.resync.rows_deleted')", {results[0]}), "1") << results[0];
  EXPECT_EQ(device.Text("SELECT group_concat(id) FROM (SELECT id FROM notes ORDER BY id)"), "1,2,3,4,5,11");
}

TEST_F(SyncLoopTest, PullCallsOutOfOrderAreClearErrors) {
  EXPECT_NE(device.Error("SELECT syncline_pull_apply('{}')").find("syncline_pull_apply: no pull in progress"),
            std::string::npos);
  EXPECT_NE(device.Error("SELECT syncline_pull_begin('not-a-node')").find("is not a UUID"), std::string::npos);
}

TEST_F(SyncLoopTest, AFileWithAColumnMergeTablePullsAndPushesFormatTwo) {
  const std::string server_node = server.NodeId();
  auto request_options = [&] {
    return device.Text("SELECT json_extract(syncline_pull_begin(?1, '{}'), '$.options')", {server_node});
  };
  EXPECT_EQ(request_options().find("format"), std::string::npos);  // only where it is needed
  device.Exec("SELECT syncline_track('notes', '{\"merge\": \"column\"}')");
  EXPECT_NE(request_options().find("\"format\":2"), std::string::npos) << request_options();
  device.Exec("UPDATE notes SET body = 'edited' WHERE id = 1");
  device.Exec("SELECT syncline_push_begin(NULL, '{\"page_size\": 10}')");
  EXPECT_EQ(NextPage(), 5);
  EXPECT_EQ(device.Text("SELECT json_extract(?1, '$.format')", {page}), "2");
  EXPECT_NE(page.find("\"columns\":{\"id\""), std::string::npos) << page;
}

}  // namespace
}  // namespace syncline::test
