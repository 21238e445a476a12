// Merges whose writes depend on each other: a UNIQUE value handed from one
// row to another (users.email), with foreign keys on. A batch lists one
// version per row in the order of each row's last local version, which is
// not always an order in which the rows can be written one by one; the merge
// must still apply every batch whose end state satisfies the constraints.
#include <memory>
#include <string>
#include <vector>

#include "tests/sqlite/harness.h"

namespace syncline::test {
namespace {

constexpr const char* kSchema =
    "PRAGMA foreign_keys = ON;"
    "CREATE TABLE users(id TEXT PRIMARY KEY, email TEXT UNIQUE NOT NULL);"
    "CREATE TABLE notes(id TEXT PRIMARY KEY, user_id TEXT REFERENCES users(id), body TEXT);";

std::string Id(const std::string& n) { return "00000000-0000-4000-8000-0000000000" + n; }

// A database file with the tracked tables users and notes.
std::unique_ptr<Db> Node(const TempDir& dir, const std::string& name) {
  auto db = std::make_unique<Db>(dir.File(name + ".db"));
  db->Exec(kSchema);
  db->Text("SELECT syncline_track('users')");
  db->Text("SELECT syncline_track('notes')");
  return db;
}

// Pulls what `from` has for `to` (excluding `to`'s own changes) since the
// last cursor `to` recorded from it, in one page: the batch as it travels.
std::string PullFor(Db& from, Db& to) {
  std::string options = "{\"exclude_origin\":\"" + to.NodeId() + "\"}";
  std::string cursor = to.Text("SELECT syncline_peer_cursor(?1, ?2)", {from.NodeId(), options});
  return cursor == "NULL" ? from.Text("SELECT syncline_pull_since(NULL, 1000, ?1)", {options})
                          : from.Text("SELECT syncline_pull_since(?1, 1000, ?2)", {cursor, options});
}

// The (table, op, id) of every change of a batch, to show its order.
std::string Order(Db& db, const std::string& batch) {
  return db.Text("SELECT group_concat(json_extract(value, '$.table') || ' ' || json_extract(value, '$.op') || ' ' || "
                 "substr(json_extract(value, '$.pk.id'), -2), ', ') FROM json_each(?1, '$.changes')",
                 {batch});
}

// Whether a row's metadata is a tombstone ("1"), live ("0"), or missing ("").
std::string Deleted(Db& db, const std::string& id) {
  return db.Text("SELECT coalesce((SELECT deleted FROM syncline_rows WHERE tid > 0 AND pk = syncline_key(?1)), '')",
                 {id});
}

// The device deletes u1, creates u2 with u1's email and a note of u2; the
// other node held u1. Synced in pages of every size: each page is a prefix
// of the device's order, in which every step is valid, so each applies.
TEST(UniqueHandOff, DeleteThenInsertInPagesOfEverySize) {
  for (int page : {1, 2, 3, 50}) {
    SCOPED_TRACE("pages of " + std::to_string(page));
    TempDir dir;
    auto device = Node(dir, "device"), server = Node(dir, "server");
    device->Exec("INSERT INTO users VALUES ('" + Id("a1") + "', 'x@x')");
    EXPECT_EQ(Sync(*device, *server), 1);
    device->Exec("DELETE FROM users WHERE id = '" + Id("a1") + "'; INSERT INTO users VALUES ('" + Id("a2") +
                 "', 'x@x'); INSERT INTO notes VALUES ('" + Id("a3") + "', '" + Id("a2") + "', 'hi')");
    EXPECT_EQ(Sync(*device, *server, page), 3);
    EXPECT_EQ(server->Dump("users"), "'" + Id("a2") + "'|'x@x'");
    EXPECT_EQ(server->Dump("notes"), device->Dump("notes"));
    EXPECT_EQ(Deleted(*server, Id("a1")), "1");
  }
}

// u1 moves from x@x to y@x, then u2 takes x@x, in one batch in that order.
TEST(UniqueHandOff, MoveThenTakeInOneBatch) {
  TempDir dir;
  auto device = Node(dir, "device"), server = Node(dir, "server");
  device->Exec("INSERT INTO users VALUES ('" + Id("e1") + "', 'x@x')");
  EXPECT_EQ(Sync(*device, *server), 1);
  device->Exec("UPDATE users SET email = 'y@x' WHERE id = '" + Id("e1") + "'; INSERT INTO users VALUES ('" + Id("e2") +
               "', 'x@x')");
  EXPECT_EQ(Sync(*device, *server), 2);
  EXPECT_EQ(server->Dump("users"), device->Dump("users"));
}

// The same hand-off, but u1 is edited again after u2 took its email: the
// device's own pull lists u2 (x@x) before u1's last version (z@x), because a
// pull gives each row once, at its last version. Written in that order, u2
// meets u1 still holding x@x. The batch's end state is valid (u1 z@x, u2
// x@x), so the apply must succeed: the merge orders writes by their
// dependencies, or retries the writes that did not fit once the others are
// done.
TEST(UniqueHandOff, TakenEmailListedBeforeTheEditThatFreedIt) {
  TempDir dir;
  auto device = Node(dir, "device"), server = Node(dir, "server");
  device->Exec("INSERT INTO users VALUES ('" + Id("f1") + "', 'x@x')");
  EXPECT_EQ(Sync(*device, *server), 1);
  device->Exec("UPDATE users SET email = 'y@x' WHERE id = '" + Id("f1") + "'; INSERT INTO users VALUES ('" + Id("f2") +
               "', 'x@x'); UPDATE users SET email = 'z@x' WHERE id = '" + Id("f1") + "'");
  std::string batch = PullFor(*device, *server);
  ASSERT_EQ(Order(*device, batch), "users upsert f2, users upsert f1") << "the scenario needs this order";
  std::string error = server->Error("SELECT syncline_apply_push(?1)", {batch});
  EXPECT_EQ(error, "") << "the batch's end state is valid";
  EXPECT_EQ(server->Dump("users"), device->Dump("users"));
}

// A relay lists the device's delete of u1 after u2 and its note: it relayed
// the device's changes (delete u1, insert u2 with u1's email, insert a note
// of u2), then received a newer delete of u1 from a second device, which
// moved u1's tombstone to a later local version. A third device that held u1
// pulls [u2 (x@x), note of u2, delete u1] from the relay. The versions are
// those of the one-batch hand-off, so the result must be too.
TEST(UniqueHandOff, RelayListsTheDeleteAfterTheInsert) {
  TempDir dir;
  auto device = Node(dir, "device"), relay = Node(dir, "relay"), other = Node(dir, "other"), third = Node(dir, "third");
  device->Exec("INSERT INTO users VALUES ('" + Id("b1") + "', 'x@x')");
  EXPECT_EQ(Sync(*device, *relay), 1);
  EXPECT_EQ(Sync(*relay, *other), 1);
  EXPECT_EQ(Sync(*relay, *third), 1);
  device->Exec("DELETE FROM users WHERE id = '" + Id("b1") + "'; INSERT INTO users VALUES ('" + Id("b2") +
               "', 'x@x'); INSERT INTO notes VALUES ('" + Id("b3") + "', '" + Id("b2") + "', 'hi')");
  EXPECT_EQ(Sync(*device, *relay), 3);
  // The second device deletes u1 too, later (its clock runs a second ahead,
  // so its delete is newer than the device's whatever the milliseconds).
  other->Text("SELECT syncline_config('clock_skew_ms', 1000)");
  other->Exec("DELETE FROM users WHERE id = '" + Id("b1") + "'");
  EXPECT_EQ(Sync(*other, *relay), 1);

  std::string batch = PullFor(*relay, *third);
  ASSERT_EQ(Order(*relay, batch), "users upsert b2, notes upsert b3, users delete b1")
      << "the scenario needs this order";
  std::string error = third->Error("SELECT syncline_apply_push(?1)", {batch});
  EXPECT_EQ(error, "") << "the batch's end state is valid";
  EXPECT_EQ(third->Dump("users"), "'" + Id("b2") + "'|'x@x'");
  EXPECT_EQ(third->Dump("notes"), relay->Dump("notes"));
  EXPECT_EQ(Deleted(*third, Id("b1")), "1");
  // (Split across pages, [u2, note] | [delete u1] has no valid first page:
  // two users would hold x@x when it commits.)
}

}  // namespace
}  // namespace syncline::test
