-- Schema changes of tracked tables (docs/postgres.md, "Schema changes"): the
-- event triggers keep tracking in step with ALTER TABLE, renames and drops,
-- log each change under a schema version, and pulls carry the schema to
-- readers behind it; changes from a device behind the schema still apply.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(47);

CREATE FUNCTION remote() RETURNS text LANGUAGE sql AS $$ SELECT '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11' $$;
CREATE FUNCTION hlc(offset_ms bigint) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint + offset_ms) << 16), 16, '0') $$;
-- A device's edit, stamped by the server's clock as it is now: later than
-- every server write before it, even one of the same millisecond (the wall
-- clock alone made the device lose such a race now and then).
CREATE FUNCTION push(tbl text, pk jsonb, r jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT syncline.apply_push(jsonb_build_object('format', 1, 'source', remote(), 'changes', jsonb_build_array(
    jsonb_build_object('table', tbl, 'op', 'upsert', 'pk', pk, 'row', r, 'clock', 1, 'hlc', syncline.hlc_now(),
                       'node', remote())))) $$;
CREATE FUNCTION events(after bigint) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(event || ' ' || table_name || coalesce(' ' || from_name || '>' || to_name, '')
                    || coalesce(' ' || column_name, ''), '; ' ORDER BY version)
    FROM syncline.schema_log WHERE version > after $$;
CREATE FUNCTION version_of(tbl text, key text) RETURNS text LANGUAGE sql AS $$
  SELECT r.xid::text || '/' || r.hlc FROM syncline.rows r JOIN syncline.tables t USING (tid)
   WHERE t.table_name = tbl AND r.pk = key $$;

CREATE TABLE notes (id int PRIMARY KEY, org int NOT NULL, title text);
INSERT INTO notes VALUES (1, 7, 'one'), (2, 7, 'two');
SELECT syncline.track('notes', '{"scope": "org"}');
SELECT is(syncline.schema_version(), 1::bigint, 'tracking a table is schema version 1');
SELECT is(events(0), 'track notes', '... logged');
SELECT is((SELECT relid FROM syncline.tables), 'notes'::regclass, 'tracking is keyed by the relation');

-- Columns.
CREATE TEMP TABLE before AS SELECT version_of('notes', '[1]') AS v;
ALTER TABLE notes ADD COLUMN body text DEFAULT '';
SELECT is(events(1), 'add_column notes body', 'ADD COLUMN is logged');
SELECT is(version_of('notes', '[1]'), (SELECT v FROM before), 'a constant default leaves the rows as they were');
SELECT is(syncline.column_default('notes', 4::smallint), '""'::jsonb, 'the constant default, as a value');
ALTER TABLE notes ADD COLUMN created timestamptz DEFAULT now();
SELECT is(syncline.column_default('notes', 5::smallint), NULL, 'now() is not a constant');
SELECT isnt(version_of('notes', '[1]'), (SELECT v FROM before),
            'a default devices cannot work out gives the rows new versions');
SELECT is((SELECT count(*) FROM syncline.rows WHERE node = 0 AND clock = 2), 2::bigint,
          '... local ones, one clock on');
SELECT is((SELECT columns -> 3 ->> 'default' FROM syncline.tracked_tables), '',
          'tracked_tables shows a constant default');
SELECT is((SELECT columns -> 4 ->> 'default_expression' FROM syncline.tracked_tables), 'now()',
          '... and the expression of another');
ALTER TABLE notes RENAME COLUMN title TO heading;
ALTER TABLE notes RENAME COLUMN org TO org_id;
SELECT is(events(3), 'rename_column notes title>heading; rename_column notes org>org_id', 'renames are logged');
SELECT is((SELECT scope_column FROM syncline.tables), 'org_id', 'the scope column follows its rename');
ALTER TABLE notes RENAME COLUMN id TO note_id;
SELECT is((SELECT pk_columns FROM syncline.tables), '{note_id}', 'the key follows its rename');
INSERT INTO notes (note_id, org_id, heading) VALUES (3, 7, 'three');
SELECT is((SELECT count(*) FROM syncline.rows WHERE pk = '[3]'), 1::bigint, 'capture goes on after the renames');
SELECT throws_like($$ALTER TABLE notes DROP COLUMN org_id$$, '%column "org_id" is the scope of tracked table "notes"%',
                   'the scope column cannot be dropped');
SELECT throws_like($$ALTER TABLE notes DROP CONSTRAINT notes_pkey$$,
                   '%the primary key of tracked table "notes" cannot change%', 'nor the primary key');
CREATE TEMP TABLE v2 AS SELECT syncline.schema_version() AS v;
ALTER TABLE notes ALTER COLUMN heading TYPE varchar(20);
SELECT is(events((SELECT v FROM v2)), 'alter_type notes heading', 'a type change is logged');
SELECT is((SELECT count(*) FROM syncline.rows WHERE clock = 3), 2::bigint, '... and the rows get new versions');

-- Pulls for a reader that names its schema version.
SELECT is(syncline.pull_since(NULL, 10)::jsonb ? 'schema_version', false, 'no schema fields for a reader that names none');
SELECT is((syncline.pull_since(NULL, 10, '{"schema": 0}')::jsonb -> 'schema' ->> 'version')::bigint,
          syncline.schema_version(), 'a reader behind gets the schema document');
SELECT is(jsonb_array_length(syncline.pull_since(NULL, 10, '{"schema": 0}')::jsonb -> 'schema' -> 'changes'), 0,
          '... without history for a new reader');
SELECT is(syncline.pull_since(NULL, 10, '{"schema": 2}')::jsonb -> 'schema' -> 'changes' -> 0 ->> 'event', 'add_column',
          '... with the changes after its version for one behind');
SELECT is(syncline.pull_since(NULL, 10, format('{"schema": %s}', syncline.schema_version())::jsonb)::jsonb ? 'schema',
          false, 'a reader at the version gets no document');
SELECT is((syncline.pull_since(NULL, 10, format('{"schema": %s}', syncline.schema_version())::jsonb)::jsonb
           ->> 'schema_version')::bigint, syncline.schema_version(), '... only the version');

-- A device behind the schema: old column names, a dropped column, a column
-- it does not have yet.
ALTER TABLE notes ADD COLUMN color text;
ALTER TABLE notes DROP COLUMN color;
UPDATE notes SET body = 'server body' WHERE note_id = 1;
SELECT is(push('notes', '{"id": 1}', '{"id": 1, "org": 7, "title": "from device", "color": "red"}')
            -> 'ignored_columns', '["notes.color"]', 'a dropped column''s value is ignored, and said so');
SELECT is((SELECT heading || '/' || body FROM notes WHERE note_id = 1), 'from device/server body',
          'old names map to the renamed columns; a column the device lacks keeps its value');
SELECT is((SELECT node FROM syncline.rows WHERE pk = '[1]'), 0,
          'the filled-in row is the server''s own version, to be pulled by the device');
SELECT is(push('notes', '{"id": 9}', '{"id": 9, "org": 7, "title": "new"}') ->> 'rewritten', '1',
          'a new row from the device');
SELECT is((SELECT body FROM notes WHERE note_id = 9), '', '... takes the defaults of what it lacks');
SELECT ok((SELECT created FROM notes WHERE note_id = 9) IS NOT NULL, '... volatile ones too');

-- Tables: renames, drops.
CREATE TABLE tags (id int PRIMARY KEY, label text);
SELECT syncline.track('tags');
ALTER TABLE tags RENAME TO labels;
SELECT is((SELECT table_name FROM syncline.tables WHERE relid = 'labels'::regclass), 'labels', 'a table rename is followed');
INSERT INTO labels VALUES (1, 'x');
SELECT is((SELECT count(*) FROM syncline.rows r JOIN syncline.tables t USING (tid) WHERE t.table_name = 'labels'),
          1::bigint, 'capture goes on after it');
SELECT is(push('tags', '{"id": 2}', '{"id": 2, "label": "y"}') ->> 'applied', '1',
          'a device may still name the table by its old name');
SELECT is((SELECT label FROM labels WHERE id = 2), 'y', '... and its change lands in the renamed table');
CREATE SCHEMA other;
CREATE TABLE other.notes2 (id int PRIMARY KEY);
SELECT syncline.track('other.notes2');
SELECT throws_like($$ALTER TABLE other.notes2 RENAME TO labels$$, '%a table named "labels" is already tracked%',
                   'a rename onto another tracked table''s name is refused');
ALTER TABLE other.notes2 SET SCHEMA public;
SELECT is((SELECT table_schema FROM syncline.tables WHERE table_name = 'notes2'), 'public', 'SET SCHEMA is followed');
SELECT ok(syncline.untrack('labels'), 'untrack finds a renamed table');
SELECT is(events(syncline.schema_version() - 1), 'untrack labels', '... and logs it');

CREATE TEMP TABLE v3 AS SELECT syncline.schema_version() AS v;
DROP TABLE notes2;
SELECT is(events((SELECT v FROM v3)), 'drop_table notes2', 'DROP TABLE of a tracked table is logged');
SELECT is((SELECT count(*) FROM syncline.tables WHERE table_name = 'notes2'), 0::bigint, '... and untracks it');
SELECT lives_ok($$SELECT syncline.pull_since(NULL, 1000)$$, 'a full pull still works');
SELECT is((push('notes2', '{"id": 1}', '{"id": 1}') -> 'refused' -> 0 ->> 'reason'),
          'change 0 (table "notes2"): no tracked table of this name',
          'a change to a dropped table is refused on its own');
CREATE SCHEMA doomed;
CREATE TABLE doomed.t (id int PRIMARY KEY);
SELECT syncline.track('doomed.t');
DROP SCHEMA doomed CASCADE;
SELECT is((SELECT count(*) FROM syncline.tables WHERE table_name = 't'), 0::bigint, 'DROP SCHEMA ... CASCADE untracks');

-- Other DDL is untouched, and the extension goes and comes back.
CREATE TABLE plain (id int PRIMARY KEY);
ALTER TABLE plain ADD COLUMN x int;
SELECT is(events(syncline.schema_version()), NULL, 'DDL on untracked tables logs nothing');
DROP EXTENSION syncline CASCADE;
SELECT lives_ok($$ALTER TABLE plain ADD COLUMN y int; DROP TABLE plain$$, 'DDL works without the extension');
CREATE EXTENSION syncline;
SELECT is(syncline.schema_version(), 0::bigint, 'a new install starts at version 0');

SELECT * FROM finish();
