// The `syncline` CLI end to end: a real server (tests/pg/with_cluster.sh),
// real SQLite client files, the real binary as a child process
// (docs/protocol.md for the rules these scenarios check).
#include <csignal>
#include <filesystem>
#include <iostream>
#include <random>
#include <regex>

#include "tests/e2e/notes_app.h"

namespace syncline::test {
namespace {

// Writes on different nodes this far apart get stamps in this order
// (the HLC's physical part is milliseconds).
void Later() { Sleep(20); }

// The numbers in "cloned: N changes in P pages".
bool ParseCloned(const std::string& out, long long* changes, long long* pages) {
  std::smatch match;
  if (!std::regex_search(out, match, std::regex(R"(cloned: (\d+) changes in (\d+) pages)"))) return false;
  *changes = std::stoll(match[1]);
  *pages = std::stoll(match[2]);
  return true;
}

// 1. An empty client gets the server's full state.
TEST_F(NotesTest, CloneLoadsEverything) {
  std::vector<std::string> notes;
  for (int i = 0; i < 20; ++i)
    notes.push_back(ServerNote(i % 2 ? 7 : 8, "note " + std::to_string(i)));
  // Awkward values: NULLs, quotes, newlines, Unicode, fractional timestamps.
  std::string odd = NewUuid();
  server().Exec("INSERT INTO notes VALUES ($1, 7, NULL, $2, '2026-03-01 12:00:00.123456+05:30')",
                {odd, "l'été ✓\nline \"2\"\t|, "});
  server().Exec("INSERT INTO notes VALUES ($1, 9, '', NULL, NULL)", {NewUuid()});
  for (int i = 0; i < 20; ++i)
    ServerComment(notes[i], i % 2 ? 7 : 8, "comment " + std::to_string(i));
  // Parents edited after their children: a pull meets the comment first.
  server().Exec("UPDATE notes SET body = 'edited after its comment' WHERE id = ANY($1::uuid[])",
                {"{" + notes[0] + "," + notes[5] + "," + notes[19] + "}"});
  // A deleted row leaves a tombstone, which a clone receives too.
  std::string gone = ServerNote(7, "deleted before the clone");
  server().Exec("DELETE FROM notes WHERE id = $1", {gone});

  const std::string file = ClientFile("client.db");
  ProcessResult result = Cli("clone", file);
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  long long changes = 0, pages = 0;
  ASSERT_TRUE(ParseCloned(result.out, &changes, &pages)) << result.Describe();
  EXPECT_EQ(changes, 22 + 20 + 1) << "rows and the tombstone";
  auto client = OpenClient(file);
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
  EXPECT_EQ(client->Text("SELECT body FROM notes WHERE id = ?1", {odd}), "l'été ✓\nline \"2\"\t|, ");
  EXPECT_EQ(client->Text("SELECT updated_at FROM notes WHERE id = ?1", {odd}), "2026-03-01 06:30:00.123456+00");
  // (The metadata key of a UUID is a compact blob: syncline_key encodes it.)
  EXPECT_EQ(client->Text("SELECT deleted FROM syncline_rows WHERE pk = syncline_key(?1)", {gone}), "1");
  EXPECT_EQ(client->Text("PRAGMA foreign_key_check"), "");

  // Small pages put comments in earlier pages than the notes they need.
  const std::string paged = ClientFile("paged.db");
  result = Cli("clone", paged, {"--page", "3"});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  ASSERT_TRUE(ParseCloned(result.out, &changes, &pages)) << result.Describe();
  EXPECT_GE(pages, 43 / 3);
  auto paged_client = OpenClient(paged);
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*paged_client));
  EXPECT_EQ(paged_client->Text("PRAGMA foreign_key_check"), "");

  // A clone never writes into a file that already holds tables.
  result = Cli("clone", file);
  EXPECT_EQ(result.exit_code, 1) << result.Describe();
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
  ExpectQuiet(file);
}

// 2. Last writer wins, whichever side wrote last.
TEST_F(NotesTest, LaterWriteWinsOnEitherSide) {
  const std::string x = ServerNote(7, "x"), y = ServerNote(7, "y"), z = ServerNote(7, "z");
  const std::string file = ClientFile("client.db");
  Clone(file);
  auto client = OpenClient(file);

  client->Exec("UPDATE notes SET title = 'x by client, earlier' WHERE id = '" + x + "'");
  Later();
  server().Exec("UPDATE notes SET title = 'x by server, later' WHERE id = $1", {x});
  server().Exec("UPDATE notes SET title = 'y by server, earlier', body = 'server body' WHERE id = $1", {y});
  Later();
  client->Exec("UPDATE notes SET title = 'y by client, later' WHERE id = '" + y + "'");
  // Only one side touches z: kept either way.
  client->Exec("UPDATE notes SET body = NULL WHERE id = '" + z + "'");

  std::string out = SyncOk(file);
  EXPECT_EQ(ServerTitle(x), "x by server, later");
  EXPECT_EQ(ClientTitle(*client, x), "x by server, later");
  EXPECT_EQ(ServerTitle(y), "y by client, later");
  EXPECT_EQ(ClientTitle(*client, y), "y by client, later");
  // The whole row wins: the client's later y keeps its own body.
  EXPECT_EQ(server().Text("SELECT body FROM notes WHERE id = $1", {y}), "body");
  EXPECT_EQ(server().Text("SELECT body FROM notes WHERE id = $1", {z}), "NULL");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
  ExpectQuiet(file);
}

// 3. Offline: the server is down, the client keeps writing; the failed sync
// loses nothing and the next one, with the server back, delivers it all.
TEST_F(NotesTest, OfflineWritesReachTheServerWhenItReturns) {
  if (!HavePgCtl()) GTEST_SKIP() << "SYNCLINE_PG_CTL is not set (run under tests/pg/with_cluster.sh)";
  const std::string kept = ServerNote(7, "kept"), edited = ServerNote(7, "edited"), deleted = ServerNote(7, "deleted");
  const std::string file = ClientFile("client.db");
  Clone(file);
  auto client = OpenClient(file);

  std::vector<std::string> added;
  {
    ServerOutage outage;
    ASSERT_TRUE(outage.down()) << "could not stop the server";
    for (int i = 0; i < 3; ++i)
      added.push_back(ClientNote(*client, 7, "offline " + std::to_string(i)));
    ClientComment(*client, added[0], 7, "offline comment");
    client->Exec("UPDATE notes SET title = 'edited offline' WHERE id = '" + edited + "'");
    client->Exec("DELETE FROM notes WHERE id = '" + deleted + "'");
    const std::string before = ClientDump(*client);

    ProcessResult result = Cli("sync", file);
    EXPECT_EQ(result.exit_code, 3) << result.Describe();
    EXPECT_NE(result.err.find("cannot connect"), std::string::npos) << result.err;
    EXPECT_PRED_FORMAT2(SameRows, ClientDump(*client), before);
    EXPECT_EQ(StatusReport(file)["pending local"], "6 changes");
    // A clone needs the server too (and may be retried once it is back).
    result = Cli("clone", ClientFile("other.db"));
    EXPECT_EQ(result.exit_code, 3) << result.Describe();
    // And a second failed attempt changes nothing either.
    EXPECT_EQ(Cli("sync", file).exit_code, 3);
    EXPECT_PRED_FORMAT2(SameRows, ClientDump(*client), before);
    ASSERT_TRUE(outage.End()) << "could not restart the server";
  }
  Reconnect();
  SyncOk(file);
  for (const std::string& id : added)
    EXPECT_EQ(ServerTitle(id), ClientTitle(*client, id));
  EXPECT_EQ(ServerTitle(edited), "edited offline");
  EXPECT_EQ(ServerTitle(deleted), "gone");
  EXPECT_EQ(ServerTitle(kept), "kept");
  EXPECT_EQ(server().Text("SELECT count(*) FROM comments"), "1");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
  EXPECT_EQ(StatusReport(file)["pending local"], "0 changes");
  ExpectQuiet(file);
  Clone(ClientFile("other.db"));
  auto other = OpenClient(ClientFile("other.db"));
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*other));

  // The server goes down in the middle of a sync (while it applies the
  // push): the sync fails as unreachable, and the next one delivers it all.
  const std::string late = ClientNote(*client, 7, "pushed while the server stops");
  {
    Pg locker(DbName());
    locker.Exec("BEGIN; LOCK TABLE notes IN EXCLUSIVE MODE");
    Process sync(CliArgs("sync", file));
    ASSERT_TRUE(WaitFor(
        [&] {
          return server().Text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock' AND query LIKE '%apply_push%'") != "0";
        },
        20))
        << "the push never reached the server";
    ServerOutage outage;
    ASSERT_TRUE(outage.down()) << "could not stop the server";
    ProcessResult result = sync.Wait(30);
    EXPECT_EQ(result.exit_code, 3) << result.Describe();
    ASSERT_TRUE(outage.End()) << "could not restart the server";
  }
  Reconnect();
  EXPECT_EQ(ServerTitle(late), "gone");
  SyncOk(file);
  EXPECT_EQ(ServerTitle(late), "pushed while the server stops");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
}

// 4. Two clients and the server edit at the same time; after syncing they
// hold one state, the latest write of every row.
TEST_F(NotesTest, ConcurrentEditsOnTwoClientsAndServerConverge) {
  std::vector<std::string> r;
  for (int i = 0; i < 5; ++i)
    r.push_back(ServerNote(7, "r" + std::to_string(i)));
  const std::string a_file = ClientFile("a.db"), b_file = ClientFile("b.db");
  Clone(a_file);
  Clone(b_file);
  auto a = OpenClient(a_file);
  auto b = OpenClient(b_file);

  // r0: A, then the server, then B: B's wins.
  a->Exec("UPDATE notes SET title = 'r0 by A' WHERE id = '" + r[0] + "'");
  Later();
  server().Exec("UPDATE notes SET title = 'r0 by server' WHERE id = $1", {r[0]});
  Later();
  b->Exec("UPDATE notes SET title = 'r0 by B' WHERE id = '" + r[0] + "'");
  // r1: the server, then A: A's wins.
  server().Exec("UPDATE notes SET title = 'r1 by server' WHERE id = $1", {r[1]});
  Later();
  a->Exec("UPDATE notes SET title = 'r1 by A' WHERE id = '" + r[1] + "'");
  // r2: B, then A, then the server: the server's wins.
  b->Exec("UPDATE notes SET title = 'r2 by B' WHERE id = '" + r[2] + "'");
  Later();
  a->Exec("UPDATE notes SET title = 'r2 by A' WHERE id = '" + r[2] + "'");
  Later();
  server().Exec("UPDATE notes SET title = 'r2 by server' WHERE id = $1", {r[2]});
  // r3: A then B, different columns: the whole later row wins.
  a->Exec("UPDATE notes SET body = 'r3 body by A' WHERE id = '" + r[3] + "'");
  Later();
  b->Exec("UPDATE notes SET title = 'r3 by B' WHERE id = '" + r[3] + "'");
  // A timestamp in a non-canonical form: PostgreSQL's form comes back.
  a->Exec("UPDATE notes SET updated_at = '2026-03-01T12:00:00.500Z' WHERE id = '" + r[4] + "'");
  // New rows everywhere, comments on each other's notes.
  const std::string na = ClientNote(*a, 7, "new on A"), nb = ClientNote(*b, 8, "new on B");
  const std::string ns = ServerNote(9, "new on server");
  ClientComment(*a, r[1], 7, "A on r1");
  ClientComment(*b, nb, 8, "B on its own");
  ServerComment(r[0], 7, "server on r0");

  SyncOk(a_file);
  SyncOk(b_file);
  SyncOk(a_file);

  const std::string expected = ServerDump();
  EXPECT_PRED_FORMAT2(SameRows, expected, ClientDump(*a));
  EXPECT_PRED_FORMAT2(SameRows, expected, ClientDump(*b));
  EXPECT_EQ(ServerTitle(r[0]), "r0 by B");
  EXPECT_EQ(ServerTitle(r[1]), "r1 by A");
  EXPECT_EQ(ServerTitle(r[2]), "r2 by server");
  EXPECT_EQ(ServerTitle(r[3]), "r3 by B");
  EXPECT_EQ(server().Text("SELECT body FROM notes WHERE id = $1", {r[3]}), "body");
  EXPECT_EQ(server().Text("SELECT updated_at::text FROM notes WHERE id = $1", {r[4]}), "2026-03-01 12:00:00.5+00");
  EXPECT_EQ(a->Text("SELECT updated_at FROM notes WHERE id = ?1", {r[4]}), "2026-03-01 12:00:00.5+00");
  EXPECT_EQ(server().Text("SELECT count(*) FROM notes WHERE id IN ($1, $2, $3)", {na, nb, ns}), "3");
  EXPECT_EQ(server().Text("SELECT count(*) FROM comments"), "3");
  for (const std::string& file : {a_file, b_file})
    ExpectQuiet(file);
}

// 5. A delete beats an older edit from another client, wherever it syncs
// first; an edit made after a delete brings the row back.
TEST_F(NotesTest, DeletesPropagateAndBeatOlderEdits) {
  const std::string doomed = ServerNote(7, "doomed"), revived = ServerNote(7, "revived");
  const std::string parent = ServerNote(7, "parent"), by_server = ServerNote(7, "deleted by the server");
  const std::string child = ServerComment(parent, 7, "child");
  const std::string a_file = ClientFile("a.db"), b_file = ClientFile("b.db");
  Clone(a_file);
  Clone(b_file);
  auto a = OpenClient(a_file);
  auto b = OpenClient(b_file);

  // B edits first, A deletes later; B's older edit reaches the server first.
  b->Exec("UPDATE notes SET title = 'edited by B, before the delete' WHERE id = '" + doomed + "'");
  Later();
  a->Exec("DELETE FROM notes WHERE id = '" + doomed + "'");
  // A deletes a note with its comment (children first, as the foreign key wants).
  a->Exec("DELETE FROM comments WHERE id = '" + child + "'; DELETE FROM notes WHERE id = '" + parent + "'");
  server().Exec("DELETE FROM notes WHERE id = $1", {by_server});
  SyncOk(b_file);
  EXPECT_EQ(ServerTitle(doomed), "edited by B, before the delete");
  SyncOk(a_file);
  SyncOk(b_file);
  for (Db* client : {a.get(), b.get()}) {
    EXPECT_EQ(ClientTitle(*client, doomed), "gone");
    EXPECT_EQ(ClientTitle(*client, parent), "gone");
    EXPECT_EQ(ClientTitle(*client, by_server), "gone");
    EXPECT_EQ(client->Text("SELECT count(*) FROM comments"), "0");
  }
  EXPECT_EQ(ServerTitle(doomed), "gone");
  EXPECT_EQ(ServerTitle(parent), "gone");
  EXPECT_EQ(server().Text("SELECT count(*) FROM comments"), "0");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*a));
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*b));

  // A deletes `revived` and syncs; B, which has not seen the delete, edits
  // it later: the later edit wins and the row comes back everywhere.
  a->Exec("DELETE FROM notes WHERE id = '" + revived + "'");
  SyncOk(a_file);
  EXPECT_EQ(ServerTitle(revived), "gone");
  Later();
  b->Exec("UPDATE notes SET title = 'edited by B after the delete' WHERE id = '" + revived + "'");
  SyncOk(b_file);
  SyncOk(a_file);
  EXPECT_EQ(ServerTitle(revived), "edited by B after the delete");
  EXPECT_EQ(ClientTitle(*a, revived), "edited by B after the delete");
  EXPECT_EQ(ClientTitle(*b, revived), "edited by B after the delete");
  // The same on one node: a row inserted again under a deleted key.
  a->Exec("INSERT INTO notes VALUES ('" + doomed + "', 7, 'back again', NULL, NULL)");
  SyncOk(a_file);
  SyncOk(b_file);
  EXPECT_EQ(ServerTitle(doomed), "back again");
  EXPECT_EQ(ClientTitle(*b, doomed), "back again");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*a));
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*b));
  for (const std::string& file : {a_file, b_file})
    ExpectQuiet(file);
}

// A delete of a parent meets a child created concurrently elsewhere: the
// client comments offline on a note the server deletes meanwhile. The server
// refuses the orphan on its own (docs/protocol.md, "Conflicts"), applies the
// rest, and answers with a tombstone that removes the comment from the
// client; both logs hold the refusal. (Before, every later sync failed with
// the foreign key error and the client was stuck for good.)
TEST_F(NotesTest, CommentOnANoteDeletedElsewhereDoesNotStickTheClient) {
  const std::string note = ServerNote(7, "deleted on the server");
  const std::string file = ClientFile("client.db");
  Clone(file);
  auto client = OpenClient(file);
  ClientComment(*client, note, 7, "written offline");
  const std::string unrelated = ClientNote(*client, 7, "unrelated");
  server().Exec("DELETE FROM notes WHERE id = $1", {note});
  ProcessResult result = Cli("sync", file);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_NE(result.out.find("1 new conflict"), std::string::npos) << result.Describe();
  EXPECT_EQ(ServerTitle(unrelated), "unrelated");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
  EXPECT_EQ(server().Text("SELECT sqlstate || ' ' || table_name || ' ' || answer FROM syncline.conflicts"),
            "23503 comments restamped");
  EXPECT_EQ(client->Text("SELECT side || ' ' || sqlstate || ' ' || table_name FROM syncline_conflicts"),
            "server 23503 comments");
  ProcessResult listed = Cli("conflicts", file, {"--json"});
  EXPECT_EQ(listed.exit_code, 0) << listed.Describe();
  EXPECT_NE(listed.out.find("\"sqlstate\":\"23503\""), std::string::npos) << listed.Describe();
  // Nothing is pushed again, and the next sync is quiet.
  result = Cli("sync", file);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(result.out, "synced: pushed 0, pulled 0\n") << result.Describe();
}

// The other way round: the client deletes offline a note that meanwhile got
// a comment on the server. The server refuses the delete and answers with
// its note, which comes back to the client.
TEST_F(NotesTest, NoteDeletedOfflineWhileCommentedElsewhereDoesNotStickTheClient) {
  const std::string note = ServerNote(7, "commented on the server");
  const std::string file = ClientFile("client.db");
  Clone(file);
  auto client = OpenClient(file);
  ServerComment(note, 7, "written on the server");
  client->Exec("DELETE FROM notes WHERE id = '" + note + "'");
  const std::string unrelated = ClientNote(*client, 7, "unrelated");
  ProcessResult result = Cli("sync", file);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(ServerTitle(unrelated), "unrelated");
  EXPECT_EQ(ServerTitle(note), "commented on the server");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
  EXPECT_EQ(client->Text("SELECT count(*) FROM syncline_conflicts WHERE sqlstate = '23503'"), "1");
}

// 6. A large initial clone goes in pages.
TEST_F(NotesTest, LargeCloneCompletesInPages) {
  constexpr int kRows = 100000;
  auto start = std::chrono::steady_clock::now();
  ServerNotes(kRows, 7, "bulk");
  std::chrono::duration<double> insert = std::chrono::steady_clock::now() - start;
  const std::string file = ClientFile("client.db");
  start = std::chrono::steady_clock::now();
  ProcessResult result = Cli("clone", file, {}, /*timeout_s=*/90);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::cout << "server insert " << insert.count() << " s, clone " << took.count() << " s\n";
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  long long changes = 0, pages = 0;
  ASSERT_TRUE(ParseCloned(result.out, &changes, &pages)) << result.Describe();
  EXPECT_EQ(changes, kRows);
  EXPECT_GE(pages, kRows / 1000);
  EXPECT_LT(took.count(), 60) << "the clone took " << took.count() << " s";
  auto client = OpenClient(file);
  EXPECT_EQ(client->Int("SELECT count(*) FROM notes"), kRows);
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
  ExpectQuiet(file);
}

// 7. kill -9 in the middle of a sync loses nothing: the next run resumes
// and both sides end up equal.
// The client builds its tables from the server's description
// (syncline.tracked_tables). A damaged one (here, a column without a name)
// is a clear error and no file change, never a crash.
TEST_F(NotesTest, CloneRefusesADamagedTableDescription) {
  ServerNote(7, "seed");
  server().Exec("CREATE OR REPLACE VIEW syncline.tracked_tables AS SELECT t.table_schema, t.table_name, "
                "t.pk_columns AS primary_key, t.scope_column, t.notify, t.authorize, "
                "'[{\"type\": \"uuid\", \"base_type\": \"uuid\", \"category\": \"U\"}]'::jsonb AS columns, "
                "'[{\"columns\": [\"id\"]}]'::jsonb AS foreign_keys, t.merge FROM syncline.tables t");
  const std::string file = ClientFile("client.db");
  ProcessResult result = Cli("clone", file);
  EXPECT_NE(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(result.signal, 0) << result.Describe();
  EXPECT_NE(result.err.find("schema document: tables[0] (\"comments\"): columns[0]: lacks \"name\""), std::string::npos)
      << result.Describe();
}

TEST_F(NotesTest, KilledSyncLosesNothing) {
  constexpr int kEach = 20000;
  unsigned seed = std::random_device{}();
  if (const char* fixed = std::getenv("SYNCLINE_E2E_SEED")) seed = static_cast<unsigned>(std::stoul(fixed));
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set SYNCLINE_E2E_SEED to replay)");
  std::mt19937 random(seed);

  server().Exec("INSERT INTO notes VALUES ('00000000-0000-4000-8000-000000000000', 7, 'seed', NULL, now())");
  const std::string file = ClientFile("client.db");
  Clone(file);
  auto client = OpenClient(file);

  // Both sides write many rows, with comments; the parents of the last
  // comments are edited after them, so the last pages meet children before
  // their parents in both directions. (Only the last: a child that needs a
  // parent from a later page merges every page up to it, on the push by
  // retrying with doubled pages, on the pull in one transaction, and the
  // kills should also land between pages that commit on their own.)
  ClientNotes(*client, kEach, 7, "client", /*comment_every=*/10);
  client->Exec("UPDATE notes SET body = 'edited after its comment' WHERE id IN (SELECT note_id FROM comments "
               "ORDER BY rowid DESC LIMIT 20)");
  ServerNotes(kEach, 8, "server");
  server().Exec("INSERT INTO comments SELECT gen_random_uuid(), id, org_id, 'on ' || title FROM notes "
                "WHERE org_id = 8 AND random() < 0.1");
  server().Exec("UPDATE notes SET body = 'edited after its comment' WHERE id IN (SELECT note_id FROM comments "
                "ORDER BY ctid DESC LIMIT 20)");
  const std::string local_before = Lines(SqliteRows(*client, "SELECT id, title, body FROM notes WHERE org_id = 7 "
                                                             "ORDER BY id"));

  // First a push that dies in flight: the client is killed while the
  // server is blocked applying its first page, and that server transaction
  // never commits (its connection is cut, as by a network failure). The
  // next run must push that page again.
  {
    Pg locker(DbName());
    locker.Exec("BEGIN; LOCK TABLE notes IN EXCLUSIVE MODE");
    Process sync(CliArgs("sync", file, {"--page", "200"}));
    std::string blocked;
    EXPECT_TRUE(WaitFor(
        [&] {
          blocked = server().Text("SELECT coalesce(min(pid)::text, '') FROM pg_stat_activity WHERE datname = "
                                  "current_database() AND wait_event_type = 'Lock' AND query LIKE '%apply_push%'");
          return !blocked.empty();
        },
        20))
        << "the push never reached the server";
    sync.Signal(SIGKILL);
    EXPECT_EQ(sync.Wait(10).signal, SIGKILL);
    if (!blocked.empty()) server().Text("SELECT pg_terminate_backend($1::int, 5000)", {blocked});
    locker.Exec("ROLLBACK");
    EXPECT_EQ(server().Text("SELECT count(*) FROM notes WHERE org_id = 7"), "1") << "nothing of the push committed";
  }

  // A full sync takes about two seconds here (20k pushed, then 20k pulled);
  // each run resumes where the killed one left off. Kill at random moments
  // until a kill has landed in the pull (after the push completed), or a
  // run finishes first; at most 12 runs. The delays stay well below a full
  // sync, so that the first kill lands on a machine twice as fast too.
  const std::string pushed_all = std::to_string(kEach + 1);
  int killed_in_push = 0, killed_in_pull = 0;
  for (int attempt = 0; attempt < 12 && killed_in_pull == 0; ++attempt) {
    int delay = std::uniform_int_distribution<int>(20, 800)(random);
    Process sync(CliArgs("sync", file, {"--page", "200"}));
    Sleep(delay);
    sync.Signal(SIGKILL);
    ProcessResult result = sync.Wait(60);
    const std::string pushed = server().Text("SELECT count(*) FROM notes WHERE org_id = 7");
    const std::string pulled = client->Text("SELECT count(*) FROM notes WHERE org_id = 8");
    std::cout << "kill after " << delay << " ms: " << (result.signal == SIGKILL ? "killed" : "finished") << "; "
              << pushed << " client notes on the server, " << pulled << " server notes on the client\n";
    // The file is intact and holds every local write.
    EXPECT_EQ(client->Text("PRAGMA integrity_check"), "ok");
    EXPECT_EQ(client->Text("PRAGMA foreign_key_check"), "");
    EXPECT_PRED_FORMAT2(SameRows, local_before,
                        Lines(SqliteRows(*client, "SELECT id, title, body FROM notes WHERE org_id = 7 ORDER BY id")))
        << "after a kill at " << delay << " ms";
    if (result.signal != SIGKILL) {
      EXPECT_EQ(result.exit_code, 0) << "after " << delay << " ms: " << result.Describe();
      break;
    }
    ++(pushed == pushed_all ? killed_in_pull : killed_in_push);
  }
  EXPECT_GT(killed_in_push + killed_in_pull, 0) << "every sync finished before its kill: make the delays shorter";

  ProcessResult result = Cli("sync", file, {"--page", "200"});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(server().Text("SELECT count(*) FROM notes"), std::to_string(2 * kEach + 1));
  EXPECT_EQ(client->Int("SELECT count(*) FROM notes"), 2 * kEach + 1);
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
  // (status's pending count may be stale here when a kill landed in the last
  // push page: DISABLED_StatusAfterAPushWhoseReplyWasLost.)
  ExpectQuiet(file);
}

// A server transaction that wrote before a sync and commits after it: the
// sync must not move past its row (docs/postgres.md, "Gap-free pulls": a
// pull stops below the oldest open writer, holding back later commits too).
TEST_F(NotesTest, SlowServerTransactionIsNotSkipped) {
  ServerNote(7, "seed");
  const std::string file = ClientFile("client.db");
  Clone(file);
  auto client = OpenClient(file);
  const std::string slow_id = NewUuid();
  Pg slow(DbName());
  slow.Exec("BEGIN");
  slow.Exec("INSERT INTO notes VALUES ($1, 7, 'slow', NULL, now())", {slow_id});
  const std::string fast = ServerNote(7, "fast");  // commits first
  SyncOk(file);
  EXPECT_EQ(ClientTitle(*client, slow_id), "gone");
  EXPECT_EQ(ClientTitle(*client, fast), "gone") << "held back behind the open transaction";
  slow.Exec("COMMIT");
  SyncOk(file);
  EXPECT_EQ(ClientTitle(*client, slow_id), "slow");
  EXPECT_EQ(ClientTitle(*client, fast), "fast");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
}

// A table the server starts tracking after a client was cloned.
//
// DISABLED: product bug (or an undocumented limitation). Sync's pull applies
// the server's changes of the new table, which the client file does not
// have: `syncline: pull: syncline_apply_push: change 0 (table "tags"): no
// such table "tags"`, exit 1, and every later sync fails the same way, so
// the client no longer receives changes of any table (its pushes still go
// through). Nothing tells the user to clone anew. Expected: sync creates
// the newly tracked table (as clone does) or at least keeps syncing the
// tables it has.
TEST_F(NotesTest, TableTrackedAfterTheCloneDoesNotStopSync) {
  ServerNote(7, "seed");
  const std::string file = ClientFile("client.db");
  Clone(file);
  auto client = OpenClient(file);
  server().Exec("CREATE TABLE tags(id int PRIMARY KEY, org_id int NOT NULL, name text)");
  server().Text(R"(SELECT syncline.track('tags', '{"scope":"org_id"}'))");
  server().Exec("INSERT INTO tags VALUES (1, 7, 'first')");
  const std::string later = ServerNote(7, "after the new table");
  ProcessResult result = Cli("sync", file);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(ClientTitle(*client, later), "after the new table");
}

// 8. A scoped client only ever holds its scope, and refuses another.
TEST_F(NotesTest, ScopedClientNeverReceivesOtherScopes) {
  const std::string n7 = ServerNote(7, "org 7"), n8 = ServerNote(8, "org 8");
  ServerComment(n7, 7, "on org 7");
  ServerComment(n8, 8, "on org 8");
  const std::string file = ClientFile("org7.db");
  Clone(file, {"--scope", "7"});
  auto client = OpenClient(file);
  auto org7_only = [&] {
    return Lines(server().Rows("SELECT id::text, org_id::text, title, body, updated_at::text FROM notes "
                               "WHERE org_id = 7 ORDER BY id::text COLLATE \"C\"")) +
           "--- comments\n" +
           Lines(server().Rows("SELECT id::text, note_id::text, org_id::text, body FROM comments "
                               "WHERE org_id = 7 ORDER BY id::text COLLATE \"C\""));
  };
  EXPECT_EQ(client->Text("SELECT count(*) FROM notes WHERE org_id != 7"), "0");
  EXPECT_EQ(client->Text("SELECT count(*) FROM comments WHERE org_id != 7"), "0");
  EXPECT_PRED_FORMAT2(SameRows, org7_only(), ClientDump(*client));
  EXPECT_EQ(StatusReport(file)["scope"], "7");

  // Later writes: org 8's never arrive, org 7's (a delete included) do.
  const std::string later7 = ServerNote(7, "org 7, later");
  ServerNote(8, "org 8, later");
  server().Exec("UPDATE notes SET title = 'org 8, edited' WHERE id = $1", {n8});
  ServerComment(n8, 8, "org 8, later comment");
  server().Exec("DELETE FROM comments WHERE org_id = 7");
  server().Exec("DELETE FROM notes WHERE id = $1", {n7});
  SyncOk(file);
  EXPECT_EQ(ClientTitle(*client, later7), "org 7, later");
  EXPECT_EQ(ClientTitle(*client, n7), "gone");
  EXPECT_EQ(client->Text("SELECT count(*) FROM notes WHERE org_id != 7"), "0");
  EXPECT_EQ(client->Text("SELECT count(*) FROM comments WHERE org_id != 7"), "0");
  EXPECT_PRED_FORMAT2(SameRows, org7_only(), ClientDump(*client));

  // The same scope again is fine; another is refused and changes nothing.
  SyncOk(file, {"--scope", "7"});
  const std::string before = ClientDump(*client);
  ProcessResult result = Cli("sync", file, {"--scope", "8"});
  EXPECT_EQ(result.exit_code, 1) << result.Describe();
  EXPECT_NE(result.err.find("scope"), std::string::npos) << result.err;
  EXPECT_PRED_FORMAT2(SameRows, ClientDump(*client), before);
  EXPECT_EQ(client->Text("SELECT count(*) FROM notes WHERE org_id != 7"), "0");

  // Its own org 7 writes reach the server.
  const std::string mine = ClientNote(*client, 7, "written in org 7");
  SyncOk(file);
  EXPECT_EQ(ServerTitle(mine), "written in org 7");
  EXPECT_PRED_FORMAT2(SameRows, org7_only(), ClientDump(*client));
}

// 9. status: node, server, scope, pending local changes, last sync.
TEST_F(NotesTest, StatusReportsPendingChangesAndLastSync) {
  ServerNote(7, "one");
  const std::string file = ClientFile("client.db");
  Clone(file);
  auto client = OpenClient(file);
  auto status = StatusReport(file);
  EXPECT_EQ(status["node"], client->NodeId());
  EXPECT_EQ(status["server node"], server().NodeId());
  EXPECT_EQ(status["scope"], "(none)");
  EXPECT_EQ(status["pending local"], "0 changes");
  EXPECT_TRUE(std::regex_match(status["last sync"], std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << status["last sync"];
  EXPECT_NE(status["last cursor"].find(server().NodeId()), std::string::npos) << status["last cursor"];

  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(ClientNote(*client, 7, "local " + std::to_string(i)));
  EXPECT_EQ(StatusReport(file)["pending local"], "3 changes");
  // Edits of a pending row count once: one version per row.
  client->Exec("UPDATE notes SET body = 'again' WHERE id = '" + ids[0] + "'");
  EXPECT_EQ(StatusReport(file)["pending local"], "3 changes");
  EXPECT_EQ(SyncOk(file), "synced: pushed 3, pulled 0\n");
  status = StatusReport(file);
  EXPECT_EQ(status["pending local"], "0 changes");
  EXPECT_EQ(status["node"], client->NodeId());

  // A pulled change is not a local one.
  ServerNote(7, "two");
  SyncOk(file);
  EXPECT_EQ(StatusReport(file)["pending local"], "0 changes");
  client->Exec("DELETE FROM notes WHERE id = '" + ids[1] + "'");
  EXPECT_EQ(StatusReport(file)["pending local"], "1 changes");

  // status reads only the file: it works without the server, and fails on a
  // file that does not exist (without creating it).
  ProcessResult result = RunCli({"status", "--db", ClientFile("missing.db")});
  EXPECT_EQ(result.exit_code, 1) << result.Describe();
  EXPECT_FALSE(std::filesystem::exists(ClientFile("missing.db")));
}

// A push the server committed but whose reply the client never saw (it
// was killed while the server applied the page): the next sync finds
// nothing left to push, and status must agree.
//
// DISABLED: product bug. status counts pending changes from the client's
// own "acked_push" record (client/sync_client.cc, Describe), which Push
// updates only after a page it applied itself. When the server committed
// the last page but the client died before recording it, the next Push
// finds nothing to send (the server's peer_cursor equals the local cursor)
// and returns before updating acked_push, so status reports the 3 changes
// as pending forever (until another local change is pushed). Fix: record
// the server's acknowledgement in Push also when there is nothing to send.
TEST_F(NotesTest, StatusAfterAPushWhoseReplyWasLost) {
  const std::string file = ClientFile("client.db");
  ServerNote(7, "seed");
  Clone(file);
  auto client = OpenClient(file);
  for (int i = 0; i < 3; ++i)
    ClientNote(*client, 7, "local " + std::to_string(i));
  {
    Pg locker(DbName());
    locker.Exec("BEGIN; LOCK TABLE notes IN EXCLUSIVE MODE");
    Process sync(CliArgs("sync", file));
    ASSERT_TRUE(WaitFor(
        [&] {
          return server().Text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock' AND query LIKE '%apply_push%'") != "0";
        },
        20))
        << "the push never reached the server";
    sync.Signal(SIGKILL);
    EXPECT_EQ(sync.Wait(10).signal, SIGKILL);
    locker.Exec("ROLLBACK");  // the orphaned apply goes on and commits
  }
  ASSERT_TRUE(WaitFor([&] { return server().Text("SELECT count(*) FROM notes") == "4"; }, 10));
  EXPECT_EQ(SyncOk(file), "synced: pushed 0, pulled 0\n");
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
  EXPECT_EQ(StatusReport(file)["pending local"], "0 changes");
}

// 10. sync --watch: follows the server within a second (LISTEN), pushes
// local writes every --interval, survives a server restart, stops on SIGTERM.
TEST_F(NotesTest, WatchFollowsBothSidesAndSurvivesAnOutage) {
  if (!HavePgCtl()) GTEST_SKIP() << "SYNCLINE_PG_CTL is not set (run under tests/pg/with_cluster.sh)";
  constexpr double kDeadline = 3.5;  // "within ~3 s"
  ServerNote(7, "before");
  const std::string file = ClientFile("client.db");
  Clone(file);
  auto client = OpenClient(file);
  // A second client whose interval is far off: only the NOTIFY wakes it.
  const std::string listener_file = ClientFile("listener.db");
  Clone(listener_file);
  auto listener = OpenClient(listener_file);
  Process watch(CliArgs("sync", file, {"--watch", "--interval", "1"}));
  Process listening(CliArgs("sync", listener_file, {"--watch", "--interval", "600"}));
  Sleep(500);
  ASSERT_TRUE(watch.Running()) << watch.Wait(0).Describe();
  ASSERT_TRUE(listening.Running()) << listening.Wait(0).Describe();

  const std::string from_server = ServerNote(7, "from the server");
  EXPECT_TRUE(WaitFor([&] { return ClientTitle(*client, from_server) == "from the server"; }, kDeadline))
      << watch.Stderr();
  EXPECT_TRUE(WaitFor([&] { return ClientTitle(*listener, from_server) == "from the server"; }, 2.5))
      << "LISTEN did not wake the watcher: " << listening.Stderr();
  listening.Signal(SIGINT);
  ProcessResult stopped = listening.Wait(5);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.Describe();
  const std::string from_client = ClientNote(*client, 7, "from the client");
  EXPECT_TRUE(WaitFor([&] { return ServerTitle(from_client) == "from the client"; }, kDeadline)) << watch.Stderr();

  // The server stops for 2 s; the client keeps writing meanwhile.
  std::string offline;
  {
    ServerOutage outage;
    ASSERT_TRUE(outage.down()) << "could not stop the server";
    Sleep(1000);
    offline = ClientNote(*client, 7, "written while the server is down");
    Sleep(1000);
    EXPECT_TRUE(watch.Running());
    ASSERT_TRUE(outage.End()) << "could not restart the server";
  }
  Reconnect();
  EXPECT_TRUE(WaitFor([&] { return watch.Stderr().find("retry") != std::string::npos; }, 5)) << watch.Stderr();
  // The backoff is at most a few seconds after a 2 s outage.
  const std::string after = ServerNote(7, "after the outage");
  EXPECT_TRUE(WaitFor([&] { return ClientTitle(*client, after) == "after the outage"; }, 15)) << watch.Stderr();
  EXPECT_TRUE(WaitFor([&] { return ServerTitle(offline) == "written while the server is down"; }, kDeadline))
      << watch.Stderr();
  const std::string after_client = ClientNote(*client, 7, "from the client, after");
  EXPECT_TRUE(WaitFor([&] { return ServerTitle(after_client) == "from the client, after"; }, kDeadline))
      << watch.Stderr();

  watch.Signal(SIGTERM);
  ProcessResult result = watch.Wait(5);
  EXPECT_EQ(result.signal, 0) << result.Describe();
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_NE(result.out.find("stopped"), std::string::npos) << result.Describe();
  EXPECT_PRED_FORMAT2(SameRows, ServerDump(), ClientDump(*client));
}

// Exit codes: 2 for usage, 3 for an unreachable server, 1 for a file that
// was never cloned.
TEST_F(NotesTest, ExitCodes) {
  EXPECT_EQ(RunCli({}).exit_code, 2);
  EXPECT_EQ(RunCli({"frobnicate", "--db", ClientFile("x.db")}).exit_code, 2);
  EXPECT_EQ(RunCli({"sync"}).exit_code, 2);
  EXPECT_EQ(RunCli({"sync", "--db", ClientFile("x.db"), "--page", "0"}).exit_code, 2);
  EXPECT_EQ(RunCli({"status", "--db", ClientFile("x.db"), "--watch"}).exit_code, 2);
  ProcessResult help = RunCli({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("exit codes"), std::string::npos);

  ProcessResult result = RunCli({"clone", "--db", ClientFile("x.db"), "--server", "host=/nonexistent port=1"});
  EXPECT_EQ(result.exit_code, 3) << result.Describe();

  // A plain SQLite file that was never cloned.
  { Db plain(ClientFile("plain.db")); }
  result = Cli("sync", ClientFile("plain.db"));
  EXPECT_EQ(result.exit_code, 1) << result.Describe();
}

}  // namespace
}  // namespace syncline::test
