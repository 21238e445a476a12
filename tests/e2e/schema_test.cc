// Schema changes while devices sync, end to end through the CLI
// (docs/postgres.md and docs/client.md, "Schema changes"): the server
// migrates, devices follow on their next sync, also when they were offline
// across several migrations, while they watch, and when they push edits
// made before the migration; an extension updated from 0.1 keeps its
// devices.
#include <gtest/gtest.h>

#include "tests/e2e/e2e_harness.h"

namespace syncline::test {
namespace {

constexpr double kDeadline = 20;  // seconds a watcher has to follow

class SchemaTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    server().Exec("CREATE TABLE notes(id uuid PRIMARY KEY, title text);"
                  "CREATE TABLE tags(id int PRIMARY KEY, label text)");
    server().Text("SELECT syncline.track('notes')");
    server().Text("SELECT syncline.track('tags')");
  }

  std::string ServerNote(const std::string& title) {
    std::string id = NewUuid();
    server().Exec("INSERT INTO notes (id, title) VALUES ($1, $2)", {id, title});
    return id;
  }

  // A table's columns, in order, as "name type" lines.
  std::string DeviceColumns(Db& device, const std::string& table) {
    return Lines(SqliteRows(device, "SELECT name FROM pragma_table_info('" + table + "') ORDER BY cid"));
  }
  std::string ServerColumns(const std::string& table) {
    return Lines(server().Rows("SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                               "AND NOT attisdropped ORDER BY attnum",
                               {table}));
  }
  // The rows of a table, every column as text, in key order.
  std::string ServerRows(const std::string& table, const std::string& columns) {
    return Lines(server().Rows("SELECT " + columns + " FROM " + table + " ORDER BY 1"));
  }
  std::string DeviceRows(Db& device, const std::string& table, const std::string& columns) {
    return Lines(SqliteRows(device, "SELECT " + columns + " FROM " + table + " ORDER BY 1"));
  }
  // Local changes not yet pushed.
  std::string Pending(const std::string& file) { return StatusReport(file)["pending local"]; }
};

// The server adds a column (a constant default); a device that cloned before
// follows on its next sync, and both sides write the column from then on.
TEST_F(SchemaTest, ServerAddsAColumn) {
  const std::string before = ServerNote("before");
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  server().Exec("ALTER TABLE notes ADD COLUMN body text NOT NULL DEFAULT ''");
  const std::string after = ServerNote("after");
  server().Exec("UPDATE notes SET body = 'server body' WHERE id = $1", {after});

  Sync(file);
  EXPECT_EQ(DeviceColumns(*device, "notes"), ServerColumns("notes"));
  EXPECT_PRED_FORMAT2(SameRows, ServerRows("notes", "id::text, title, body"),
                      DeviceRows(*device, "notes", "id, title, body"));
  device->Exec("UPDATE notes SET body = 'device body' WHERE id = '" + before + "'");
  Sync(file);
  EXPECT_EQ(server().Text("SELECT body FROM notes WHERE id = $1", {before}), "device body");
  EXPECT_EQ(Pending(file), "0 changes");
}

// Offline across two migrations, with edits made before them: the device's
// push names the old table and columns and lacks the new ones; the server
// maps and fills them, and the device lands on the current schema with the
// server's content.
TEST_F(SchemaTest, DeviceOfflineAcrossTwoMigrations) {
  const std::string a = ServerNote("a"), b = ServerNote("b");
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  device->Exec("UPDATE notes SET title = 'edited offline' WHERE id = '" + a + "'");
  device->Exec("INSERT INTO tags VALUES (1, 'offline tag')");

  server().Exec("ALTER TABLE notes ADD COLUMN body text DEFAULT 'empty'");
  server().Exec("ALTER TABLE notes RENAME COLUMN title TO heading");
  server().Exec("UPDATE notes SET body = 'server body' WHERE id = $1", {b});
  // The second migration: a table renamed, a column whose default devices
  // cannot work out.
  server().Exec("ALTER TABLE tags RENAME TO labels");
  server().Exec("ALTER TABLE notes ADD COLUMN created timestamptz DEFAULT now()");

  Sync(file);
  EXPECT_EQ(server().Text("SELECT heading || '/' || body FROM notes WHERE id = $1", {a}), "edited offline/empty")
      << "the offline edit of a renamed column lands, the column it lacked keeps the server's value";
  EXPECT_EQ(server().Text("SELECT heading || '/' || body FROM notes WHERE id = $1", {b}), "b/server body");
  EXPECT_EQ(server().Text("SELECT label FROM labels WHERE id = 1"), "offline tag");
  EXPECT_EQ(DeviceColumns(*device, "notes"), ServerColumns("notes"));
  EXPECT_EQ(DeviceColumns(*device, "labels"), ServerColumns("labels"));
  EXPECT_PRED_FORMAT2(SameRows, ServerRows("notes", "id::text, heading, body, created::text"),
                      DeviceRows(*device, "notes", "id, heading, body, created"));
  EXPECT_PRED_FORMAT2(SameRows, ServerRows("labels", "id::text, label"), DeviceRows(*device, "labels", "id, label"));
  Sync(file);
  EXPECT_EQ(Pending(file), "0 changes");
}

// A column the server dropped: the device's edit of it is ignored, its
// edits of the other columns land, and the device drops it too.
TEST_F(SchemaTest, OldDevicePushesADroppedColumn) {
  server().Exec("ALTER TABLE notes ADD COLUMN color text");
  const std::string a = ServerNote("a");
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  device->Exec("UPDATE notes SET title = 'device title', color = 'red' WHERE id = '" + a + "'");
  server().Exec("ALTER TABLE notes DROP COLUMN color");

  Sync(file);
  EXPECT_EQ(server().Text("SELECT title FROM notes WHERE id = $1", {a}), "device title");
  EXPECT_EQ(DeviceColumns(*device, "notes"), ServerColumns("notes"));
  EXPECT_PRED_FORMAT2(SameRows, ServerRows("notes", "id::text, title"), DeviceRows(*device, "notes", "id, title"));
}

// A watching device follows a migration within seconds (the schema change
// notifies), although no row changed.
TEST_F(SchemaTest, WatchingDeviceFollowsAMigration) {
  ServerNote("a");
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  Process watch(CliArgs("sync", file, {"--watch", "--interval", "600"}));
  Sleep(500);
  server().Exec("ALTER TABLE notes ADD COLUMN body text DEFAULT 'x'");
  EXPECT_TRUE(WaitFor([&] { return DeviceColumns(*device, "notes") == ServerColumns("notes"); }, kDeadline))
      << watch.Stderr();
  const std::string b = ServerNote("b");
  server().Exec("UPDATE notes SET body = 'new' WHERE id = $1", {b});
  EXPECT_TRUE(
      WaitFor([&] { return device->Text("SELECT coalesce((SELECT body FROM notes WHERE id = ?1), '')", {b}) == "new"; },
              kDeadline))
      << watch.Stderr();
  watch.Signal(SIGTERM);
  watch.Wait(10);
}

// A table dropped on the server: the device keeps its copy, stops syncing
// it, and the other tables sync on.
TEST_F(SchemaTest, DroppedTableEndsCleanly) {
  server().Exec("INSERT INTO tags VALUES (1, 'kept')");
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  server().Exec("DROP TABLE tags");
  const std::string a = ServerNote("after the drop");
  Sync(file);
  EXPECT_EQ(device->Text("SELECT label FROM tags WHERE id = 1"), "kept");
  EXPECT_EQ(device->Text("SELECT count(*) FROM syncline_tables WHERE name = 'tags'"), "0");
  EXPECT_EQ(device->Text("SELECT title FROM notes WHERE id = ?1", {a}), "after the drop");
  device->Exec("INSERT INTO tags VALUES (2, 'local only')");
  device->Exec("UPDATE notes SET title = 'still syncing' WHERE id = '" + a + "'");
  Sync(file);
  EXPECT_EQ(server().Text("SELECT title FROM notes WHERE id = $1", {a}), "still syncing");
}

// A server on syncline 0.1 with devices, updated to 0.2 under them: the
// devices keep syncing, then follow the first schema change.
TEST_F(SchemaTest, ExtensionUpdateKeepsItsDevices) {
  server().Exec("DROP TABLE notes, tags; DROP EXTENSION syncline; CREATE EXTENSION syncline VERSION '0.1';"
                "CREATE TABLE notes(id uuid PRIMARY KEY, title text)");
  server().Text("SELECT syncline.track('notes')");
  const std::string a = ServerNote("on 0.1");
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  device->Exec("UPDATE notes SET title = 'device on 0.1' WHERE id = '" + a + "'");
  Sync(file);
  EXPECT_EQ(server().Text("SELECT title FROM notes WHERE id = $1", {a}), "device on 0.1");

  server().Exec("ALTER EXTENSION syncline UPDATE");
  EXPECT_EQ(server().Text("SELECT extversion FROM pg_extension WHERE extname = 'syncline'"), "0.2");
  device->Exec("UPDATE notes SET title = 'device on 0.2' WHERE id = '" + a + "'");
  const std::string b = ServerNote("on 0.2");
  Sync(file);
  EXPECT_EQ(server().Text("SELECT title FROM notes WHERE id = $1", {a}), "device on 0.2");
  EXPECT_EQ(device->Text("SELECT title FROM notes WHERE id = ?1", {b}), "on 0.2");

  server().Exec("ALTER TABLE notes ADD COLUMN body text DEFAULT 'b'");
  Sync(file);
  EXPECT_EQ(DeviceColumns(*device, "notes"), ServerColumns("notes"));
  EXPECT_PRED_FORMAT2(SameRows, ServerRows("notes", "id::text, title, body"),
                      DeviceRows(*device, "notes", "id, title, body"));
}

// pg_dump and a restore into a new database (a server replaced by its
// backup): tracking is keyed by relation, dumped as the table's name, so the
// restored server follows DDL and keeps the devices of the original.
TEST_F(SchemaTest, RestoredServerKeepsTrackingAndItsDevices) {
  const std::string a = ServerNote("before the dump");
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  const std::string dump = ClientFile("server.sql");
  ProcessResult dumped = RunProcess({"pg_dump", "-f", dump, DbName()});
  ASSERT_EQ(dumped.exit_code, 0) << dumped.Describe();
  const std::string restored_name = DbName() + "_restored";
  Pg admin;
  admin.Exec("CREATE DATABASE " + restored_name + " TEMPLATE template0 ENCODING 'UTF8'");
  ProcessResult restored_run = RunProcess({"psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", restored_name, "-f", dump});
  ASSERT_EQ(restored_run.exit_code, 0) << restored_run.Describe();
  {
    Pg restored(restored_name);
    EXPECT_EQ(restored.Text("SELECT string_agg(relid::text, ',' ORDER BY tid) FROM syncline.tables"), "notes,tags");
    EXPECT_EQ(restored.Text("SELECT syncline.schema_version()"), server().Text("SELECT syncline.schema_version()"));
    restored.Exec("ALTER TABLE notes RENAME COLUMN title TO heading");
    restored.Exec("UPDATE notes SET heading = 'on the restored server' WHERE id = $1", {a});

    ProcessResult result = RunCli({"sync", "--db", file, "--server", "dbname=" + restored_name});
    ASSERT_EQ(result.exit_code, 0) << result.Describe();
    EXPECT_EQ(device->Text("SELECT heading FROM notes WHERE id = ?1", {a}), "on the restored server");
  }
  admin.Exec("DROP DATABASE " + restored_name + " WITH (FORCE)");
}

}  // namespace
}  // namespace syncline::test
