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

}  // namespace
}  // namespace syncline::test
