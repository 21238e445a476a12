// Garbage collection end to end through the CLI (docs/postgres.md and
// docs/client.md, "Garbage collection", "Resync"): after the server drops
// the tombstones of 100k deleted rows, its metadata is the live rows'; a
// device that was offline past the horizon resyncs on its own with its
// offline edits intact; a device that was current syncs on without one;
// devices drop their own tombstones once the server's collection has
// passed them.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/e2e/e2e_harness.h"

namespace syncline::test {
namespace {

class GcTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    server().Exec("CREATE TABLE notes(id int PRIMARY KEY, body text)");
    server().Text("SELECT syncline.track('notes')");
    server().Exec("INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 1000) g");
  }

  // `sync --json`'s answer.
  std::string Sync(const std::string& file) {
    ProcessResult result = Cli("sync", file, {"--json"});
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    return result.out;
  }

  std::string ServerNotes() { return Lines(server().Rows("SELECT id::text, body FROM notes ORDER BY notes.id")); }
  std::string DeviceNotes(Db& device) { return Lines(SqliteRows(device, "SELECT id, body FROM notes ORDER BY id")); }
  std::string Gc(const std::string& options) { return server().Text("SELECT syncline.gc($1)::text", {options}); }
  std::int64_t ServerCount(const std::string& sql) { return std::stoll(server().Text(sql)); }
};

TEST_F(GcTest, OfflineDeviceResyncsWithItsEditsAndCurrentDeviceSyncsOn) {
  const std::string offline_file = ClientFile("offline.db"), current_file = ClientFile("current.db");
  auto offline = CloneDevice(offline_file);
  auto current = CloneDevice(current_file);
  const std::string offline_node = offline->Text("SELECT syncline_node_id()");

  // Offline: an edit of a row the server keeps, an edit of one it deletes,
  // a new row.
  offline->Exec("UPDATE notes SET body = 'edited offline' WHERE id = 5;"
                "UPDATE notes SET body = 'edit of a deleted row' WHERE id = 7;"
                "INSERT INTO notes VALUES (300000, 'made offline')");
  // Meanwhile the server writes and deletes 100k rows, and deletes two of
  // the first ones; the current device keeps up.
  server().Exec("INSERT INTO notes SELECT g, 'temporary ' || g FROM generate_series(100001, 200000) g");
  server().Exec("DELETE FROM notes WHERE id > 100000");
  server().Exec("DELETE FROM notes WHERE id IN (7, 8)");
  Sync(current_file);
  EXPECT_EQ(ServerCount("SELECT count(*) FROM syncline.rows WHERE deleted"), 100002);

  // The offline device has not been seen for 40 days: it no longer holds
  // the horizon, and the tombstones go.
  server().Exec("UPDATE syncline.devices SET last_seen = now() - interval '40 days' WHERE node_id = $1",
                {offline_node});
  std::string result = Gc(R"({"min_age": "0"})");
  EXPECT_NE(result.find("\"collected\": 100002"), std::string::npos) << result;
  EXPECT_EQ(ServerCount("SELECT count(*) FROM syncline.rows"), ServerCount("SELECT count(*) FROM notes"))
      << "the server's metadata is the live rows'";

  // The current device syncs on, no resync.
  EXPECT_NE(Sync(current_file).find("\"resynced\":false"), std::string::npos);

  // The offline device resyncs on its own: its edit of a kept row and its
  // new row are on the server; its edit of a row deleted (and forgotten)
  // meanwhile is refused into its conflict log; the rows the server deleted
  // are gone from it.
  std::string answer = Sync(offline_file);
  EXPECT_NE(answer.find("\"resynced\":true"), std::string::npos) << answer;
  EXPECT_EQ(server().Text("SELECT body FROM notes WHERE id = 5"), "edited offline");
  EXPECT_EQ(server().Text("SELECT body FROM notes WHERE id = 300000"), "made offline");
  EXPECT_EQ(ServerCount("SELECT count(*) FROM notes WHERE id IN (7, 8)"), 0);
  EXPECT_EQ(server().Text("SELECT sqlstate FROM syncline.conflicts WHERE node_id = $1", {offline_node}), "SL001");
  EXPECT_PRED_FORMAT2(SameRows, ServerNotes(), DeviceNotes(*offline));
  ProcessResult conflicts = Cli("conflicts", offline_file);
  EXPECT_NE(conflicts.out.find("SL001"), std::string::npos) << conflicts.Describe();

  // Both converge with the server, and sync on quietly.
  Sync(current_file);
  EXPECT_PRED_FORMAT2(SameRows, ServerNotes(), DeviceNotes(*current));
  EXPECT_NE(Sync(offline_file).find("\"resynced\":false"), std::string::npos);
  EXPECT_PRED_FORMAT2(SameRows, ServerNotes(), DeviceNotes(*offline));
}

TEST_F(GcTest, DevicesCollectTheirTombstonesOnceTheServersCollectionPassesThem) {
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  device->Exec("DELETE FROM notes WHERE id <= 300");
  auto tombstones = [&] {
    return std::stoll(device->Text("SELECT count(*) FROM syncline_rows WHERE tid > 0 AND deleted"));
  };
  // Pushed and acknowledged: the device records where the server stood.
  Sync(file);
  EXPECT_EQ(tombstones(), 300);
  // status shows the checkpoint the next collection waits for.
  std::string status = Cli("status", file, {"--json"}).out;
  EXPECT_NE(status.find(R"("gc":{"collected_through":0,"next_through":)"), std::string::npos) << status;
  EXPECT_EQ(status.find(R"("next_once_server_bound_passes":null)"), std::string::npos) << status;
  // The server's collection has not passed that point (its tombstones are
  // younger than its 7 days): nothing goes.
  Gc("{}");
  std::string answer = Sync(file);
  EXPECT_NE(answer.find("\"collected\":0"), std::string::npos) << answer;
  EXPECT_EQ(tombstones(), 300);
  // Once a collection has passed it, the device drops them too.
  Gc(R"({"min_age": "0"})");
  answer = Sync(file);
  EXPECT_NE(answer.find("\"collected\":300"), std::string::npos) << answer;
  EXPECT_EQ(tombstones(), 0);
  EXPECT_EQ(ServerCount("SELECT count(*) FROM syncline.rows WHERE deleted"), 0);
  status = Cli("status", file).out;
  EXPECT_EQ(status.find("gc collected:   tombstones through local version 0\n"), std::string::npos) << status;
  EXPECT_NE(status.find("gc collected:   tombstones through local version "), std::string::npos) << status;
  // The device syncs on, both ways, with no resync.
  device->Exec("INSERT INTO notes VALUES (5000, 'after collection')");
  server().Exec("DELETE FROM notes WHERE id = 301");
  answer = Sync(file);
  EXPECT_NE(answer.find("\"resynced\":false"), std::string::npos) << answer;
  EXPECT_PRED_FORMAT2(SameRows, ServerNotes(), DeviceNotes(*device));
}

TEST_F(GcTest, DevicesViewShowsPullPositionsAndWhatHoldsTheHorizon) {
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  const std::string node = device->Text("SELECT syncline_node_id()");
  EXPECT_EQ(server().Text("SELECT pull_cursor FROM syncline.devices WHERE node_id = $1", {node}),
            device->Text("SELECT cursor FROM syncline_peers WHERE node_id = (SELECT value FROM syncline_client WHERE "
                         "key = 'server_node')"));
  server().Exec("DELETE FROM notes WHERE id <= 10");
  std::string held = Gc(R"({"min_age": "0", "dry_run": true})");
  EXPECT_NE(held.find(node), std::string::npos) << held;
  EXPECT_NE(held.find("\"collected\": 0"), std::string::npos) << held;
}

// A collection while a clone runs leaves the clone's next page below the new
// horizon: the clone finishes with a resync rather than fail and leave a
// half-filled file that clone refuses.
TEST_F(GcTest, ACollectionDuringACloneEndsInAResync) {
  const std::string role = "cloner_" + DbName();
  server().Exec("CREATE ROLE " + role + " LOGIN");
  server().Exec("GRANT SELECT ON notes TO " + role);
  // Reading each of the first 100 rows takes 20 ms as that role (row-level
  // security runs the policy per row): the clone's first pages take seconds.
  server().Exec("CREATE FUNCTION slow_read() RETURNS boolean LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_sleep(0.02); RETURN true; END $$");
  server().Exec("ALTER TABLE notes ENABLE ROW LEVEL SECURITY");
  server().Exec("CREATE POLICY slow ON notes FOR SELECT USING (id > 100 OR slow_read())");
  const std::string file = ClientFile("device.db");
  ProcessResult clone;
  std::thread cloning([&] {
    clone = RunCli({"clone", "--db", file, "--server", Conninfo() + " user=" + role, "--page", "50"});
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ServerCount("SELECT count(*) FROM pg_stat_activity WHERE usename = '" + role +
                     "' AND state = 'active' AND query LIKE '%pull_since%'") == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Rows the clone has not reached yet go, and so do their tombstones.
  server().Exec("DELETE FROM notes WHERE id > 900");
  const std::string collected = Gc(R"({"min_age": "0", "device_window": "0"})");
  cloning.join();
  EXPECT_NE(collected.find("\"collected\": 100"), std::string::npos) << collected;
  ASSERT_EQ(clone.exit_code, 0) << clone.Describe();
  EXPECT_NE(clone.err.find("resync"), std::string::npos) << clone.Describe();
  auto device = OpenClient(file);
  EXPECT_PRED_FORMAT2(SameRows, ServerNotes(), DeviceNotes(*device));
  EXPECT_NE(Sync(file).find("\"resynced\":false"), std::string::npos);
}

}  // namespace
}  // namespace syncline::test
