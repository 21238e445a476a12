/* make static: syncline linked into a C program with SQLite's amalgamation,
 * as iOS and Android apps link it (docs/sqlite.md, "Linking it in"). Two
 * databases sync both ways through syncline_pull_since / syncline_apply_push
 * and converge; a write to a tracked table is captured without any
 * sqlite3_load_extension. TAP output; exits non-zero when a check fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite3.h"
#include "sqlite_extension/syncline.h"

static int checks, failures;

static void check(int ok, const char* what, const char* got) {
  ++checks;
  printf("%s %d - %s\n", ok ? "ok" : "not ok", checks, what);
  if (!ok) {
    ++failures;
    printf("#   got: %s\n", got != NULL ? got : "(null)");
  }
}

/* The first column of the first row of `sql` with `arg` bound to ?1 (may be
 * NULL), as a malloc'ed string; NULL on error (printed). */
static char* query(sqlite3* db, const char* sql, const char* arg) {
  sqlite3_stmt* stmt = NULL;
  char* out = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
    printf("# %s: %s\n", sql, sqlite3_errmsg(db));
    return NULL;
  }
  if (arg != NULL) sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0) != NULL) {
    out = strdup((const char*)sqlite3_column_text(stmt, 0));
  } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    printf("# %s: %s\n", sql, sqlite3_errmsg(db));
  }
  sqlite3_finalize(stmt);
  return out;
}

static int exec(sqlite3* db, const char* sql) {
  char* error = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &error);
  if (rc != SQLITE_OK) printf("# %s: %s\n", sql, error);
  sqlite3_free(error);
  return rc;
}

/* Everything `from` holds that `to` lacks, in one batch. */
static char* sync_once(sqlite3* from, sqlite3* to) {
  char* batch = query(from, "SELECT syncline_pull_since(NULL, 1000)", NULL);
  char* summary = batch != NULL ? query(to, "SELECT syncline_apply_push(?1)", batch) : NULL;
  free(batch);
  return summary;
}

static void check_text(sqlite3* db, const char* sql, const char* want, const char* what) {
  char* got = query(db, sql, NULL);
  check(got != NULL && strcmp(got, want) == 0, what, got);
  free(got);
}

int main(void) {
  check(syncline_register() == SQLITE_OK, "syncline_register", NULL);
  sqlite3 *laptop = NULL, *phone = NULL;
  if (sqlite3_open(":memory:", &laptop) != SQLITE_OK || sqlite3_open(":memory:", &phone) != SQLITE_OK) return 1;
  const char* schema =
      "CREATE TABLE notes(id INTEGER PRIMARY KEY, title TEXT, score REAL); SELECT syncline_track('notes');";
  check(exec(laptop, schema) == SQLITE_OK && exec(phone, schema) == SQLITE_OK,
        "both databases track a table without loading an extension", NULL);
  char* laptop_node = query(laptop, "SELECT syncline_node_id()", NULL);
  char* phone_node = query(phone, "SELECT syncline_node_id()", NULL);
  check(laptop_node != NULL && phone_node != NULL && strcmp(laptop_node, phone_node) != 0,
        "each has a node id of its own", phone_node);
  free(laptop_node);
  free(phone_node);

  exec(laptop, "INSERT INTO notes VALUES (1, 'groceries', 0.1), (2, 'plans', 1e300)");
  check_text(laptop, "SELECT count(*) FROM syncline_rows WHERE tid > 0", "2", "inserts are captured");
  char* summary = sync_once(laptop, phone);
  check(summary != NULL && strstr(summary, "\"applied\":2") != NULL, "the phone applies the laptop's batch",
        summary);
  free(summary);
  check_text(phone, "SELECT group_concat(id || ':' || title || ':' || score, ',') FROM notes",
             "1:groceries:0.1,2:plans:1.0e+300", "... and holds its rows, reals exact");

  exec(phone, "UPDATE notes SET title = 'groceries and milk' WHERE id = 1; DELETE FROM notes WHERE id = 2");
  summary = sync_once(phone, laptop);
  free(summary);
  check_text(laptop, "SELECT group_concat(id || ':' || title, ',') FROM notes", "1:groceries and milk",
             "the phone's update and delete reach the laptop");
  summary = sync_once(laptop, phone);
  check(summary != NULL && strstr(summary, "\"applied\":0") != NULL, "a second round has nothing new", summary);
  free(summary);

  char* refused = query(phone, "SELECT syncline_apply_push('{\"format\": 1')", NULL);
  check(refused == NULL && strstr(sqlite3_errmsg(phone), "syncline_apply_push") != NULL,
        "a malformed batch is refused with a clear error", sqlite3_errmsg(phone));
  free(refused);

  sqlite3_close(laptop);
  sqlite3_close(phone);
  printf("1..%d\n", checks);
  return failures == 0 ? 0 : 1;
}
