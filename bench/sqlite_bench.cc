// syncline benchmarks driven from C++ (see docs/benchmarks.md and bench/run.sh).
//
//   sqlite_bench sqlite    --ext PATH --dir DIR [--rows N] [--runs R] [--slow-runs R]
//       SQLite capture overhead (insert in 1 / in 1,000 transactions, update,
//       delete, storage), pull and apply, each against its plain baseline;
//       insert, update and delete also against SQLite's session extension
//       (a peer). The 1,000-transaction insert and apply take --slow-runs
//       samples.
//   sqlite_bench pg        --ext PATH --dir DIR [--rows N] [--runs R] [--apply-runs R]
//                          [--pull-db CONNINFO] [--apply-db CONNINFO]
//       PostgreSQL pull and apply through libpq (the PG* variables pick the
//       server), against jsonb_agg pages and INSERT ... ON CONFLICT.
//   sqlite_bench sqlite-gc --ext PATH --dir DIR [--rows N]
//       Metadata bytes per live row after deleting 90 % of N rows, before
//       and after syncline_gc (bench/sqlite_gc.cc).
//   sqlite_bench load-copy --file COPYFILE --db FILE
//       The clone baseline's loader: a COPY text-format file of the 5-column
//       table into a plain SQLite table, one transaction.
//   sqlite_bench profile   --ext PATH --dir DIR [--rows N]
//       One tracked insert, update, delete, pull and apply (for callgrind).
//   sqlite_bench version
//
// Results are printed to stdout, one JSON object per line:
//   {"name", "value", "unit", "baseline", "ratio", "runs", "samples", "baseline_samples"[, "peers"]}
// value and baseline are medians; ratio is value / baseline; peers maps a
// peer's name to its samples. Progress goes to stderr.
//
// Timing is plain std::chrono::steady_clock around whole workloads rather than
// Google Benchmark: every sample is one complete workload (100,000 rows)
// that needs its own fresh database file, schema and tracking set up outside
// the timed region, the tracked and plain samples are interleaved pairwise in
// one process so that load from other jobs hits both alike, and the result
// needs a baseline and a ratio in our own JSON. Google Benchmark's model
// (auto-scaled iteration counts of a small body, PauseTiming for setup) fits
// none of that.
// The session extension's declarations (the peer of SQLite capture); Debian's
// libsqlite3 is built with both options, which the bench's link checks.
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_common.h"

namespace {

using namespace syncline_bench;  // NOLINT(build/namespaces): the shared helpers (bench/bench_common.h)

// Reads the top-level "cursor" and "has_more" of a batch. In SQLite's
// batches they come after "changes" (rfind); in jsonb's text they come
// first, in key order (find). A JSON string value cannot hold an unescaped
// quote, so the pattern only matches keys; no table here has a column named
// "cursor".
void ReadPage(const std::string& batch, bool last_keys, std::string* cursor, bool* has_more) {
  std::size_t at = last_keys ? batch.rfind("\"cursor\":") : batch.find("\"cursor\":");
  if (at == std::string::npos) Die("no cursor in batch: " + batch.substr(0, 200));
  std::size_t open = batch.find('"', at + 9);
  std::size_t close = batch.find('"', open + 1);
  *cursor = batch.substr(open + 1, close - open - 1);
  std::size_t more = last_keys ? batch.rfind("\"has_more\":") : batch.find("\"has_more\":");
  if (more == std::string::npos) Die("no has_more in batch");
  std::size_t value = batch.find_first_not_of(' ', more + 11);
  *has_more = batch.compare(value, 4, "true") == 0;
}

std::size_t CountChanges(const std::string& batch) {
  std::size_t count = 0;
  for (std::size_t at = batch.find("\"op\":"); at != std::string::npos; at = batch.find("\"op\":", at + 5))
    ++count;
  return count;
}

// Pulls the whole tracked table of `db` in pages of 1000; returns the pages.
std::vector<std::string> SqlitePullAll(Db& db) {
  std::vector<std::string> pages;
  pages.reserve(128);
  Stmt pull(db.Prepare("SELECT syncline_pull_since(?1, 1000)"));
  std::string cursor;
  bool more = true, first = true;
  while (more) {
    if (first)
      sqlite3_bind_null(pull.s, 1);
    else
      sqlite3_bind_text(pull.s, 1, cursor.data(), static_cast<int>(cursor.size()), SQLITE_TRANSIENT);
    first = false;
    db.Step(pull.s, SQLITE_ROW);
    pages.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(pull.s, 0)),
                       static_cast<std::size_t>(sqlite3_column_bytes(pull.s, 0)));
    sqlite3_reset(pull.s);
    ReadPage(pages.back(), /*last_keys=*/true, &cursor, &more);
  }
  return pages;
}

// The baseline pull: the same rows as JSON, pages of 1000 by key. SQLite's
// json_object cannot hold a blob (and has no base64), so the blob goes as hex.
std::size_t SqliteJsonPages(Db& db, std::vector<std::string>* pages) {
  Stmt page(db.Prepare(
      "SELECT json_group_array(json_object('id', id, 'n', n, 's', s, 'r', r, 'b', hex(b))), max(id), count(*) "
      "FROM (SELECT id, n, s, r, b FROM items WHERE id > ?1 ORDER BY id LIMIT 1000)"));
  std::string last;
  std::size_t total = 0;
  while (true) {
    sqlite3_bind_text(page.s, 1, last.data(), static_cast<int>(last.size()), SQLITE_TRANSIENT);
    db.Step(page.s, SQLITE_ROW);
    std::int64_t count = sqlite3_column_int64(page.s, 2);
    pages->emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(page.s, 0)),
                        static_cast<std::size_t>(sqlite3_column_bytes(page.s, 0)));
    if (count > 0) last = reinterpret_cast<const char*>(sqlite3_column_text(page.s, 1));
    sqlite3_reset(page.s);
    total += static_cast<std::size_t>(count);
    if (count < 1000) break;
  }
  return total;
}

// A tracked database holding `rows`: the source of pulls and of apply batches.
void BuildSource(const std::string& path, const std::string& ext, const std::vector<Row>& rows) {
  Db db(path, ext, /*fresh=*/true);
  CreateItems(db, /*tracked=*/true);
  InsertRows(db, rows, rows.size());
  db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

// SQLite's session extension recording `items`: the floor for a change
// recorder without triggers (the preupdate hook feeds it, in memory). A
// timed step gets a new session, and its time includes producing the
// changeset (sqlite3session_changeset), which is what a sync layer would
// ship.
class Session {
 public:
  explicit Session(Db& db) {
    if (sqlite3session_create(db.get(), "main", &session_) != SQLITE_OK) Die("sqlite3session_create failed");
    if (sqlite3session_attach(session_, "items") != SQLITE_OK) Die("sqlite3session_attach failed");
  }
  ~Session() {
    sqlite3_free(changeset_);
    sqlite3session_delete(session_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Changeset() {
    if (sqlite3session_changeset(session_, &size_, &changeset_) != SQLITE_OK) Die("sqlite3session_changeset failed");
  }
  // The changes in the changeset, counted outside the timed region.
  std::int64_t Count() {
    sqlite3_changeset_iter* iter = nullptr;
    if (sqlite3changeset_start(&iter, size_, changeset_) != SQLITE_OK) Die("sqlite3changeset_start failed");
    std::int64_t count = 0;
    while (sqlite3changeset_next(iter) == SQLITE_ROW)
      ++count;
    if (sqlite3changeset_finalize(iter) != SQLITE_OK) Die("corrupt changeset");
    return count;
  }

 private:
  sqlite3_session* session_ = nullptr;
  void* changeset_ = nullptr;
  int size_ = 0;
};

enum Recorder { kPlain, kTracked, kSessionExt, kRecorders };
const char* const kRecorderNames[] = {"plain", "tracked", "session"};

// Insert in one transaction, then (checkpointed, untimed) update one column
// of every row, then delete 10 %; the size after the insert. Plain, tracked
// and the session extension, in an order that rotates from run to run.
// `settings` (PRAGMAs for every database) adds "_tuned" to the metrics' names.
void InsertUpdateDelete(const std::string& ext, const std::string& dir, const std::vector<Row>& rows, int runs,
                        const std::string& settings) {
  const std::int64_t nrows = static_cast<std::int64_t>(rows.size());
  const std::string suffix = settings.empty() ? "" : "_tuned";
  std::vector<double> ins[kRecorders], upd[kRecorders], del[kRecorders], size[kRecorders];
  // Runs `step` (timed, with the session's changeset when there is one) and
  // checks that the session recorded `expect` changes.
  auto timed = [](Db& db, Recorder who, std::int64_t expect, const std::function<void()>& step) {
    std::unique_ptr<Session> session;
    if (who == kSessionExt) session = std::make_unique<Session>(db);
    auto start = Clock::now();
    step();
    if (session) session->Changeset();
    double ms = Seconds(start) * 1000;
    if (session && session->Count() != expect) Die("the session recorded the wrong number of changes");
    return ms;
  };
  for (int run = 0; run < runs; ++run) {
    for (int k = 0; k < kRecorders; ++k) {
      const Recorder who = static_cast<Recorder>((k + run) % kRecorders);
      const std::string path = dir + "/" + kRecorderNames[who] + ".db";
      Db db(path, ext, /*fresh=*/true);
      if (!settings.empty()) db.Exec(settings);
      CreateItems(db, who == kTracked);
      db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
      ins[who].push_back(timed(db, who, nrows, [&] { InsertRows(db, rows, rows.size()); }));
      db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
      size[who].push_back(static_cast<double>(FileSize(path)));
      upd[who].push_back(timed(db, who, nrows, [&] { db.Exec("UPDATE items SET n = n + 1"); }));
      db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
      del[who].push_back(timed(db, who, nrows / 10, [&] { db.Exec("DELETE FROM items WHERE n % 10 = 0"); }));
      if (db.Int("SELECT count(*) FROM items") != nrows - nrows / 10) Die("delete removed the wrong rows");
      if (who == kTracked && db.Int("SELECT count(*) FROM syncline_rows WHERE deleted = 1") != nrows / 10)
        Die("tombstones missing");
    }
    Progress("sqlite insert/update/delete" + suffix + " run " + std::to_string(run + 1) + ": insert " +
             Num(ins[kTracked].back()) + " / " + Num(ins[kPlain].back()) + " / " + Num(ins[kSessionExt].back()) +
             " ms, update " + Num(upd[kTracked].back()) + " / " + Num(upd[kPlain].back()) + " / " +
             Num(upd[kSessionExt].back()) + " ms, delete " + Num(del[kTracked].back()) + " / " +
             Num(del[kPlain].back()) + " / " + Num(del[kSessionExt].back()) + " ms (tracked / plain / session)");
  }
  Report("sqlite.insert_1_txn" + suffix, "ms", ins[kTracked], ins[kPlain], {{"session", ins[kSessionExt]}});
  Report("sqlite.update_all" + suffix, "ms", upd[kTracked], upd[kPlain], {{"session", upd[kSessionExt]}});
  Report("sqlite.delete_10pct" + suffix, "ms", del[kTracked], del[kPlain], {{"session", del[kSessionExt]}});
  if (settings.empty()) Report("sqlite.storage", "bytes", size[kTracked], size[kPlain]);
  for (const char* name : kRecorderNames)
    for (const char* file_suffix : {"", "-wal", "-shm"})
      unlink((dir + "/" + name + ".db" + file_suffix).c_str());
}

void RunSqlite(const Args& args) {
  const std::string ext = args.Need("ext"), dir = args.Need("dir");
  const int nrows = args.Int("rows", 100000), runs = args.Int("runs", 5), slow_runs = args.Int("slow-runs", 3);
  const std::vector<Row> rows = MakeRows(nrows);
  const std::string plain_path = dir + "/plain.db", tracked_path = dir + "/tracked.db";

  InsertUpdateDelete(ext, dir, rows, runs, "");
  // The same with the connection settings docs/sqlite.md recommends for
  // large transactions on tracked tables, in both databases.
  InsertUpdateDelete(ext, dir, rows, runs, "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-32000;");

  // Insert in 1,000 transactions.
  {
    std::vector<double> t[2];
    const std::size_t per_txn = std::max<std::size_t>(1, rows.size() / 1000);
    for (int run = 0; run < slow_runs; ++run) {
      for (int k = 0; k < 2; ++k) {
        bool tracked = (k + run) % 2 == 1;
        const std::string& path = tracked ? tracked_path : plain_path;
        Db db(path, ext, true);
        CreateItems(db, tracked);
        db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
        auto start = Clock::now();
        InsertRows(db, rows, per_txn);
        t[tracked].push_back(Seconds(start) * 1000);
      }
      Progress("sqlite insert in 1000 txns run " + std::to_string(run + 1) + ": " + Num(t[1].back()) + " / " +
               Num(t[0].back()) + " ms");
    }
    Report("sqlite.insert_1000_txns", "ms", t[1], t[0]);
  }

  // Pull: the source database, once.
  const std::string source_path = dir + "/source.db";
  BuildSource(source_path, ext, rows);
  std::vector<std::string> batches;
  {
    std::vector<double> pull, json;
    Db db(source_path, ext, false);
    for (int run = 0; run < runs; ++run) {
      for (int k = 0; k < 2; ++k) {
        bool ours = (k + run) % 2 == 1;
        if (ours) {
          auto start = Clock::now();
          std::vector<std::string> pages = SqlitePullAll(db);
          double s = Seconds(start);
          std::size_t changes = 0;
          for (const std::string& page : pages)
            changes += CountChanges(page);
          if (changes != rows.size()) Die("pull returned " + std::to_string(changes) + " changes");
          pull.push_back(changes / s);
          if (batches.empty()) batches = std::move(pages);
        } else {
          std::vector<std::string> pages;
          pages.reserve(128);
          auto start = Clock::now();
          std::size_t total = SqliteJsonPages(db, &pages);
          double s = Seconds(start);
          if (total != rows.size()) Die("json pages returned " + std::to_string(total) + " rows");
          json.push_back(total / s);
        }
      }
      Progress("sqlite pull run " + std::to_string(run + 1) + ": " + Num(pull.back()) + " / " + Num(json.back()) +
               " changes/s");
    }
    Report("sqlite.pull", "changes/s", pull, json);
  }

  // Apply those pages into an empty tracked database; baseline: the same
  // rows through a prepared upsert, one transaction per 1000.
  {
    std::vector<double> apply, upsert;
    for (int run = 0; run < slow_runs; ++run) {
      for (int k = 0; k < 2; ++k) {
        bool ours = (k + run) % 2 == 1;
        const std::string& path = ours ? tracked_path : plain_path;
        Db db(path, ext, true);
        CreateItems(db, ours);
        db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
        if (ours) {
          Stmt push(db.Prepare("SELECT syncline_apply_push(?1)"));
          std::int64_t applied = 0;
          auto start = Clock::now();
          for (const std::string& batch : batches) {
            sqlite3_bind_text(push.s, 1, batch.data(), static_cast<int>(batch.size()), SQLITE_STATIC);
            db.Step(push.s, SQLITE_ROW);
            const char* summary = reinterpret_cast<const char*>(sqlite3_column_text(push.s, 0));
            const char* at = std::strstr(summary, "\"applied\":");
            if (at) applied += std::atoll(at + 10);
            sqlite3_reset(push.s);
          }
          double s = Seconds(start);
          if (applied != nrows) Die("apply_push applied " + std::to_string(applied));
          apply.push_back(applied / s);
        } else {
          Stmt insert(
              db.Prepare("INSERT INTO items(id, n, s, r, b) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO UPDATE SET "
                         "n = excluded.n, s = excluded.s, r = excluded.r, b = excluded.b"));
          auto start = Clock::now();
          for (std::size_t i = 0; i < rows.size(); i += 1000) {
            db.Exec("BEGIN");
            for (std::size_t j = i; j < std::min(rows.size(), i + 1000); ++j) {
              BindRow(insert.s, rows[j]);
              db.Step(insert.s, SQLITE_DONE);
              sqlite3_reset(insert.s);
            }
            db.Exec("COMMIT");
          }
          upsert.push_back(rows.size() / Seconds(start));
        }
        if (db.Int("SELECT count(*) FROM items") != nrows) Die("apply: wrong row count");
      }
      Progress("sqlite apply run " + std::to_string(run + 1) + ": " + Num(apply.back()) + " / " + Num(upsert.back()) +
               " changes/s");
    }
    Report("sqlite.apply", "changes/s", apply, upsert);
  }
  for (const std::string& path : {plain_path, tracked_path, source_path})
    for (const char* suffix : {"", "-wal", "-shm"})
      unlink((path + suffix).c_str());
}

// ---------------------------------------------------------------- PostgreSQL

class Pg {
 public:
  explicit Pg(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) Die("connect '" + conninfo + "': " + PQerrorMessage(conn_));
  }
  ~Pg() { PQfinish(conn_); }
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  void Exec(const std::string& sql) {
    PGresult* res = PQexec(conn_, sql.c_str());
    ExecStatusType st = PQresultStatus(res);
    std::string error = PQresultErrorMessage(res);
    PQclear(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) Die("pg: " + sql.substr(0, 120) + ": " + error);
  }
  std::string Value(const std::string& sql) {
    PGresult* res = PQexec(conn_, sql.c_str());
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
      std::string error = PQresultErrorMessage(res);
      PQclear(res);
      Die("pg: " + sql.substr(0, 120) + ": " + error);
    }
    std::string v = PQgetvalue(res, 0, 0);
    PQclear(res);
    return v;
  }
  void Prepare(const std::string& name, const std::string& sql, int nparams) {
    PGresult* res = PQprepare(conn_, name.c_str(), sql.c_str(), nparams, nullptr);
    std::string error = PQresultErrorMessage(res);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) Die("prepare " + name + ": " + error);
  }
  // Runs a prepared statement with text parameters; the caller PQclear()s.
  PGresult* Run(const std::string& name, const std::vector<const char*>& params) {
    PGresult* res =
        PQexecPrepared(conn_, name.c_str(), static_cast<int>(params.size()), params.data(), nullptr, nullptr, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      std::string error = PQresultErrorMessage(res);
      PQclear(res);
      Die("pg " + name + ": " + error);
    }
    return res;
  }

 private:
  PGconn* conn_;
};

const char kPgTable[] = "(id uuid PRIMARY KEY, n integer, s text, r double precision, b bytea)";

void RunPg(const Args& args) {
  const std::string ext = args.Need("ext"), dir = args.Need("dir");
  const int nrows = args.Int("rows", 100000), runs = args.Int("runs", 5), apply_runs = args.Int("apply-runs", 3);

  // Pull: N rows inserted into a tracked table; the baseline reads the same
  // table's rows as jsonb pages by key.
  {
    Pg pg(args.Get("pull-db", ""));
    pg.Exec("SET client_min_messages = warning");
    pg.Exec("CREATE EXTENSION IF NOT EXISTS syncline");
    pg.Exec("DROP TABLE IF EXISTS pull_items");
    pg.Exec(std::string("CREATE TABLE pull_items ") + kPgTable);
    pg.Exec("SELECT syncline.track('pull_items')");
    pg.Exec("INSERT INTO pull_items SELECT md5(i::text)::uuid, i, 'text value for row ' || i || ', lorem ipsum', "
            "i * 0.5 + 0.25, decode(md5(i::text) || md5((-i)::text), 'hex') FROM generate_series(1, " +
            std::to_string(nrows) + ") i");
    pg.Exec("VACUUM ANALYZE pull_items");
    pg.Exec("VACUUM ANALYZE syncline.rows");
    pg.Exec("CHECKPOINT");
    pg.Prepare("pull", "SELECT syncline.pull_since($1, 1000)::text", 1);
    pg.Prepare("page",
               "WITH p AS (SELECT * FROM pull_items WHERE id > $1::uuid ORDER BY id LIMIT 1000) "
               "SELECT jsonb_agg(to_jsonb(p))::text, max(id::text), count(*) FROM p",
               1);
    std::vector<double> pull, json;
    for (int run = 0; run < runs; ++run) {
      for (int k = 0; k < 2; ++k) {
        bool ours = (k + run) % 2 == 1;
        if (ours) {
          std::string cursor;
          bool more = true, first = true;
          std::size_t changes = 0;
          auto start = Clock::now();
          while (more) {
            PGresult* res = pg.Run("pull", {first ? nullptr : cursor.c_str()});
            first = false;
            std::string batch(PQgetvalue(res, 0, 0), static_cast<std::size_t>(PQgetlength(res, 0, 0)));
            PQclear(res);
            ReadPage(batch, /*last_keys=*/false, &cursor, &more);
            changes += CountChanges(batch);
          }
          double s = Seconds(start);
          if (changes != static_cast<std::size_t>(nrows)) Die("pg pull returned " + std::to_string(changes));
          pull.push_back(changes / s);
        } else {
          std::string last = "00000000-0000-0000-0000-000000000000";
          std::size_t total = 0;
          auto start = Clock::now();
          while (true) {
            PGresult* res = pg.Run("page", {last.c_str()});
            std::string page(PQgetvalue(res, 0, 0), static_cast<std::size_t>(PQgetlength(res, 0, 0)));
            long count = std::atol(PQgetvalue(res, 0, 2));
            if (count > 0) last = PQgetvalue(res, 0, 1);
            PQclear(res);
            total += static_cast<std::size_t>(count);
            if (count < 1000) break;
          }
          double s = Seconds(start);
          if (total != static_cast<std::size_t>(nrows)) Die("pg json pages returned " + std::to_string(total));
          json.push_back(total / s);
        }
      }
      Progress("pg pull run " + std::to_string(run + 1) + ": " + Num(pull.back()) + " / " + Num(json.back()) +
               " changes/s");
    }
    Report("pg.pull", "changes/s", pull, json);
    pg.Exec("SELECT syncline.untrack('pull_items')");
    pg.Exec("DROP TABLE pull_items");
  }

  // Apply: batches pulled from a SQLite database with the same rows, into an
  // empty tracked table (named "items", as in the batches); the baseline
  // upserts the same rows, 1000 per statement.
  {
    const std::vector<Row> rows = MakeRows(nrows);
    const std::string source_path = dir + "/pg_source.db";
    BuildSource(source_path, ext, rows);
    std::vector<std::string> batches;
    {
      Db db(source_path, ext, false);
      batches = SqlitePullAll(db);
    }
    for (const char* suffix : {"", "-wal", "-shm"})
      unlink((source_path + suffix).c_str());
    // The baseline's parameters, as text, prepared outside the timed region
    // like the batches.
    std::vector<std::string> text(rows.size() * 5);
    static const char hex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& row = rows[i];
      text[i * 5] = row.id;
      text[i * 5 + 1] = std::to_string(row.n);
      text[i * 5 + 2] = row.s;
      char r[32];
      std::snprintf(r, sizeof r, "%.17g", row.r);
      text[i * 5 + 3] = r;
      std::string b = "\\x";
      for (unsigned char c : row.b) {
        b.push_back(hex[c >> 4]);
        b.push_back(hex[c & 15]);
      }
      text[i * 5 + 4] = b;
    }
    auto upsert_sql = [](std::size_t count) {
      std::string sql = "INSERT INTO items_plain (id, n, s, r, b) VALUES ";
      for (std::size_t j = 0; j < count; ++j) {
        std::size_t p = j * 5;
        sql += (j ? ",(" : "(") + std::string("$") + std::to_string(p + 1) + "::uuid,$" + std::to_string(p + 2) +
               "::integer,$" + std::to_string(p + 3) + "::text,$" + std::to_string(p + 4) + "::double precision,$" +
               std::to_string(p + 5) + "::bytea)";
      }
      return sql + " ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n, s = EXCLUDED.s, r = EXCLUDED.r, b = EXCLUDED.b";
    };

    Pg pg(args.Get("apply-db", ""));
    pg.Exec("SET client_min_messages = warning");
    pg.Exec("CREATE EXTENSION IF NOT EXISTS syncline");
    pg.Exec("DROP TABLE IF EXISTS items_plain");
    pg.Exec(std::string("CREATE TABLE items_plain ") + kPgTable);
    pg.Prepare("apply", "SELECT syncline.apply_push($1::text)::text", 1);
    pg.Prepare("upsert", upsert_sql(1000), 5000);
    if (rows.size() % 1000) pg.Prepare("upsert_tail", upsert_sql(rows.size() % 1000), 5 * (rows.size() % 1000));
    std::vector<double> apply, upsert;
    for (int run = 0; run < apply_runs; ++run) {
      for (int k = 0; k < 2; ++k) {
        bool ours = (k + run) % 2 == 1;
        if (ours) {
          pg.Exec("SELECT syncline.untrack(to_regclass(table_name)) FROM syncline.tracked_tables WHERE table_name = "
                  "'items'");
          pg.Exec("DROP TABLE IF EXISTS items");
          pg.Exec(std::string("CREATE TABLE items ") + kPgTable);
          pg.Exec("SELECT syncline.track('items')");
          pg.Exec("VACUUM ANALYZE syncline.rows");
          pg.Exec("CHECKPOINT");
          std::int64_t applied = 0;
          auto start = Clock::now();
          for (const std::string& batch : batches) {
            PGresult* res = pg.Run("apply", {batch.c_str()});
            const char* summary = PQgetvalue(res, 0, 0);
            const char* at = std::strstr(summary, "\"applied\": ");
            if (at) applied += std::atoll(at + 11);
            PQclear(res);
          }
          double s = Seconds(start);
          if (applied != nrows) Die("pg apply_push applied " + std::to_string(applied));
          if (pg.Value("SELECT count(*) FROM items") != std::to_string(nrows)) Die("pg apply: wrong row count");
          apply.push_back(applied / s);
        } else {
          pg.Exec("TRUNCATE items_plain");
          pg.Exec("VACUUM ANALYZE items_plain");
          pg.Exec("CHECKPOINT");
          std::vector<const char*> params;
          auto start = Clock::now();
          for (std::size_t i = 0; i < rows.size(); i += 1000) {
            std::size_t count = std::min<std::size_t>(1000, rows.size() - i);
            params.clear();
            for (std::size_t p = i * 5; p < (i + count) * 5; ++p)
              params.push_back(text[p].c_str());
            PQclear(pg.Run(count == 1000 ? "upsert" : "upsert_tail", params));
          }
          double s = Seconds(start);
          if (pg.Value("SELECT count(*) FROM items_plain") != std::to_string(nrows)) Die("pg upsert: wrong count");
          upsert.push_back(rows.size() / s);
        }
      }
      Progress("pg apply run " + std::to_string(run + 1) + ": " + Num(apply.back()) + " / " + Num(upsert.back()) +
               " changes/s");
    }
    Report("pg.apply", "changes/s", apply, upsert);
  }
}

// ---------------------------------------------------------------- load-copy

// Decodes one field of PostgreSQL's COPY text format in place.
bool Unescape(const char* begin, const char* end, std::string* out) {
  if (end - begin == 2 && begin[0] == '\\' && begin[1] == 'N') return false;  // NULL
  out->clear();
  for (const char* p = begin; p < end; ++p) {
    if (*p != '\\' || p + 1 == end) {
      out->push_back(*p);
      continue;
    }
    char c = *++p;
    switch (c) {
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'v': out->push_back('\v'); break;
      default:
        if (c >= '0' && c <= '7') {
          int v = 0, k = 0;
          for (; k < 3 && p < end && *p >= '0' && *p <= '7'; ++k, ++p)
            v = v * 8 + (*p - '0');
          --p;
          out->push_back(static_cast<char>(v));
        } else {
          out->push_back(c);
        }
    }
  }
  return true;
}

int HexDigit(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

void LoadCopy(const Args& args) {
  const std::string file = args.Need("file"), path = args.Need("db");
  FILE* in = std::fopen(file.c_str(), "r");
  if (!in) Die("open " + file);
  Db db(path, "", /*fresh=*/true);
  db.Exec(kSqliteTable);
  Stmt insert(db.Prepare("INSERT INTO items(id, n, s, r, b) VALUES (?1, ?2, ?3, ?4, ?5)"));
  db.Exec("BEGIN");
  char* line = nullptr;
  std::size_t cap = 0;
  ssize_t len;
  std::string field[5], blob;
  std::int64_t count = 0;
  while ((len = getline(&line, &cap, in)) > 0) {
    if (line[len - 1] == '\n') --len;
    const char* p = line;
    const char* end = line + len;
    bool present[5];
    for (int f = 0; f < 5; ++f) {
      const char* tab = static_cast<const char*>(std::memchr(p, '\t', static_cast<std::size_t>(end - p)));
      const char* stop = tab ? tab : end;
      present[f] = Unescape(p, stop, &field[f]);
      p = stop + 1;
    }
    for (int f = 0; f < 5; ++f)
      if (!present[f]) sqlite3_bind_null(insert.s, f + 1);
    if (present[0]) sqlite3_bind_text(insert.s, 1, field[0].data(), static_cast<int>(field[0].size()), SQLITE_STATIC);
    if (present[1]) sqlite3_bind_int64(insert.s, 2, std::strtoll(field[1].c_str(), nullptr, 10));
    if (present[2]) sqlite3_bind_text(insert.s, 3, field[2].data(), static_cast<int>(field[2].size()), SQLITE_STATIC);
    if (present[3]) sqlite3_bind_double(insert.s, 4, std::strtod(field[3].c_str(), nullptr));
    if (present[4]) {  // bytea hex output: \x0a1b...
      const std::string& h = field[4];
      if (h.size() < 2 || h[0] != '\\' || h[1] != 'x') Die("bytea not in hex format: " + h.substr(0, 20));
      blob.resize((h.size() - 2) / 2);
      for (std::size_t i = 0; i < blob.size(); ++i)
        blob[i] = static_cast<char>(HexDigit(h[2 + 2 * i]) * 16 + HexDigit(h[3 + 2 * i]));
      sqlite3_bind_blob(insert.s, 5, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
    }
    db.Step(insert.s, SQLITE_DONE);
    sqlite3_reset(insert.s);
    ++count;
  }
  std::free(line);
  std::fclose(in);
  db.Exec("COMMIT");
  std::cerr << "loaded " << count << " rows" << std::endl;
}

// ---------------------------------------------------------------- profile

// One function per phase, so that callgrind's inclusive costs give each
// phase's instructions, plain and tracked side by side.
// (The marker keeps the compiler from folding the identical plain and
// tracked instantiations into one symbol.)
volatile int phase_marker;
#define PHASE template <bool kTracked> __attribute__((noinline))
PHASE void PhaseInsert(Db& db, const std::vector<Row>& rows) {
  phase_marker = kTracked;
  InsertRows(db, rows, rows.size());
}
PHASE void PhaseUpdate(Db& db) {
  phase_marker = kTracked;
  db.Exec("UPDATE items SET n = n + 1");
}
PHASE void PhaseDelete(Db& db) {
  phase_marker = kTracked;
  db.Exec("DELETE FROM items WHERE n % 10 = 0");
}
__attribute__((noinline)) std::vector<std::string> PhasePull(Db& db) { return SqlitePullAll(db); }
__attribute__((noinline)) void PhaseJsonPages(Db& db) {
  std::vector<std::string> pages;
  SqliteJsonPages(db, &pages);
}
__attribute__((noinline)) void PhaseApply(Db& db, const std::vector<std::string>& batches) {
  Stmt push(db.Prepare("SELECT syncline_apply_push(?1)"));
  for (const std::string& batch : batches) {
    sqlite3_bind_text(push.s, 1, batch.data(), static_cast<int>(batch.size()), SQLITE_STATIC);
    db.Step(push.s, SQLITE_ROW);
    sqlite3_reset(push.s);
  }
}
__attribute__((noinline)) void PhaseUpsert(Db& db, const std::vector<Row>& rows) {
  Stmt insert(db.Prepare("INSERT INTO items(id, n, s, r, b) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO UPDATE SET "
                         "n = excluded.n, s = excluded.s, r = excluded.r, b = excluded.b"));
  for (std::size_t i = 0; i < rows.size(); i += 1000) {
    db.Exec("BEGIN");
    for (std::size_t j = i; j < std::min(rows.size(), i + 1000); ++j) {
      BindRow(insert.s, rows[j]);
      db.Step(insert.s, SQLITE_DONE);
      sqlite3_reset(insert.s);
    }
    db.Exec("COMMIT");
  }
}
__attribute__((noinline)) void ProfilePlain(const std::string& dir, const std::vector<Row>& rows) {
  Db db(dir + "/profile_plain.db", "", true);
  CreateItems(db, false);
  PhaseInsert<false>(db, rows);
  PhaseJsonPages(db);
  PhaseUpdate<false>(db);
  PhaseDelete<false>(db);
  Db target(dir + "/profile_plain_target.db", "", true);
  CreateItems(target, false);
  PhaseUpsert(target, rows);
}
__attribute__((noinline)) void ProfileTracked(const std::string& dir, const std::string& ext,
                                              const std::vector<Row>& rows) {
  std::vector<std::string> batches;
  {
    Db db(dir + "/profile.db", ext, true);
    CreateItems(db, true);
    PhaseInsert<true>(db, rows);
    batches = PhasePull(db);
    PhaseUpdate<true>(db);
    PhaseDelete<true>(db);
  }
  Db target(dir + "/profile_target.db", ext, true);
  CreateItems(target, true);
  PhaseApply(target, batches);
}

void Profile(const Args& args) {
  const std::string ext = args.Need("ext"), dir = args.Need("dir");
  const std::vector<Row> rows = MakeRows(args.Int("rows", 5000));
  ProfilePlain(dir, rows);
  ProfileTracked(dir, ext, rows);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: sqlite_bench sqlite|sqlite-gc|sqlite-column|pg|load-copy|profile|version [--key value ...]\n";
    return 2;
  }
  std::string mode = argv[1];
  Args args;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strncmp(argv[i], "--", 2) != 0) {
      std::cerr << "bad argument " << argv[i] << "\n";
      return 2;
    }
    args.values[argv[i] + 2] = argv[i + 1];
  }
  try {
    if (mode == "sqlite")
      RunSqlite(args);
    else if (mode == "sqlite-gc")
      RunSqliteGc(args);
    else if (mode == "sqlite-column")
      RunSqliteColumn(args);
    else if (mode == "pg")
      RunPg(args);
    else if (mode == "load-copy")
      LoadCopy(args);
    else if (mode == "profile")
      Profile(args);
    else if (mode == "version")
      std::cout << sqlite3_libversion() << "\n";
    else {
      std::cerr << "unknown mode " << mode << "\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cerr << "sqlite_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
