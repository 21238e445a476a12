-- Tracking and capture on PostgreSQL.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(32);

CREATE TABLE notes (id text PRIMARY KEY, org_id int NOT NULL, title text, body text);
INSERT INTO notes VALUES ('n0', 7, 'before tracking', '');

SELECT is(syncline.track('notes', '{"scope": "org_id"}') ->> 'backfilled', '1', 'track backfills existing rows');
SELECT is(syncline.track('notes', '{"scope": "org_id"}') ->> 'backfilled', '0', 'tracking again is harmless');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'notes'::regclass AND tgname LIKE 'syncline_%'), 2::bigint,
          'two capture triggers, not four');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'notes'::regclass AND tgenabled = 'A'), 2::bigint,
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

SELECT * FROM finish();
