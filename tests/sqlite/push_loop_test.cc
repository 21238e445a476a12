// The push half of the sync loop in the extension (sqlite_extension/
// sync_loop.h): what a driver sends, and what it does with each answer.
// Another SQLite file plays the server's apply_push.
#include <gtest/gtest.h>

#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

class PushLoopTest : public ::testing::Test {
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

TEST_F(PushLoopTest, PagesGoOutUntilTheServerHasAcknowledgedEverything) {
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

TEST_F(PushLoopTest, APageThatNeedsTheNextIsMergedUntilItCannotGrow) {
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

TEST_F(PushLoopTest, ConcurrentWritesAreRetriedThreeTimesAndAStampAheadIsDeferred) {
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

TEST_F(PushLoopTest, CallsOutOfOrderAreClearErrors) {
  EXPECT_NE(device.Error("SELECT syncline_push_page()").find("syncline_push_page: no push in progress"),
            std::string::npos);
  device.Exec("SELECT syncline_push_begin(NULL)");
  EXPECT_NE(device.Error("SELECT syncline_push_answer('{}', NULL, NULL)").find("an answer with no page sent"),
            std::string::npos);
  EXPECT_NE(device.Error(R"(SELECT syncline_push_begin(NULL, '{"page_size": 0}'))").find("page_size"),
            std::string::npos);
}

}  // namespace
}  // namespace syncline::test
