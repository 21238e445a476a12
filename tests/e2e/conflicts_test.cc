// Sync never stalls (docs/protocol.md, "Conflicts"): each case once stopped a
// device, or every device, for good. Through the CLI, two devices and a
// server: the refused change is logged on both sides, everything else flows,
// and every replica converges.
#include "tests/e2e/notes_app.h"

namespace syncline::test {
namespace {

class ConflictsTest : public NotesTest {
 protected:
  // A login role of this test's own (roles are the cluster's).
  std::string Role(const std::string& name) {
    const std::string role = name + "_" + DbName();
    server().Exec("CREATE ROLE " + role + " LOGIN");
    server().Exec("GRANT SELECT, INSERT, UPDATE, DELETE ON notes, comments TO " + role);
    return role;
  }
  ProcessResult CliAs(const std::string& role, const std::string& command, const std::string& file,
                      std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {command, "--db", file, "--server", Conninfo() + " user=" + role};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args);
  }
  // The CLI with its clock shifted (faketime's offset, "-10m", "+3h").
  ProcessResult CliAtClock(const std::string& offset, const std::string& command, const std::string& file) {
    std::vector<std::string> args = CliArgs(command, file);
    args.insert(args.begin(), {"faketime", "-f", offset});
    return RunProcess(args);
  }
  // A local write made with the clock shifted, as a device whose clock is
  // wrong makes it (the sqlite3 shell with the extension loaded).
  void WriteAtClock(const std::string& offset, const std::string& file, const std::string& sql) {
    ProcessResult result =
        RunProcess({"faketime", "-f", offset, "sqlite3", "-cmd", ".load " + ExtensionPath(), file, sql});
    ASSERT_EQ(result.exit_code, 0) << result.Describe();
  }
};

// 1. Two devices create rows with the same UNIQUE value under different keys.
// The second to push is refused on its own; its other changes go in, its row
// goes (a tombstone from the server), and every later sync succeeds.
TEST_F(ConflictsTest, SameUniqueValueOnTwoDevicesDoesNotStickTheSecond) {
  server().Exec("CREATE UNIQUE INDEX notes_title ON notes (org_id, title)");
  const std::string first_file = ClientFile("first.db"), second_file = ClientFile("second.db");
  Clone(first_file);
  // Scoped: the server's tombstone for the refused row carries its scope, or
  // this device's pull would never receive it.
  Clone(second_file, {"--scope", "7"});
  auto first = OpenClient(first_file);
  auto second = OpenClient(second_file);
  const std::string taken = ClientNote(*first, 7, "standup");
  const std::string clash = ClientNote(*second, 7, "standup");
  const std::string other = ClientNote(*second, 7, "retro");
  ASSERT_EQ(Cli("sync", first_file).exit_code, 0);
  ProcessResult result = Cli("sync", second_file, {"--json"});
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_NE(result.out.find("\"conflicts\":1"), std::string::npos) << result.Describe();
  EXPECT_EQ(ServerTitle(taken), "standup");
  EXPECT_EQ(ServerTitle(other), "retro");
  EXPECT_EQ(ServerTitle(clash), "gone");
  EXPECT_EQ(ClientTitle(*second, clash), "gone");
  for (const std::string& file : {first_file, second_file})
    ASSERT_EQ(Cli("sync", file).exit_code, 0);
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*first));
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*second));
  EXPECT_EQ(server().Text("SELECT sqlstate || ' ' || answer || ' ' || (\"row\"->>'title') FROM syncline.conflicts"),
            "23505 restamped standup");
  EXPECT_EQ(second->Text("SELECT side || ' ' || sqlstate FROM syncline_conflicts"), "server 23505");
  ProcessResult status = Cli("status", second_file, {"--json"});
  EXPECT_NE(status.out.find("\"open_conflicts\":1"), std::string::npos) << status.Describe();
  ProcessResult listed = Cli("conflicts", second_file);
  EXPECT_NE(listed.out.find("#1 "), std::string::npos) << listed.Describe();
  EXPECT_EQ(Cli("conflicts", second_file, {"--resolve", "1"}).exit_code, 0);
  EXPECT_EQ(Cli("conflicts", second_file).out, "no open conflicts\n");
}

// The same across pages: a page with more to come is refused whole (a later
// page might free the value), the client merges pages, and the last one
// refuses the clash on its own.
TEST_F(ConflictsTest, UniqueClashInAPushOfManyPagesIsRefusedOnItsOwn) {
  server().Exec("CREATE UNIQUE INDEX notes_title ON notes (org_id, title)");
  ServerNote(7, "standup");
  const std::string file = ClientFile("device.db");
  Clone(file);
  auto client = OpenClient(file);
  const std::string clash = ClientNote(*client, 7, "standup");
  std::vector<std::string> others;
  for (int i = 0; i < 5; ++i)
    others.push_back(ClientNote(*client, 7, "note " + std::to_string(i)));
  ProcessResult result = Cli("sync", file, {"--page", "2"});
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_NE(result.err.find("retrying with 4 changes a page"), std::string::npos) << result.Describe();
  for (const std::string& id : others)
    EXPECT_NE(ServerTitle(id), "gone");
  EXPECT_EQ(ServerTitle(clash), "gone");
  EXPECT_EQ(ClientTitle(*client, clash), "gone");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
}

// 3. A limit only the server has (a CHECK, here): the refused edit of an
// existing row gives way to the server's content, a refused new row goes.
TEST_F(ConflictsTest, ServerOnlyCheckRefusesOneChangeAndTheServerStateComesBack) {
  const std::string note = ServerNote(7, "short");
  server().Exec("ALTER TABLE notes ADD CONSTRAINT short_titles CHECK (length(title) < 20)");
  const std::string file = ClientFile("client.db");
  Clone(file);
  auto client = OpenClient(file);
  client->Exec("UPDATE notes SET title = 'a title far too long for the server' WHERE id = '" + note + "'");
  const std::string added = ClientNote(*client, 7, "another title too long for it");
  const std::string fine = ClientNote(*client, 7, "fine");
  ProcessResult result = Cli("sync", file);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_NE(result.out.find("2 new conflicts"), std::string::npos) << result.Describe();
  EXPECT_EQ(ClientTitle(*client, note), "short");
  EXPECT_EQ(ClientTitle(*client, added), "gone");
  EXPECT_EQ(ServerTitle(fine), "fine");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
  EXPECT_EQ(client->Text("SELECT group_concat(sqlstate) FROM syncline_conflicts"), "23514,23514");
}

// 4. A user loses access to an organisation while offline with edits there:
// the edits are refused and logged, the device drops the rows it may no
// longer see, and its other edits flow.
TEST_F(ConflictsTest, LostAccessWhileOfflineDoesNotStickTheDevice) {
  const std::string alice = Role("alice");
  server().Exec("CREATE TABLE members(member name, org int); GRANT SELECT ON members TO " + alice + ";" +
                "INSERT INTO members VALUES ('" + alice + "', 7), ('" + alice + "', 8);" +
                "ALTER TABLE notes ENABLE ROW LEVEL SECURITY;" +
                "CREATE POLICY member ON notes USING (org_id IN (SELECT org FROM members WHERE member = "
                "current_user))");
  const std::string kept = ServerNote(7, "org 7");
  const std::string lost = ServerNote(8, "org 8");
  const std::string file = ClientFile("alice.db");
  ProcessResult cloned = CliAs(alice, "clone", file);
  ASSERT_EQ(cloned.exit_code, 0) << cloned.Describe();
  auto client = OpenClient(file);
  client->Exec("UPDATE notes SET title = 'edited offline' WHERE id IN ('" + kept + "', '" + lost + "')");
  server().Exec("DELETE FROM members WHERE org = 8");
  ProcessResult result = CliAs(alice, "sync", file);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(ServerTitle(kept), "edited offline");
  EXPECT_EQ(ServerTitle(lost), "org 8");
  EXPECT_EQ(ClientTitle(*client, lost), "gone");
  EXPECT_EQ(client->Text("SELECT sqlstate || ' ' || forget FROM syncline_conflicts"), "42501 1");
  result = CliAs(alice, "sync", file);
  EXPECT_EQ(result.out, "synced: pushed 0, pulled 0\n") << result.Describe();
}

// 6. A phone whose clock is ten minutes slow still takes the server's
// changes (it refused every one as too far ahead before).
TEST_F(ConflictsTest, DeviceWithASlowClockStillSyncs) {
  const std::string file = ClientFile("slow.db");
  Clone(file);
  const std::string note = ServerNote(7, "from the server");
  ProcessResult result = CliAtClock("-10m", "sync", file);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  auto client = OpenClient(file);
  EXPECT_EQ(ClientTitle(*client, note), "from the server");
  // Its own edit, stamped after what it has seen, still wins on the server.
  client->Exec("UPDATE notes SET title = 'edited on the slow phone' WHERE id = '" + note + "'");
  result = CliAtClock("-10m", "sync", file);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(ServerTitle(note), "edited on the slow phone");
}

// 5 and 6. A clock a little fast: the push waits (and the pull goes on); far
// fast: the edit is refused into the log and the device takes the server's
// state, so no stamp from the future wins on the server.
TEST_F(ConflictsTest, DeviceWithAFastClockWaitsThenIsRefused) {
  const std::string note = ServerNote(7, "server title");
  const std::string file = ClientFile("fast.db");
  Clone(file);
  WriteAtClock("+10m", file, "UPDATE notes SET title = 'ten minutes ahead' WHERE id = '" + note + "'");
  const std::string later = ServerNote(7, "pulled meanwhile");
  ProcessResult result = CliAtClock("+10m", "sync", file);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_NE(result.err.find("push deferred"), std::string::npos) << result.Describe();
  EXPECT_EQ(ServerTitle(note), "server title");
  auto client = OpenClient(file);
  EXPECT_EQ(ClientTitle(*client, later), "pulled meanwhile");
  EXPECT_EQ(ClientTitle(*client, note), "ten minutes ahead");

  const std::string file2 = ClientFile("far.db");
  Clone(file2);
  WriteAtClock("+3h", file2, "UPDATE notes SET title = 'from the future' WHERE id = '" + note + "'");
  result = CliAtClock("+3h", "sync", file2);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(ServerTitle(note), "server title");
  auto far = OpenClient(file2);
  EXPECT_EQ(ClientTitle(*far, note), "server title");
  EXPECT_EQ(far->Text("SELECT sqlstate || ' ' || forget FROM syncline_conflicts"), "22023 1");
  // The server's row takes ordinary edits (its stamp is the server's).
  server().Exec("UPDATE notes SET title = 'edited on the server' WHERE id = $1", {note});
  EXPECT_EQ(ServerTitle(note), "edited on the server");
}

// 7. A role pushing under another device's node id with a cursor far ahead
// would make that device's pushes fail for good ("never issued"): refused.
TEST_F(ConflictsTest, ForgedAcknowledgementIsRefused) {
  const std::string alice = Role("alice"), mallory = Role("mallory");
  const std::string file = ClientFile("alice.db");
  ProcessResult cloned = CliAs(alice, "clone", file);
  ASSERT_EQ(cloned.exit_code, 0) << cloned.Describe();
  auto client = OpenClient(file);
  ClientNote(*client, 7, "first");
  ASSERT_EQ(CliAs(alice, "sync", file).exit_code, 0);
  const std::string node = client->Text("SELECT syncline_node_id()");
  const std::string forged = R"({"format":1,"source":")" + node + R"(","changes":[],"cursor":")" + node +
                             R"(:9bd29fc0bbf04a35:99999999","has_more":false})";
  server().Exec("SET ROLE " + mallory);
  std::string sqlstate;
  std::string error = server().TryExec("SELECT syncline.apply_push($1::text)", {forged}, &sqlstate);
  server().Exec("RESET ROLE");
  EXPECT_EQ(sqlstate, "42501") << error;
  EXPECT_NE(error.find("pushes as role \"" + alice + "\""), std::string::npos) << error;
  const std::string second = ClientNote(*client, 7, "second");
  ProcessResult result = CliAs(alice, "sync", file);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(ServerTitle(second), "second");
}

// 8. A page bigger than any reader accepts (64 MiB) cannot be made: pages
// are capped in bytes, so a clone of large rows completes.
TEST_F(ConflictsTest, LargeRowsArriveInPagesEveryReaderAccepts) {
  server().Exec("INSERT INTO notes SELECT gen_random_uuid(), 7, 'big ' || g, repeat('x', 8 << 20), now() "
                "FROM generate_series(1, 9) g");
  const std::string file = ClientFile("big.db");
  ProcessResult result = Cli("clone", file);
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  auto client = OpenClient(file);
  EXPECT_EQ(client->Text("SELECT count(*) || ' ' || sum(length(body)) FROM notes"), "9 " + std::to_string(9 << 23));
}

}  // namespace
}  // namespace syncline::test
