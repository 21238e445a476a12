"""The hand-written sections of docs/benchmarks.md (bench/report.py writes them
after the generated tables): how each benchmark runs, the peers, where the
time goes."""

METHOD = """## Method

Every workload runs in full for each sample; syncline's sample, the
baseline's and each peer's take turns (which goes first rotates from run to
run), so load from other processes falls on all alike. The table is always the same 5 columns:
a text UUID key (`uuid` in PostgreSQL), an integer, about 40 characters of
text, a real and a 32-byte blob.

**SQLite** (`bench/sqlite_bench.cc`, mode `sqlite`): file databases in a
temporary directory, `journal_mode=WAL`, `synchronous=NORMAL`, default cache
and temporary storage (the `_tuned` metrics repeat insert, update and delete
with `temp_store=MEMORY` and `cache_size=-32000` in both databases, the
settings docs/sqlite.md recommends for large transactions on tracked tables).
Every sample starts from a new file (the extension loaded in both, the
tracked one `syncline_track`ed while empty), is checkpointed
(`wal_checkpoint(TRUNCATE)`) before each timed step, and times: the insert
(one prepared statement, one transaction), then `UPDATE items SET n = n + 1`,
then `DELETE FROM items WHERE n % 10 = 0`; the file size is taken after the
insert's checkpoint. Insert, update and delete also run against SQLite's
session extension (the peer, below), in the same runs, in turn with plain
and tracked. The 1,000-transaction insert is a separate new file (100 rows
a transaction). Pull reads a tracked file holding N rows:
`syncline_pull_since(cursor, 1000)` until `has_more` is false, against
`json_group_array(json_object(...))` of pages of 1000 rows by key (`id > ?
ORDER BY id LIMIT 1000`; the blob as `hex()`, as SQLite's JSON cannot hold a
blob and SQLite has no base64). Apply feeds those pages to
`syncline_apply_push` in a new, empty tracked file (each call its own
transaction), against a prepared `INSERT ... ON CONFLICT(id) DO UPDATE` of
the same rows, one transaction per 1000. Timing is `std::chrono::steady_clock`
around each whole workload, not Google Benchmark: every sample needs its own
new file and schema outside the timed region and pairs with a baseline
sample, which Google Benchmark's iteration model does not fit.

**Column merge** (`bench/sqlite_column.cc`, mode `sqlite-column`): the
same tracked table in row mode and in column mode, new files, interleaved:
N rows inserted in one transaction and checkpointed, then the timed
`UPDATE items SET n = n + 1` (capture compares every column before and
after, and records `n`'s stamp); then `VACUUM` and the bytes of
`syncline_rows` and its indexes per row (dbstat). The baseline here is row
mode, not a plain table.

**SQLite as WebAssembly** (`bench/wasm.mjs`): the `web/sqlite` module in
Node, databases in memory (Node has no OPFS), the same module for syncline
and baseline. Rows come from one `INSERT ... SELECT` over a recursive CTE
(random keys, the same shape), so insert and update time SQLite and the
capture, not the JavaScript calls. Pull and apply go through the
JavaScript API as an app's would: `pullSince` until `has_more` is false
(parsing each page for its cursor) against `json_group_array` pages by
key; `applyPush` of each page against one upsert from `json_each` of each
page in its own transaction. An in-memory plain update is very cheap, so
the ratios here run higher than the file databases' above.

**PostgreSQL capture** (`bench/pg_workloads.sh`, psql `\\timing`): for
every sample a new table with the contender's capture attached (nothing for
plain; `syncline.track`, which keeps NOTIFY on; a PgQ or audit trigger) and
the contender's log emptied (`untrack` for syncline, `TRUNCATE` of PgQ's
current event table or of the audit log), `VACUUM ANALYZE` of the table and
its log and `CHECKPOINT` before each timed statement; `INSERT INTO t SELECT
... FROM generate_series(1, N)`, then `UPDATE t SET n = n + 1`. pgbench
(`-n -c C -j C -T seconds`, a `CHECKPOINT` before each run): the insert
script inserts one new row with `gen_random_uuid()`; the update script
updates one random row of N by key. Each contender has its own two tables:
plain, tracked with `{"notify": false}`, tracked with NOTIFY on, PgQ, audit
(and, in the logical decoding cluster, plain, tracked with `{"notify":
false}`, slot, slot with a consumer); logs are not emptied between pgbench
runs, for any contender. The contenders' order rotates from run to run.
The column-merge pair (`pg-column`) runs the same bulk samples for a table
tracked by row and one tracked with `{"merge": "column"}` (the UPDATE
changes one column, `n`); then the average `pg_column_size` of each
table's `syncline.rows` rows. The baseline there is row mode.

**PostgreSQL capture in instructions** (`bench/instructions.sh`): timings on a
shared machine vary run to run by more than the differences between the
contenders; instruction counts do not. A single-user backend (`postgres
--single`: no client, no network, each statement its own transaction) runs
the pgbench statements, single-row inserts, then single-row updates by key
of a table of N rows, under `valgrind --tool=callgrind`, per contender, each
run on a fresh copy of one data directory: 100 statements, then 100 + 1,000,
and the difference over 1,000 (the first statements fill caches and build
plans). syncline runs with NOTIFY off. The counts include
everything the backend does for a statement: parse, plan, execute, the
capture, commit.

**PostgreSQL pull and apply** (`bench/sqlite_bench.cc`, mode `pg`, libpq over
the Unix socket, results read as text by the client): `syncline.pull_since(cursor,
1000)::text` until `has_more` is false over a tracked table of N rows,
against `jsonb_agg(to_jsonb(p))::text` of pages of 1000 by key. Apply sends
the pages pulled from a SQLite file holding the same rows to
`syncline.apply_push($1::text)` (one statement, so one transaction, each)
into an empty tracked table (untracked, dropped and recreated, then
`VACUUM`/`CHECKPOINT`, before each sample), against a prepared `INSERT ...
VALUES (1000 rows) ON CONFLICT (id) DO UPDATE` with text parameters, into a
truncated plain table.

**End to end**: `build/bin/syncline clone -q` of a tracked server table into a
new file, under `/usr/bin/time` (wall time, peak RSS), against
`psql -c "\\copy (SELECT id, n, s, r, b FROM items) TO file"` (text format)
followed by `sqlite_bench load-copy`, a small C++ loader that decodes the
COPY text (bytea hex into blobs) into a plain SQLite table with one prepared
statement in one transaction (WAL, `synchronous=NORMAL`). The baseline's time
is the sum of both steps, its RSS the larger of the two processes. Row counts
are checked after every sample.

**Metadata and garbage collection** (`bench/sqlite_gc.cc`, mode
`sqlite-gc`; `bench/gc.sh`): in each engine a new database with the tracked
table, N rows inserted, then `DELETE FROM items WHERE n % 10 <> 0` in one
statement: N/10 live rows and 9N/10 tombstones (metadata rows marked
deleted; both counts are checked). Sizes are measured, every tombstone is
collected, and sizes are measured again; the bench stops if the collection
leaves a tombstone. Sizes do not vary from run to run, so each is measured
once. Each engine runs the workload twice, in new files or databases: in
place, and compacted before each measurement.

- SQLite: `syncline_gc('{"through": V}')`, V the highest version in
  `syncline_rows`. Sizes come from the `dbstat` virtual table (Debian's
  libsqlite3 has `SQLITE_ENABLE_DBSTAT_VTAB`): `sum(pgsize)` of every b-tree
  whose `sqlite_schema.tbl_name` is a `syncline_*` table (the metadata:
  `syncline_rows` and its `UNIQUE (tid, pk)` index
  `sqlite_autoindex_syncline_rows_1`, which `name LIKE 'syncline%'` on
  `dbstat` alone would miss, plus a few pages of the small tables) or
  `items` (the table: its rows and its primary key index). In place means
  after a checkpoint and no `VACUUM`: pages the deletes and the collection
  emptied go to the file's freelist and count against no table, pages partly
  emptied count in full, and the file keeps its size (`file_bytes` in
  bench/results.json). Compacted means after `VACUUM`. After the collection
  the metadata keeps one row per live row plus the version high-water
  mark's sentinel (tid 0).
- PostgreSQL: `SELECT syncline.gc('{"min_age": "0", "device_window": "0"}')`,
  once. `min_age` 0 makes the age bound the call's own snapshot, so no
  earlier run's mark in `syncline.gc_marks` is needed and the one call
  collects every tombstone committed before it; no device has pushed or
  reported to this database, so none holds the horizon. The result's
  `collected` must be 9N/10 and its `tombstones` 0. The metadata is
  `pg_total_relation_size('syncline.rows')`, the one relation with a row
  per tracked row and per tombstone: heap, TOAST, free space and visibility
  maps, and its four indexes (the primary key `(tid, pk)`, the two version
  indexes, the scope index; bench/results.json has the heap and the index
  bytes apart). The table is `pg_total_relation_size('items')`. In place
  means after a plain `VACUUM` of both: what a running server holds. The
  space it frees stays in the files for reuse, except for empty pages at
  the end of a heap, which it truncates; B-tree indexes do not shrink.
  Compacted means after `VACUUM FULL` of both, which rewrites the table and
  its indexes. That is what the remaining rows take, as in a new copy or a
  restore. `VACUUM FULL` holds an exclusive lock for its whole run, so a
  server does not do it routinely. It is measured here because plain
  `VACUUM` alone would hide how much space the collection makes reusable.

**The PostgreSQL clusters** are `tests/pg/with_cluster.sh`'s throwaway
clusters, which run with `fsync=off`: commits are cheap, which magnifies
per-row costs in the TPS ratios. Client and server share the machine's
cores. The main cluster keeps the default `wal_level=replica`; the logical
decoding peer runs in a second one (below).
"""

PEERS_METHOD = """## The peers

What else records changes for someone to ship, set up as their documentation
says, on the same table and workloads, interleaved with plain and syncline.

| contenders | where | WAL setting |
|---|---|---|
| plain, syncline, PgQ, audit trigger | main cluster | `wal_level=replica` (the default) |
| plain, syncline (again), wal2json slot, wal2json slot + consumer | second cluster | `wal_level=logical` |
| SQLite: plain, syncline, session extension | file databases | `journal_mode=WAL`, `synchronous=NORMAL` |

**PgQ** (Debian `postgresql-15-pgq3`): `CREATE EXTENSION pgq; SELECT
pgq.create_queue('q');` and on the table `CREATE TRIGGER ... AFTER INSERT OR
UPDATE OR DELETE ... FOR EACH ROW EXECUTE FUNCTION pgq.logutriga('q')`, which
encodes the row (URL-encoded) into the queue's current event table. No
`pgqd` runs, so the event tables do not rotate during the bench, and no
consumer is registered: this is the cost of capture alone.

**The audit trigger** is what users write by hand, in PL/pgSQL:

```sql
CREATE TABLE audit_log (id bigserial PRIMARY KEY, table_name text NOT NULL, op text NOT NULL,
                        row_data jsonb NOT NULL, changed_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO audit_log (table_name, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(OLD));
  ELSE
    INSERT INTO audit_log (table_name, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
  END IF;
  RETURN NULL;
END $$;
-- AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW EXECUTE FUNCTION audit_row()
```

**Logical decoding with wal2json** (Debian `postgresql-15-wal2json`) needs
`wal_level=logical`, which writes more WAL for every table, so it runs in a
second throwaway cluster (`bench/logical.sh` inside another
`tests/pg/with_cluster.sh`, switched to `wal_level=logical` by `ALTER
SYSTEM` and a restart; this PostgreSQL build also needs wal2json named in
`output_plugin_libraries`). Plain and syncline (NOTIFY off in pgbench, on in
the bulk workloads) are measured again there, interleaved with the peer, and
the peer's ratios are to that cluster's plain; syncline ÷ peer compares with
the syncline of that cluster. Two contenders: **slot, no consumer**
(`pg_create_logical_replication_slot('bench', 'wal2json')` before the
sample, dropped after it, nothing reading it: the cost of the setting and of
a slot retaining WAL) and **slot + `pg_recvlogical`** (`pg_recvlogical
--start -o format-version=2 -F 0 -s 1 -f /dev/null` on the same slot, running
throughout the sample). Decoding happens in the WAL sender while the
workload runs and competes with it for the same cores, which is what the
consumer rows measure; it is not in the client's critical path (a bulk
statement's changes are decoded once it commits), so after each timed step
the bench waits, untimed, until the consumer has confirmed all WAL written,
so that one step's decoding does not fall into the next step's time.

**SQLite's session extension** (`sqlite3session_*`, in Debian's libsqlite3,
built with `SQLITE_ENABLE_SESSION` and `SQLITE_ENABLE_PREUPDATE_HOOK`) is the
floor for a recorder without triggers: the preupdate hook feeds an in-memory
hash of the changed rows' keys and old values. For each timed step
(insert, update, delete) a new session is attached to `items` (untimed), and
the step's time includes `sqlite3session_changeset` producing the changeset
of the step's changes, as a sync layer must; the number of changes in it is
checked afterwards.
"""

PROFILE = """## Where the time goes

### SQLite (callgrind)

`bench/profile.sh [ROWS]` runs the SQLite workloads once, plain and tracked,
under `valgrind --tool=callgrind` and prints instructions per phase and the
hottest functions; it is not part of `make bench` and its figures are not
regenerated here. 5,000 rows, at commit 7080141 (before) and after this
round's work (compact UUID metadata keys, the streaming batch reader):

| phase | tracked, instructions/row | before | plain (baseline) | ratio |
|---|---:|---:|---:|---:|
| insert, one transaction | 31,184 | 32,760 | 10,581 | 2.95 |
| update one column | 28,038 | 29,152 | 2,073 | 13.52 |
| delete | 3,462 | 3,704 | 915 | 3.78 |
| pull (vs `json_group_array` pages) | 26,749 | 33,579 | 13,924 | 1.92 |
| apply (vs prepared upsert) | 56,237 | 99,248 | 10,826 | 5.19 |

- **Tracked insert and update** are close to what SQL triggers allow: an
  empty trigger alone costs about 4,300 instructions a row (the trigger
  program's frame and the statement journal), inserting the metadata row
  about 11,000 more; an update moves the metadata row to its new version
  (6,000 to 13,000 instructions in every layout measured: `WITHOUT ROWID`
  keyed by row, a stable rowid with a version index; docs/sqlite.md). The
  wall-time ratios are higher than the instruction ratios because the
  tracked file is larger and, in one big transaction, spills statement
  journals to a temporary file (the `_tuned` rows above).
- **apply_push**: the upsert into the user's table 29 % (17,600 a row: the
  capture triggers' programs start even though their `WHEN` is false), the
  metadata upsert 23 %, its lookup 9 %, decoding the batch 20 % (RapidJSON's
  SAX reader in situ, straight into the `Batch`).
- **pull_since**: writing the batch about a third, the per-row `SELECT` by
  primary key, decoding keys 4 %.

### PostgreSQL (perf)

`perf record` of the backend, 50,000 rows (not part of `make bench`):

- **Capture** is one trigger per statement with transition tables, writing
  metadata 1,000 rows per plan execution (it was a row trigger with one
  execution per row: 25 % less backend CPU for a bulk insert). What remains
  is the metadata row itself: a second heap row and its primary key index
  (the `ON CONFLICT` probe 15 %, index inserts 24 % of the backend), and
  its version index. Rows of unscoped tables are in one version index, not
  two.
- **pull_since** returns the batch as text (no `jsonb_in`, which was a
  third of the time) and reads a page's rows a table at a time (keys in as
  arrays, one primary key probe each); a page's node ids come in one lookup
  (a join rescanned `syncline.nodes`, a file seek each, for every row). What
  remains is mostly those probes (`_bt_first`/`_bt_compare`, about 40 % of
  the backend), planning the page's statements anew on every call (6 %),
  and the values' output functions and the batch writer (about 10 %).
- **apply_push** (the merge in `core/merge`, the writes in sets): per batch
  of 1,000 one-table changes, one primary key probe per row for the
  metadata, one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE
  ... RETURNING` for the user's rows (in a subtransaction), one plain
  `INSERT` of the new metadata. The backend spends about 78 % in those
  statements' executors: two heap rows and five index entries per change
  (the user's row and its key; the metadata row, its key and its version
  index), against one heap row and one index entry for the baseline's
  upsert; C++ (decoding, converting values, the merge) is about 10 %. That
  is the floor of this metadata layout: a change costs at least two rows.
- **SQLite apply_push** (callgrind, 20,000 rows in pages of 1,000, about
  60,000 instructions a row): the upsert into the user's table 36 % (the
  capture triggers' programs start for every row, and their `WHEN` asks
  whether the row is the one being applied), the metadata upsert 20 %,
  decoding the batch 20 %, the metadata lookup 11 %.
- **Clone**: the client requests the next page while it applies the current
  one and commits pages together (per-page commits wrote the file about a
  hundred times over); it is bound by the client's `apply_push` (about 15 µs
  of CPU a row) and the statement journal of each apply's savepoint.
"""
