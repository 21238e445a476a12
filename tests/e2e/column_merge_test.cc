// Column-level merge end to end through the CLI (docs/column-merge.md): two
// devices clone a table the server merges by column, edit different fields
// of one note offline while the server updates another, and after syncing
// every replica holds all three edits. Devices learn the mode from the
// server's schema, also when it changes later.
#include <gtest/gtest.h>

#include "tests/e2e/e2e_harness.h"

namespace syncline::test {
namespace {

class ColumnMergeTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    server().Exec("CREATE TABLE notes(id uuid PRIMARY KEY, title text, body text, status text)");
    server().Text("SELECT syncline.track('notes', '{\"merge\": \"column\"}')");
  }

  std::string ServerNote(const std::string& id) {
    return Lines(server().Rows("SELECT title, body, status FROM notes WHERE id = $1", {id}));
  }
  std::string DeviceNote(Db& device, const std::string& id) {
    return Lines(SqliteRows(device, "SELECT title, body, status FROM notes WHERE id = '" + id + "'"));
  }
  std::string DeviceMerge(Db& device) {
    return Lines(SqliteRows(device, "SELECT coalesce(options ->> 'merge', 'row') FROM syncline_tables WHERE name = "
                                    "'notes'"));
  }
};

TEST_F(ColumnMergeTest, TitleBodyAndStatusEditedApartAreAllKept) {
  const std::string id = NewUuid();
  server().Exec("INSERT INTO notes VALUES ($1, 'title', 'body', 'open')", {id});
  const std::string laptop_file = ClientFile("laptop.db"), phone_file = ClientFile("phone.db");
  auto laptop = CloneDevice(laptop_file);
  auto phone = CloneDevice(phone_file);
  EXPECT_EQ(DeviceMerge(*laptop), "'column'\n") << "the clone tracks the table as the server does";

  // Offline: the laptop edits the title, the phone the body (later, and with
  // the stale title and status in its row); the server's job sets the status.
  laptop->Exec("UPDATE notes SET title = 'laptop title' WHERE id = '" + id + "'");
  phone->Exec("UPDATE notes SET body = 'phone body' WHERE id = '" + id + "'");
  server().Exec("UPDATE notes SET status = 'triaged' WHERE id = $1", {id});

  Sync(phone_file);
  Sync(laptop_file);
  Sync(phone_file);
  const std::string expected = "'laptop title', 'phone body', 'triaged'\n";
  EXPECT_EQ(ServerNote(id), expected);
  EXPECT_EQ(DeviceNote(*laptop, id), expected);
  EXPECT_EQ(DeviceNote(*phone, id), expected);
  EXPECT_EQ(StatusReport(laptop_file)["pending local"], "0 changes");
  EXPECT_EQ(StatusReport(phone_file)["pending local"], "0 changes");
}

// The later edit of a field wins, however many edits the other device made.
TEST_F(ColumnMergeTest, TheLatestEditWinsNotTheMostEdits) {
  const std::string id = NewUuid();
  server().Exec("INSERT INTO notes VALUES ($1, 'title', 'body', 'open')", {id});
  const std::string busy_file = ClientFile("busy.db"), late_file = ClientFile("late.db");
  auto busy = CloneDevice(busy_file);
  auto late = CloneDevice(late_file);
  for (int i = 0; i < 10; ++i)
    busy->Exec("UPDATE notes SET title = 'busy " + std::to_string(i) + "' WHERE id = '" + id + "'");
  // A later millisecond: within one, a stamp's counter orders the edits,
  // and the busy device's tenth is ahead of the late device's first.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  late->Exec("UPDATE notes SET title = 'late' WHERE id = '" + id + "'");
  Sync(late_file);
  Sync(busy_file);
  Sync(late_file);
  EXPECT_EQ(ServerNote(id), "'late', 'body', 'open'\n");
  EXPECT_EQ(DeviceNote(*busy, id), "'late', 'body', 'open'\n");
}

// The server switches a table to column merge after devices cloned it; they
// follow on their next sync and merge by column from then on.
TEST_F(ColumnMergeTest, DevicesFollowAChangeOfMode) {
  server().Exec("CREATE TABLE tasks(id int PRIMARY KEY, title text, done boolean)");
  server().Text("SELECT syncline.track('tasks')");
  server().Exec("INSERT INTO tasks VALUES (1, 'task', false)");
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  EXPECT_EQ(Lines(SqliteRows(*device, "SELECT coalesce(options ->> 'merge', 'row') FROM syncline_tables WHERE name "
                                      "= 'tasks'")),
            "'row'\n");
  server().Text("SELECT syncline.track('tasks', '{\"merge\": \"column\"}')");
  Sync(file);
  EXPECT_EQ(Lines(SqliteRows(*device, "SELECT coalesce(options ->> 'merge', 'row') FROM syncline_tables WHERE name "
                                      "= 'tasks'")),
            "'column'\n");
  device->Exec("UPDATE tasks SET title = 'renamed' WHERE id = 1");
  server().Exec("UPDATE tasks SET done = true WHERE id = 1");
  Sync(file);
  EXPECT_EQ(Lines(server().Rows("SELECT title, done::text FROM tasks")), "'renamed', 'true'\n");
  EXPECT_EQ(Lines(SqliteRows(*device, "SELECT title, done FROM tasks")), "'renamed', '1'\n");
}

// The server renames a column: it keeps its stamp on the server and on the
// device that follows, so an older edit of it made elsewhere still loses.
TEST_F(ColumnMergeTest, ARenamedColumnKeepsItsStamp) {
  const std::string id = NewUuid();
  server().Exec("INSERT INTO notes VALUES ($1, 'title', 'body', 'open')", {id});
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  device->Exec("UPDATE notes SET title = 'edited' WHERE id = '" + id + "'");
  Sync(file);
  server().Exec("ALTER TABLE notes RENAME COLUMN title TO heading");
  Sync(file);
  // The columns stamped below the row's version, as a format-2 page says.
  const std::string older_on_server =
      server().Text("SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_array_elements(syncline.pull_since(NULL, 10, "
                    "'{\"format\": 2}')::jsonb -> 'changes') c, jsonb_object_keys(c -> 'columns') k");
  const std::string older_on_device = device->Text(
      "SELECT group_concat(key, ',') FROM (SELECT key FROM json_each(json_extract(syncline_pull_since(NULL, 10, "
      "'{\"format\": 2}'), '$.changes[0].columns')) ORDER BY key)");
  EXPECT_EQ(older_on_server, "body,id,status");
  EXPECT_EQ(older_on_device, "body,id,status");
}

// A device behind the server's schema (offline across an added column and a
// rename) pushes rows that lack the new column and name the old one: the
// server maps the name, and the column the device lacks keeps the server's
// value and stamp.
TEST_F(ColumnMergeTest, ADeviceBehindTheSchemaTouchesNoColumnItLacks) {
  const std::string id = NewUuid();
  server().Exec("INSERT INTO notes VALUES ($1, 'title', 'body', 'open')", {id});
  const std::string file = ClientFile("device.db");
  auto device = CloneDevice(file);
  device->Exec("UPDATE notes SET title = 'offline title', body = 'offline body' WHERE id = '" + id + "'");
  server().Exec("ALTER TABLE notes ADD COLUMN priority int NOT NULL DEFAULT 0");
  server().Exec("ALTER TABLE notes RENAME COLUMN body TO text");
  server().Exec("UPDATE notes SET priority = 2 WHERE id = $1", {id});
  Sync(file);
  EXPECT_EQ(Lines(server().Rows("SELECT title, text, status, priority::text FROM notes")),
            "'offline title', 'offline body', 'open', '2'\n");
  EXPECT_EQ(Lines(SqliteRows(*device, "SELECT title, text, status, priority FROM notes")),
            "'offline title', 'offline body', 'open', '2'\n");
  EXPECT_EQ(StatusReport(file)["pending local"], "0 changes");
}

}  // namespace
}  // namespace syncline::test
