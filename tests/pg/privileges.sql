-- Privileges on PostgreSQL: apply_push writes as the calling role (table
-- privileges and row-level security apply), the metadata is written only in
-- the extension owner's name, identifiers from a batch are never executed,
-- only tracked tables can be written, and only a table's owner tracks it.
-- A change the calling role may not write is refused on its own
-- (docs/protocol.md, "Conflicts"): nothing of it is written, and the server
-- answers with its own state of the row.
-- No BEGIN/ROLLBACK: pulls only see committed work.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(56);

\set fake '\'00000000-0000-4000-8000-0000000000aa\''

CREATE TABLE notes (id text PRIMARY KEY, org_id int NOT NULL, title text);
CREATE TABLE plain (id text PRIMARY KEY, org_id int NOT NULL, title text);  -- never tracked
SELECT is(syncline.track('notes') ->> 'table', 'notes', 'notes is tracked');

CREATE ROLE app_reader NOLOGIN;
CREATE ROLE app_writer NOLOGIN;
GRANT SELECT ON notes TO app_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO app_writer;
-- (USAGE on schema syncline and EXECUTE on its functions are PUBLIC's already.)

-- Helpers (PUBLIC may execute them; they run as the caller).
CREATE FUNCTION hlc(offset_ms bigint DEFAULT 0) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint + offset_ms) << 16), 16, '0') $$;
CREATE FUNCTION hlc_int(stamp text) RETURNS bigint LANGUAGE sql AS $$ SELECT ('x' || stamp)::bit(64)::bigint $$;
-- The node id the calling role pushes as: a node id is bound to the role
-- that first pushed under it, so each role is a device of its own.
CREATE FUNCTION me() RETURNS text LANGUAGE sql AS $$
  SELECT CASE current_user WHEN 'app_reader' THEN '00000000-0000-4000-8000-0000000000bb'
                           ELSE '00000000-0000-4000-8000-0000000000aa' END $$;
CREATE FUNCTION up(tbl text, id text, org int, title text, stamp text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', tbl, 'op', 'upsert', 'pk', jsonb_build_object('id', id),
    'row', jsonb_build_object('id', id, 'org_id', org, 'title', title), 'clock', 1, 'hlc', stamp, 'node', me()) $$;
CREATE FUNCTION del(tbl text, id text, stamp text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', tbl, 'op', 'delete', 'pk', jsonb_build_object('id', id),
    'clock', 2, 'hlc', stamp, 'node', me()) $$;
CREATE FUNCTION push(VARIADIC changes jsonb[]) RETURNS jsonb LANGUAGE sql AS $$
  SELECT syncline.apply_push(jsonb_build_object('format', 1, 'source', me(), 'changes', to_jsonb(changes))) $$;
-- A summary's refusals without their stamps, with what it applied.
CREATE FUNCTION refusals(summary jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('applied', summary -> 'applied', 'refused',
           (SELECT jsonb_agg(r - 'hlc' ORDER BY (r ->> 'change')::int) FROM jsonb_array_elements(summary -> 'refused') r)) $$;
CREATE FUNCTION refused(applied int, VARIADIC refusals jsonb[]) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('applied', applied, 'refused', to_jsonb(refusals)) $$;
-- Change n of table tbl (key id) refused, and why.
CREATE FUNCTION refusal(n int, tbl text, pk jsonb, sqlstate text, reason text, forget boolean DEFAULT true) RETURNS jsonb
LANGUAGE sql AS $$
  SELECT jsonb_build_object('change', n, 'table', tbl, 'pk', pk, 'sqlstate', sqlstate,
                            'reason', format('change %s (table "%s"): %s', n, tbl, reason), 'forget', forget) $$;
-- The user tables.
CREATE FUNCTION tables() RETURNS text LANGUAGE sql AS $$
  SELECT coalesce((SELECT string_agg(n::text, ',' ORDER BY id) FROM notes n), '') || '#' ||
         coalesce((SELECT string_agg(p::text, ',' ORDER BY id) FROM plain p), '') $$;
-- Everything apply_push may write of a change: user rows, metadata, nodes,
-- settings. (The clock is saved by every apply that succeeds.)
CREATE FUNCTION state() RETURNS text LANGUAGE sql AS $$
  SELECT tables() || '#' ||
         coalesce((SELECT string_agg(r::text, ',' ORDER BY tid, pk) FROM syncline.rows r), '') || '#' ||
         coalesce((SELECT string_agg(n::text, ',' ORDER BY ref) FROM syncline.nodes n), '') || '#' ||
         coalesce((SELECT string_agg(m::text, ',' ORDER BY key) FROM syncline.meta m WHERE key <> 'hlc'), '') $$;
CREATE FUNCTION meta(key text) RETURNS syncline.rows LANGUAGE sql AS $$
  SELECT r.* FROM syncline.rows r JOIN syncline.tables t USING (tid)
   WHERE t.table_name = 'notes' AND r.pk = jsonb_build_array(key)::text $$;
CREATE FUNCTION fake_ref() RETURNS int LANGUAGE sql AS $$
  SELECT ref FROM syncline.nodes WHERE node_id = '00000000-0000-4000-8000-0000000000aa' $$;

INSERT INTO notes VALUES ('seed', 7, 'seeded by the owner');

-- ---------------------------------------------------------------------------
-- A role with SELECT only: apply_push cannot write for it. Its changes are
-- refused (the device forgets its copies), and the server's answers (its own
-- state of each row, at its own clock) reach its pulls.
SELECT tables() AS before, syncline.node_id() AS server \gset
SET ROLE app_reader;
SELECT hlc(10) AS r1_sent, hlc(11) AS seed_sent \gset
SELECT is(refusals(push(up('notes', 'r1', 7, 'by reader', :'r1_sent'))),
          refused(0, refusal(0, 'notes', '{"id": "r1"}', '42501', 'permission denied for table notes')),
          'app_reader''s upsert through apply_push: refused, permission denied (42501)');
SELECT is(refusals(push(del('notes', 'seed', :'seed_sent'))),
          refused(0, refusal(0, 'notes', '{"id": "seed"}', '42501', 'permission denied for table notes')),
          'app_reader''s delete through apply_push: refused, permission denied (42501)');
SELECT throws_like('INSERT INTO notes VALUES (''r2'', 7, ''direct'')', '%permission denied for table notes%',
                   'app_reader cannot insert directly either');
SELECT ok(syncline.pull_since(NULL, 1000)::jsonb -> 'changes' @> '[{"pk": {"id": "seed"}}]', 'app_reader can pull');
SELECT is((SELECT jsonb_agg(c - 'clock' - 'table' - 'hlc' ORDER BY c -> 'pk' ->> 'id')
             FROM jsonb_array_elements(syncline.pull_since(NULL, 1000)::jsonb -> 'changes') c),
          jsonb_build_array(
            jsonb_build_object('op', 'delete', 'pk', jsonb_build_object('id', 'r1'), 'node', :'server'),
            jsonb_build_object('op', 'upsert', 'pk', jsonb_build_object('id', 'seed'),
                               'row', jsonb_build_object('id', 'seed', 'org_id', 7, 'title', 'seeded by the owner'),
                               'node', :'server')),
          '... which brings it the server''s answers, at the server''s own clock (the device forgets its copies): a '
          'tombstone for its new row, the row it deleted');
RESET ROLE;
SELECT is(tables(), :'before', 'the refused writes wrote nothing to the tables');
SELECT is((SELECT count(*) FROM syncline.conflicts WHERE role_name = 'app_reader' AND sqlstate = '42501' AND forget), 2::bigint,
          '... and are logged, with the role that pushed them');

-- ---------------------------------------------------------------------------
-- A role with SELECT/INSERT/UPDATE/DELETE: apply_push writes for it.
SET ROLE app_writer;
SELECT is((push(up('notes', 'w1', 7, 'by writer', hlc(20))) ->> 'applied')::int, 1, 'app_writer''s upsert is applied');
SELECT is((push(del('notes', 'seed', hlc(20))) ->> 'applied')::int, 1, 'app_writer''s delete is applied');
SELECT lives_ok('INSERT INTO notes VALUES (''w2'', 7, ''direct'')', 'app_writer inserts into the tracked table directly');
SELECT lives_ok('UPDATE notes SET title = ''edited'' WHERE id = ''w2''', 'app_writer updates it directly');
-- ... but never the metadata, which the trigger and apply_push write in the
-- extension owner's name.
SELECT throws_ok($$INSERT INTO syncline.rows VALUES (1, '["x"]', 1, 1, 0, false, NULL, '1', 1)$$,
                 '42501', 'permission denied for table rows', 'app_writer cannot INSERT into syncline.rows');
SELECT throws_ok($$UPDATE syncline.rows SET hlc = hlc + 1$$,
                 '42501', 'permission denied for table rows', 'app_writer cannot UPDATE syncline.rows');
SELECT throws_ok($$DELETE FROM syncline.rows$$,
                 '42501', 'permission denied for table rows', 'app_writer cannot DELETE from syncline.rows');
SELECT throws_ok($$INSERT INTO syncline.meta VALUES ('x', 'y')$$,
                 '42501', 'permission denied for table meta', 'app_writer cannot INSERT into syncline.meta');
SELECT throws_ok($$UPDATE syncline.meta SET value = '00000000-0000-4000-8000-000000000000' WHERE key = 'node_id'$$,
                 '42501', 'permission denied for table meta', 'app_writer cannot UPDATE syncline.meta');
SELECT throws_ok($$DELETE FROM syncline.meta$$,
                 '42501', 'permission denied for table meta', 'app_writer cannot DELETE from syncline.meta');
SELECT throws_ok($$UPDATE syncline.tables SET table_schema = 'x'$$,
                 '42501', 'permission denied for table tables', 'app_writer cannot UPDATE syncline.tables');
SELECT throws_ok($$SELECT syncline.set_max_drift(1)$$,
                 '42501', 'permission denied for function set_max_drift', 'app_writer cannot change the drift bound');
RESET ROLE;
SELECT is((SELECT title FROM notes WHERE id = 'w1'), 'by writer', 'the applied row is in the table');
SELECT is((meta('w1')).node, fake_ref(), '... with the sender''s version in the metadata');
SELECT is((SELECT (deleted, node) FROM syncline.rows r JOIN syncline.tables t USING (tid)
            WHERE t.table_name = 'notes' AND r.pk = '["seed"]'), (true, fake_ref()),
          'the applied delete left the sender''s tombstone');
SELECT is((SELECT (clock, node, deleted) FROM syncline.rows r JOIN syncline.tables t USING (tid)
            WHERE t.table_name = 'notes' AND r.pk = '["w2"]'), (2::bigint, 0, false),
          'app_writer''s direct writes were captured as local versions');

-- ---------------------------------------------------------------------------
-- Row-level security applies to what apply_push writes.
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY org7 ON notes TO app_writer USING (org_id = 7) WITH CHECK (org_id = 7);
INSERT INTO notes VALUES ('secret', 8, 'org 8 only');
SELECT (SELECT string_agg(n::text, ',' ORDER BY id) FROM notes n) AS before \gset
SET ROLE app_writer;
-- (Stamps in the order the device wrote them.)
SELECT hlc(30) AS r8_sent, hlc(31) AS del_sent, hlc(32) AS take_sent, hlc(33) AS both_sent \gset
SELECT is(refusals(push(up('notes', 'r8', 8, 'other org', :'r8_sent'))),
          refused(0, refusal(0, 'notes', '{"id": "r8"}', '42501', 'new row violates row-level security policy for table "notes"')),
          'an upsert of a row the policy refuses is refused (42501)');
SELECT is(refusals(push(del('notes', 'secret', :'del_sent'))),
          refused(0, refusal(0, 'notes', '{"id": "secret"}', '42501',
                             'the row exists but the current role may not delete it (row-level security)')),
          'a delete of a row the role cannot see is refused rather than silently succeeding');
SELECT is(refusals(push(up('notes', 'secret', 7, 'taken over', :'take_sent'))),
          refused(0, refusal(0, 'notes', '{"id": "secret"}', '42501',
                             'new row violates row-level security policy (USING expression) for table "notes"')),
          'an upsert over a row the role cannot see is refused rather than silently succeeding');
SELECT is(refusals(push(up('notes', 'r7', 7, 'fine', :'both_sent'), up('notes', 'r8', 8, 'other org', :'both_sent'))),
          refused(1, refusal(1, 'notes', '{"id": "r8"}', '42501', 'new row violates row-level security policy for table "notes"')),
          'one refused change: the rest of the batch applies');
RESET ROLE;
SELECT is(ARRAY[(SELECT string_agg(n::text, ',' ORDER BY id) FROM notes n WHERE id <> 'r7'), (SELECT title FROM notes WHERE id = 'r7')],
          ARRAY[:'before', 'fine'], '... and nothing of the refused changes was written, the allowed one was');
SET ROLE app_writer;
SELECT is((push(up('notes', 'r7', 7, 'fine', hlc(40))) ->> 'applied')::int, 1, 'a row the policy allows is applied');
SELECT ok(NOT (syncline.pull_since(NULL, 1000)::jsonb -> 'changes' @> '[{"pk": {"id": "secret"}}]'),
          'a pull leaves out the rows the role may not see');
SELECT ok(syncline.pull_since(NULL, 1000)::jsonb -> 'changes' @> '[{"pk": {"id": "r7"}}]', '... and keeps the others');
RESET ROLE;
SELECT is((SELECT title FROM notes WHERE id = 'secret'), 'org 8 only', 'the invisible row is untouched');
SELECT is((meta('secret')).deleted, false, '... and its metadata still has it live');
-- Row-level security cannot judge a row that is gone: without an
-- authorisation hook, the tombstone of a row the role could not see still
-- reaches it (documented in docs/security.md; tenant.sql shows the hook that
-- closes this).
DELETE FROM notes WHERE id = 'secret';
SET ROLE app_writer;
SELECT ok(syncline.pull_since(NULL, 1000)::jsonb -> 'changes' @> '[{"pk": {"id": "secret"}, "op": "delete"}]',
          'without a hook, tombstones are not filtered by row-level security');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Identifiers in a batch are never executed; only tracked tables are written.
-- (Changes this server cannot name a row of: refused, and nothing answered.)
SELECT state() AS before, hlc(50) AS sent \gset
SELECT is(refusals(push(up('notes"; DROP TABLE notes; --', 'x', 7, 't', :'sent'))),
          refused(0, refusal(0, 'notes"; DROP TABLE notes; --', '{"id": "x"}', '42P01', 'no tracked table of this name')),
          'a table name holding SQL is just an unknown table');
SELECT has_table('public', 'notes', '... and notes still exists');
SELECT is(refusals(push(jsonb_set(up('notes', 'x', 7, 't', :'sent'), ARRAY['row', 'title"; DROP TABLE notes; --'], '1'))),
          refused(0, refusal(0, 'notes', '{"id": "x"}', '42703', 'unknown column "title"; DROP TABLE notes; --"')),
          'a column name holding SQL is just an unknown column');
SELECT is(refusals(push(jsonb_set(del('notes', 'x', :'sent'), '{pk}', '{"id\"; DROP TABLE notes; --": "x"}'))),
          refused(0, refusal(0, 'notes', '{"id\"; DROP TABLE notes; --": "x"}', '42703',
                             '"pk" names column "id"; DROP TABLE notes; --", which is not in the table''s primary key (id)')),
          'a key column name holding SQL is refused');
SELECT has_table('public', 'notes', '... and notes still exists');
SELECT is(refusals(push(up('plain', 'x', 7, 't', :'sent'))),
          refused(0, refusal(0, 'plain', '{"id": "x"}', '42P01', 'no tracked table of this name')),
          'an untracked table cannot be written');
SELECT is(refusals(push(up('public.notes', 'x', 7, 't', :'sent'))),
          refused(0, refusal(0, 'public.notes', '{"id": "x"}', '42P01', 'no tracked table of this name')),
          'a schema-qualified name is not a tracked table name');
SELECT is(refusals(push(jsonb_build_object('table', 'meta', 'op', 'upsert', 'pk', '{"key": "node_id"}'::jsonb,
                          'row', jsonb_build_object('key', 'node_id', 'value', :fake), 'clock', 1, 'hlc', :'sent', 'node', me()))),
          refused(0, refusal(0, 'meta', '{"key": "node_id"}', '42P01', 'no tracked table of this name')),
          'syncline''s own tables cannot be written through a batch');
SELECT is(state(), :'before', 'none of these batches wrote anything');
SELECT cmp_ok((SELECT value::bigint FROM syncline.meta WHERE key = 'hlc'), '<', hlc_int(:'sent'),
              '... and the clock has not seen their stamps');

-- ---------------------------------------------------------------------------
-- Tracking: names are unique across schemas; only the owner tracks.
CREATE SCHEMA other;
CREATE TABLE other.notes (id text PRIMARY KEY, body text);
SELECT throws_ok($$SELECT syncline.track('other.notes')$$, '22023',
                 'syncline.track: a table named notes is already tracked in schema public',
                 'a second table of the same name in another schema cannot be tracked');
SELECT is((SELECT array_agg(table_schema) FROM syncline.tables WHERE table_name = 'notes'), ARRAY['public'],
          '... and notes stays tracked in public only');
SELECT hasnt_trigger('other', 'notes', 'syncline_capture_insert', '... and other.notes got no capture trigger');
SET ROLE app_writer;
SELECT throws_ok($$SELECT syncline.track('notes')$$, '42501', 'syncline.track: must be owner of table notes',
                 'a non-owner cannot track a table');
SELECT throws_ok($$SELECT syncline.untrack('notes')$$, '42501', 'syncline.untrack: must be owner of table notes',
                 'a non-owner cannot untrack a table');
RESET ROLE;
SELECT is((SELECT count(*) FROM syncline.tables WHERE table_name = 'notes'), 1::bigint, 'notes is still tracked');

-- No writer's search path reaches the SQL that capture runs as the
-- extension's owner: an operator of the writer's own is never called.
CREATE TABLE ints (id int PRIMARY KEY);
SELECT syncline.track('ints') IS NOT NULL AS tracked \gset
GRANT SELECT, INSERT, DELETE ON ints TO app_writer;
CREATE SCHEMA shadow AUTHORIZATION app_writer;
SET ROLE app_writer;
CREATE FUNCTION shadow.eq(int, int) RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN PERFORM pg_catalog.set_config('syncline_test.hijacked', current_user, false); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
CREATE OPERATOR shadow.= (LEFTARG = int, RIGHTARG = int, FUNCTION = shadow.eq);
SET search_path = shadow, pg_catalog, public;
BEGIN;
INSERT INTO ints VALUES (1);
DELETE FROM ints;
INSERT INTO ints VALUES (1);
COMMIT;
RESET search_path;
RESET ROLE;
SELECT is(current_setting('syncline_test.hijacked', true), NULL,
          'capture never calls an operator from the writer''s search path');

-- Roles are cluster-wide: leave none behind.
DROP OWNED BY app_reader, app_writer;
DROP ROLE app_reader, app_writer;

-- ---------------------------------------------------------------------------
-- The metadata is written in the name of the extension's current owner, also
-- in a session that used the extension (as postgres, so far) before another
-- role dropped it and created it again.
CREATE ROLE syncline_owner_a SUPERUSER NOLOGIN;
CREATE ROLE syncline_owner_b SUPERUSER NOLOGIN;
CREATE TABLE metadata_writers (who name);
CREATE FUNCTION log_metadata_writer() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.metadata_writers VALUES (current_user); RETURN NULL; END$$;
CREATE TABLE owned (id int PRIMARY KEY);
INSERT INTO owned VALUES (1);
DROP EXTENSION syncline CASCADE;
SET ROLE syncline_owner_a;
CREATE EXTENSION syncline;
RESET ROLE;
CREATE TRIGGER log_writer AFTER INSERT OR UPDATE ON syncline.rows FOR EACH ROW EXECUTE FUNCTION log_metadata_writer();
SELECT is(syncline.track('owned') ->> 'backfilled', '1', 'the extension created again by another role is tracking');
INSERT INTO owned VALUES (2);
SELECT is((SELECT array_agg(DISTINCT who) FROM metadata_writers), ARRAY['syncline_owner_a']::name[],
          '... and writes the metadata as its new owner (backfill; capture writes it through the access methods)');
-- Once more, with the previous owner gone.
DROP EXTENSION syncline CASCADE;
DROP ROLE syncline_owner_a;
TRUNCATE metadata_writers;
SET ROLE syncline_owner_b;
CREATE EXTENSION syncline;
RESET ROLE;
CREATE TRIGGER log_writer AFTER INSERT OR UPDATE ON syncline.rows FOR EACH ROW EXECUTE FUNCTION log_metadata_writer();
SELECT is(syncline.track('owned') ->> 'backfilled', '2', 'after the previous owner is dropped, tracking works');
INSERT INTO owned VALUES (3);
SELECT is((SELECT array_agg(DISTINCT who) FROM metadata_writers), ARRAY['syncline_owner_b']::name[],
          '... and writes the metadata as the new owner');
DROP EXTENSION syncline CASCADE;
DROP ROLE syncline_owner_b;

SELECT * FROM finish();
