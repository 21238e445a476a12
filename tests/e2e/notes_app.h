// The notes-app schema of the end-to-end suites: notes and their comments,
// both scoped by organisation, on a fresh server database per test; helpers
// that write on either side and compare the two sides canonically.
#pragma once

#include <ctime>
#include <string>
#include <vector>

#include "tests/e2e/e2e_harness.h"

namespace syncline::test {

class NotesTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    server().Exec(
        "CREATE TABLE notes(id uuid PRIMARY KEY, org_id int NOT NULL, title text, body text, updated_at timestamptz);"
        "CREATE TABLE comments(id uuid PRIMARY KEY, note_id uuid NOT NULL REFERENCES notes(id), org_id int NOT NULL, "
        "body text)");
    server().Text(R"(SELECT syncline.track('notes', '{"scope":"org_id"}'))");
    server().Text(R"(SELECT syncline.track('comments', '{"scope":"org_id"}'))");
  }

  // --- the server's side ---

  std::string ServerNote(int org, const std::string& title, const std::string& body = "body") {
    std::string id = NewUuid();
    server().Exec("INSERT INTO notes VALUES ($1, $2, $3, $4, now())", {id, std::to_string(org), title, body});
    return id;
  }
  std::string ServerComment(const std::string& note, int org, const std::string& body) {
    std::string id = NewUuid();
    server().Exec("INSERT INTO comments VALUES ($1, $2, $3, $4)", {id, note, std::to_string(org), body});
    return id;
  }
  // `count` notes of one organisation in one statement.
  void ServerNotes(int count, int org, const std::string& prefix) {
    server().Exec("INSERT INTO notes SELECT gen_random_uuid(), " + std::to_string(org) + ", '" + prefix +
                  " ' || g, 'body ' || g, now() FROM generate_series(1, " + std::to_string(count) + ") g");
  }
  std::string ServerTitle(const std::string& id) {
    return server().Text("SELECT coalesce((SELECT coalesce(title, 'NULL') FROM notes WHERE id = $1::uuid), 'gone')",
                         {id});
  }

  // Both tables in canonical text: ids as lower-case text, timestamps in UTC.
  std::string ServerDump() {
    return Lines(server().Rows("SELECT id::text, org_id::text, title, body, updated_at::text FROM notes "
                               "ORDER BY id::text COLLATE \"C\"")) +
           "--- comments\n" +
           Lines(server().Rows("SELECT id::text, note_id::text, org_id::text, body FROM comments "
                               "ORDER BY id::text COLLATE \"C\""));
  }

  // --- a client's side ---

  std::string ClientNote(Db& client, int org, const std::string& title, const std::string& body = "body") {
    std::string id = NewUuid();
    client.Exec("INSERT INTO notes VALUES ('" + id + "', " + std::to_string(org) + ", '" + title + "', '" + body +
                "', '" + NowText() + "')");
    return id;
  }
  std::string ClientComment(Db& client, const std::string& note, int org, const std::string& body) {
    std::string id = NewUuid();
    client.Exec("INSERT INTO comments VALUES ('" + id + "', '" + note + "', " + std::to_string(org) + ", '" + body +
                "')");
    return id;
  }
  // `count` notes (and one comment on every `comment_every`th, 0: none) of
  // one organisation in one transaction; returns the notes' ids.
  std::vector<std::string> ClientNotes(Db& client, int count, int org, const std::string& prefix,
                                       int comment_every = 0) {
    std::vector<std::string> ids;
    client.Exec("BEGIN");
    sqlite3_stmt* note = nullptr;
    sqlite3_stmt* comment = nullptr;
    sqlite3_prepare_v2(client.handle(), "INSERT INTO notes VALUES (?1, ?2, ?3, 'body', ?4)", -1, &note, nullptr);
    sqlite3_prepare_v2(client.handle(), "INSERT INTO comments VALUES (?1, ?2, ?3, ?4)", -1, &comment, nullptr);
    const std::string now = NowText();
    for (int i = 0; i < count; ++i) {
      std::string id = NewUuid(), title = prefix + " " + std::to_string(i);
      sqlite3_bind_text(note, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(note, 2, org);
      sqlite3_bind_text(note, 3, title.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(note, 4, now.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(note) != SQLITE_DONE) ADD_FAILURE() << sqlite3_errmsg(client.handle());
      sqlite3_reset(note);
      if (comment_every > 0 && i % comment_every == 0) {
        std::string comment_id = NewUuid();
        sqlite3_bind_text(comment, 1, comment_id.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(comment, 2, id.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(comment, 3, org);
        sqlite3_bind_text(comment, 4, ("on " + title).c_str(), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(comment) != SQLITE_DONE) ADD_FAILURE() << sqlite3_errmsg(client.handle());
        sqlite3_reset(comment);
      }
      ids.push_back(id);
    }
    sqlite3_finalize(note);
    sqlite3_finalize(comment);
    client.Exec("COMMIT");
    return ids;
  }
  std::string ClientTitle(Db& client, const std::string& id) {
    return client.Text("SELECT coalesce((SELECT coalesce(title, 'NULL') FROM notes WHERE id = ?1), 'gone')", {id});
  }
  std::string ClientDump(Db& client) {
    // Keys and org ids must arrive in their canonical types: text ids,
    // integer organisations.
    EXPECT_EQ(client.Text("SELECT count(*) FROM notes WHERE typeof(id) != 'text' OR typeof(org_id) != 'integer' "
                          "OR id != lower(id)"),
              "0");
    return Lines(SqliteRows(client, "SELECT id, org_id, title, body, updated_at FROM notes ORDER BY id")) +
           "--- comments\n" + Lines(SqliteRows(client, "SELECT id, note_id, org_id, body FROM comments ORDER BY id"));
  }

  // The current time as PostgreSQL writes a timestamptz in UTC (whole
  // seconds), so the client writes the canonical form.
  static std::string NowText() {
    std::time_t now = std::time(nullptr);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S+00", std::gmtime(&now));
    return buf;
  }

  // --- the CLI ---

  void Clone(const std::string& file, const std::vector<std::string>& extra = {}) {
    ProcessResult result = Cli("clone", file, extra);
    ASSERT_EQ(result.exit_code, 0) << result.Describe();
  }
  // One sync that must succeed; returns its stdout ("synced: pushed N, pulled M").
  std::string SyncOk(const std::string& file, const std::vector<std::string>& extra = {}) {
    ProcessResult result = Cli("sync", file, extra);
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    return result.out;
  }
  // Nothing left to move either way: no echo of a node's own changes, no
  // ping-pong of rewritten values.
  void ExpectQuiet(const std::string& file) { EXPECT_EQ(SyncOk(file), "synced: pushed 0, pulled 0\n"); }
};

}  // namespace syncline::test
