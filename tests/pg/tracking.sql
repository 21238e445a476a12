-- Tracking and capture on PostgreSQL.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(56);

CREATE TABLE notes (id text PRIMARY KEY, org_id int NOT NULL, title text, body text);
INSERT INTO notes VALUES ('n0', 7, 'before tracking', '');

SELECT is(syncline.track('notes', '{"scope": "org_id"}') ->> 'backfilled', '1', 'track backfills existing rows');
SELECT is(syncline.track('notes', '{"scope": "org_id"}') ->> 'backfilled', '0', 'tracking again is harmless');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'notes'::regclass AND tgname LIKE 'syncline_%'), 4::bigint,
          'four capture triggers, not eight');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'notes'::regclass AND tgenabled = 'A'), 4::bigint,
          'capture triggers fire ALWAYS (also under session_replication_role = replica)');

CREATE TABLE nokey (a int, b int);
SELECT throws_like($$SELECT syncline.track('nokey')$$, '%has no primary key%', 'a table without a primary key is refused');
SELECT throws_like($$SELECT syncline.track('notes', '{"scope": "nope"}')$$, '%no column "nope"%', 'unknown scope column');
SELECT throws_like($$SELECT syncline.track('notes', '{"bogus": 1}')$$, '%unknown option "bogus"%', 'unknown option');
SELECT throws_like($$SELECT syncline.track('syncline.rows')$$, '%cannot be tracked%', 'metadata cannot be tracked');

-- Capture: one metadata row per row, clock per change, tombstones.
INSERT INTO notes VALUES ('n1', 7, 'a', 'b');
SELECT is((SELECT clock || ':' || deleted FROM syncline.rows WHERE pk = '["n1"]'), '1:false', 'insert captured');
UPDATE notes SET title = 'a2' WHERE id = 'n1';
UPDATE notes SET title = 'a3' WHERE id = 'n1';
SELECT is((SELECT clock || ':' || deleted FROM syncline.rows WHERE pk = '["n1"]'), '3:false', 'updates count');
DO $$ BEGIN FOR i IN 1..100 LOOP UPDATE notes SET body = i::text WHERE id = 'n1'; END LOOP; END $$;
SELECT is((SELECT count(*) FROM syncline.rows WHERE pk = '["n1"]'), 1::bigint, 'storage stays one row per row');
SELECT is((SELECT clock FROM syncline.rows WHERE pk = '["n1"]'), 103::bigint, '... with the change count');
DELETE FROM notes WHERE id = 'n1';
SELECT is((SELECT clock || ':' || deleted FROM syncline.rows WHERE pk = '["n1"]'), '104:true', 'delete leaves a tombstone');
SELECT is((SELECT scope FROM syncline.rows WHERE pk = '["n1"]'), '7', 'the tombstone keeps its scope');
INSERT INTO notes VALUES ('n1', 7, 'back', '');
SELECT is((SELECT clock || ':' || deleted FROM syncline.rows WHERE pk = '["n1"]'), '105:false', 're-insert revives');
-- One INSERT of new keys and of keys with tombstones: capture writes an
-- inserted row's version without looking first, and only a tombstone found
-- by the primary key sends it back to write over the tombstone.
INSERT INTO notes SELECT 'm' || g, 7, 't', '' FROM generate_series(1, 6) g;
DELETE FROM notes WHERE id IN ('m2', 'm4', 'm6');
INSERT INTO notes SELECT 'm' || g, 7, 't', '' FROM generate_series(2, 8, 2) g;
SELECT is((SELECT string_agg(pk || clock || ':' || deleted, ' ' ORDER BY pk) FROM syncline.rows WHERE pk LIKE '["m%'),
          '["m1"]1:false ["m2"]3:false ["m3"]1:false ["m4"]3:false ["m5"]1:false ["m6"]3:false ["m8"]1:false',
          'one INSERT over tombstones and of new keys: one version each');
SELECT is((SELECT count(*) FROM syncline.rows WHERE pk LIKE '["m%'), 7::bigint, '... and no other metadata row');
DELETE FROM notes WHERE id LIKE 'm%';

-- Stamps only grow, even with a row stamped in the future.
UPDATE syncline.rows SET hlc = hlc + (60000::bigint << 16) WHERE pk = '["n1"]';
SELECT hlc AS future FROM syncline.rows WHERE pk = '["n1"]' \gset
UPDATE notes SET title = 'after' WHERE id = 'n1';
SELECT cmp_ok((SELECT hlc FROM syncline.rows WHERE pk = '["n1"]'), '>', :future::bigint,
              'a local write stamps above the version it replaces');

-- A primary key change is a delete of the old key and an upsert of the new.
UPDATE notes SET id = 'n9' WHERE id = 'n0';
SELECT is((SELECT deleted FROM syncline.rows WHERE pk = '["n0"]'), true, 'pk change: old key deleted');
SELECT is((SELECT deleted FROM syncline.rows WHERE pk = '["n9"]'), false, 'pk change: new key upserted');
SELECT cmp_ok((SELECT seq FROM syncline.rows WHERE pk = '["n0"]'), '<', (SELECT seq FROM syncline.rows WHERE pk = '["n9"]'),
              '... in that order');

SELECT throws_like($$UPDATE notes SET org_id = 8 WHERE id = 'n9'$$, '%scope column "org_id" of a row cannot change%',
                   'moving a row to another scope is refused');

-- Writes under session_replication_role = replica are captured.
SET session_replication_role = replica;
INSERT INTO notes VALUES ('r1', 7, 'replica', '');
RESET session_replication_role;
SELECT is((SELECT deleted FROM syncline.rows WHERE pk = '["r1"]'), false, 'a write as replica is captured');

-- TRUNCATE is captured as a delete of every row.
CREATE TABLE scratch (id int PRIMARY KEY, v text);
SELECT syncline.track('scratch');
INSERT INTO scratch SELECT g, 'v' FROM generate_series(1, 5) g;
TRUNCATE scratch;
SELECT is((SELECT count(*) FILTER (WHERE deleted) || '/' || count(*) FROM syncline.rows r JOIN syncline.tables t USING (tid)
            WHERE t.table_name = 'scratch'), '5/5', 'TRUNCATE leaves a tombstone per row');

-- Capture is per statement: many rows, keys that move and swap.
CREATE TABLE bulk (id int PRIMARY KEY, v text);
SELECT syncline.track('bulk');
CREATE VIEW bulk_meta AS SELECT r.pk, r.clock, r.deleted FROM syncline.rows r JOIN syncline.tables t USING (tid)
  WHERE t.table_name = 'bulk';
INSERT INTO bulk SELECT g, 'v' FROM generate_series(1, 2500) g;
SELECT is((SELECT count(*) FILTER (WHERE NOT deleted AND clock = 1) FROM bulk_meta), 2500::bigint,
          'one INSERT of 2,500 rows: a version per row');
UPDATE bulk SET id = id + 2500 WHERE id > 2000;
SELECT is((SELECT string_agg(pk || ':' || deleted, ' ' ORDER BY pk) FROM bulk_meta
            WHERE (pk::jsonb->>0)::int IN (2001, 2500, 4501, 5000)), '[2001]:true [2500]:true [4501]:false [5000]:false',
          'keys moved by one UPDATE: tombstones for the old keys, versions for the new');
CREATE TABLE swap (id int PRIMARY KEY DEFERRABLE, v text);  -- checked at the end of the statement
SELECT syncline.track('swap');
INSERT INTO swap VALUES (1, 'a'), (2, 'b');
UPDATE swap SET id = 3 - id;
SELECT is((SELECT string_agg(pk || ':' || clock || ':' || deleted, ' ' ORDER BY pk) FROM syncline.rows r
            JOIN syncline.tables t USING (tid) WHERE t.table_name = 'swap'),
          '[1]:2:false [2]:2:false', 'two rows swapping keys: both keys stay live');
-- Every way of writing rows is captured: COPY, ON CONFLICT, MERGE, writable CTEs.
CREATE TABLE ways (id int PRIMARY KEY, v text);
SELECT syncline.track('ways');
COPY ways FROM PROGRAM 'printf "1\tx\n2\tx\n"';
INSERT INTO ways VALUES (2, 'y'), (3, 'y') ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v;
MERGE INTO ways USING (VALUES (1, 'm'), (4, 'm')) s(id, v) ON ways.id = s.id
  WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v);
WITH gone AS (DELETE FROM ways WHERE id = 3 RETURNING id) INSERT INTO ways SELECT id + 10, 'cte' FROM gone;
SELECT is((SELECT string_agg(pk || ':' || clock || ':' || deleted, ' ' ORDER BY pk) FROM syncline.rows r
            JOIN syncline.tables t USING (tid) WHERE t.table_name = 'ways'),
          '[13]:1:false [1]:2:false [2]:2:false [3]:2:true [4]:1:false', 'COPY, ON CONFLICT, MERGE and a CTE captured');
SELECT is((SELECT string_agg(id || v, ' ' ORDER BY id) FROM ways), '1m 2y 4m 13cte', '... as the table holds');

-- A row deleted by a user's trigger while its statement runs stays deleted;
-- a key deleted and inserted again in one transaction is live.
CREATE TABLE tasks (id int PRIMARY KEY, done boolean NOT NULL DEFAULT false);
SELECT syncline.track('tasks');
INSERT INTO tasks VALUES (1), (2), (3);
CREATE FUNCTION purge_done() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN DELETE FROM tasks WHERE id = NEW.id AND NEW.done; RETURN NULL; END$$;
CREATE TRIGGER zz_purge AFTER UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION purge_done();
UPDATE tasks SET done = true WHERE id IN (1, 2);
CREATE VIEW task_meta AS SELECT string_agg(r.pk || ':' || r.deleted, ' ' ORDER BY r.pk) AS meta
  FROM syncline.rows r JOIN syncline.tables t USING (tid) WHERE t.table_name = 'tasks';
SELECT is((SELECT meta FROM task_meta), '[1]:true [2]:true [3]:false', 'rows a trigger deleted during their update stay deleted');
DROP TRIGGER zz_purge ON tasks;
BEGIN;
DELETE FROM tasks;
INSERT INTO tasks VALUES (1), (3);
COMMIT;
SELECT is((SELECT meta FROM task_meta), '[1]:false [2]:true [3]:false', 'delete and insert again in one transaction: live');
BEGIN;
DELETE FROM tasks WHERE id = 3;
INSERT INTO tasks SELECT g FROM generate_series(3, 1500) g;
COMMIT;
SELECT is((SELECT count(*) FILTER (WHERE NOT r.deleted) FROM syncline.rows r JOIN syncline.tables t USING (tid)
            WHERE t.table_name = 'tasks'), 1499::bigint, '... also in a chunk of many rows');

-- ... and the other way round: rows a trigger puts back stay live.
CREATE TABLE kept (id int PRIMARY KEY, v text);
SELECT syncline.track('kept');
INSERT INTO kept VALUES (1, 'a'), (100, 'seed');
CREATE FUNCTION put_back() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO kept VALUES (OLD.id, 'back'); RETURN NULL; END$$;
CREATE TRIGGER put_back AFTER DELETE ON kept FOR EACH ROW WHEN (OLD.id = 1) EXECUTE FUNCTION put_back();
DELETE FROM kept WHERE id = 1;
CREATE VIEW kept_meta AS SELECT string_agg(r.pk || ':' || r.deleted, ' ' ORDER BY r.pk) AS meta
  FROM syncline.rows r JOIN syncline.tables t USING (tid) WHERE t.table_name = 'kept';
SELECT is((SELECT meta FROM kept_meta), '[100]:false [1]:false', 'a row a trigger re-inserts after its delete stays live');
DROP TRIGGER put_back ON kept;
CREATE FUNCTION seed() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO kept VALUES (100, 'seed'); RETURN NULL; END$$;
CREATE TRIGGER a_seed AFTER TRUNCATE ON kept FOR EACH STATEMENT EXECUTE FUNCTION seed();
TRUNCATE kept;
SELECT is((SELECT meta FROM kept_meta), '[100]:false [1]:true', 'a row a TRUNCATE trigger inserts stays live');
DROP TRIGGER a_seed ON kept;
BEGIN;
INSERT INTO kept VALUES (7, 'x');
DELETE FROM kept WHERE id = 7;
COMMIT;
SELECT is((SELECT meta FROM kept_meta), '[100]:false [1]:true [7]:true', 'inserted and deleted in one transaction: deleted');

-- A user's own transition-table triggers, before and after syncline's, still see every row.
CREATE TABLE seen (trigger text, n bigint);
CREATE FUNCTION count_new() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO seen SELECT TG_NAME, count(*) FROM new_rows; RETURN NULL; END$$;
CREATE TRIGGER aa_count AFTER INSERT ON bulk REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_new();
CREATE TRIGGER zz_count AFTER INSERT ON bulk REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_new();
INSERT INTO bulk SELECT g, 'w' FROM generate_series(10001, 10003) g;
SELECT is((SELECT string_agg(trigger || '=' || n, ' ' ORDER BY trigger) FROM seen), 'aa_count=3 zz_count=3',
          'other transition-table triggers see every row');
SELECT is((SELECT count(*) FROM bulk_meta WHERE pk::jsonb->>0 IN ('10001', '10002', '10003')), 3::bigint, '... and so does syncline');
-- A deferrable key lets one statement hold a key twice: each version is kept.
CREATE TABLE dup (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, v text);
SELECT syncline.track('dup');
BEGIN;
INSERT INTO dup VALUES (1, 'a'), (1, 'b');
DELETE FROM dup WHERE v = 'a';
UPDATE dup SET v = 'c';
COMMIT;
SELECT is((SELECT clock || ':' || deleted FROM syncline.rows r JOIN syncline.tables t USING (tid) WHERE t.table_name = 'dup'),
          '4:false', 'a key written twice by one statement: two versions, then a delete and an update');
-- Capture cannot tell an inheritance child's rows from the parent's.
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (PRIMARY KEY (id)) INHERITS (parent);
SELECT throws_like($$SELECT syncline.track('parent')$$, '%parent uses table inheritance%', 'a parent of inheritance children is refused');
SELECT throws_like($$SELECT syncline.track('child')$$, '%child uses table inheritance%', '... and so is a child');
CREATE TABLE whole (id int PRIMARY KEY, k int) PARTITION BY RANGE (id);
CREATE TABLE slice PARTITION OF whole FOR VALUES FROM (0) TO (100);
SELECT throws_like($$SELECT syncline.track('slice')$$, '%slice is a partition of public.whole%',
                   '... and a partition alone (tests/pg/partitions.sql tracks the partitioned table)');
-- A table whose last child is gone can be written at once.
CREATE TABLE single (id int PRIMARY KEY);
SELECT syncline.track('single');
CREATE TABLE single_child () INHERITS (single);
DROP TABLE single_child;
SELECT lives_ok($$INSERT INTO single VALUES (1)$$, 'a tracked table whose inheritance child was dropped is written');
-- Columns added with a default after rows were written: capture reads them.
CREATE TABLE grown (id int PRIMARY KEY, v text);
INSERT INTO grown VALUES (1, 'old');
ALTER TABLE grown ADD COLUMN org int NOT NULL DEFAULT 7;
SELECT syncline.track('grown', '{"scope": "org"}');
SELECT lives_ok($$UPDATE grown SET v = 'new'$$, 'a row older than its scope column updates');
SELECT is((SELECT scope || ':' || clock FROM syncline.rows r JOIN syncline.tables t USING (tid) WHERE t.table_name = 'grown'),
          '7:2', '... in its scope');

-- Composite keys, in key order.
CREATE TABLE pt (playlist int, track int, pos real, PRIMARY KEY (track, playlist));
SELECT syncline.track('pt');
INSERT INTO pt VALUES (1, 10, 0.5);
SELECT is((SELECT pk FROM syncline.rows r JOIN syncline.tables t USING (tid) WHERE t.table_name = 'pt'), '[10,1]',
          'composite keys list values in primary key order');

-- Canonical key form: a UUID key is stored lower-case.
CREATE TABLE things (id uuid PRIMARY KEY, name text);
SELECT syncline.track('things');
INSERT INTO things VALUES ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'x');
SELECT is((SELECT pk FROM syncline.rows r JOIN syncline.tables t USING (tid) WHERE t.table_name = 'things'),
          '["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]', 'uuid keys in canonical form');

-- Table names are unqualified in batches: one name, one table.
CREATE SCHEMA other;
CREATE TABLE other.notes (id text PRIMARY KEY);
SELECT throws_like($$SELECT syncline.track('other.notes')$$, '%already tracked in schema%',
                   'two tracked tables of one name are refused');

-- What a client builds its schema from.
SELECT is((SELECT primary_key FROM syncline.tracked_tables WHERE table_name = 'pt'), ARRAY['track', 'playlist'],
          'tracked_tables lists the key');
SELECT is((SELECT scope_column FROM syncline.tracked_tables WHERE table_name = 'notes'), 'org_id', '... the scope column');
SELECT is((SELECT columns -> 2 ->> 'type' FROM syncline.tracked_tables WHERE table_name = 'pt'), 'real', '... and the columns');

-- pg_dump keeps the metadata.
SELECT ok((SELECT 'syncline.rows'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'syncline'),
          'metadata is registered for pg_dump');

-- Untrack removes triggers and metadata, keeps the rows.
SELECT is(syncline.untrack('scratch'), true, 'untrack');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'scratch'::regclass AND tgname LIKE 'syncline_%'), 0::bigint,
          'untrack drops the triggers');
INSERT INTO scratch VALUES (1, 'untracked');
SELECT is((SELECT count(*) FROM syncline.tables WHERE table_name = 'scratch'), 0::bigint, 'untrack drops the metadata');

-- Capture caches syncline.rows per backend (its indexes, compiled): an index
-- added to it, and the extension dropped and created again, are both seen
-- by the next captured statement of this same session.
CREATE TABLE scratch2 (id integer PRIMARY KEY);
SELECT syncline.track('scratch2') IS NOT NULL AS tracked \gset
INSERT INTO scratch2 VALUES (1);
CREATE INDEX rows_by_clock ON syncline.rows (clock);
INSERT INTO scratch2 VALUES (2);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS by_index FROM syncline.rows WHERE clock = 1 \gset
RESET enable_seqscan;
RESET enable_bitmapscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT is(:by_index::bigint, (SELECT count(*) FROM syncline.rows WHERE clock = 1),
          'an index added to syncline.rows gets the next captured version');
RESET enable_indexscan;
RESET enable_bitmapscan;
DROP INDEX syncline.rows_by_clock;
DROP EXTENSION syncline CASCADE;
CREATE EXTENSION syncline;
SELECT syncline.track('scratch2') IS NOT NULL AS tracked \gset
INSERT INTO scratch2 VALUES (3);
SELECT is((SELECT string_agg(pk, ' ' ORDER BY pk) FROM syncline.rows), '[1] [2] [3]',
          'the extension dropped and created again: capture writes its new metadata');

SELECT * FROM finish();
