-- Upgrades (docs/postgres.md, "Upgrades"): a database on syncline 0.1, run
-- by this build's library until ALTER EXTENSION syncline UPDATE, keeps
-- syncing across the update, and ends up with the objects a fresh install
-- of the new version has.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(18);

DROP EXTENSION syncline;
CREATE EXTENSION syncline VERSION '0.1';
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'syncline'), '0.1', 'installed at 0.1');

CREATE FUNCTION remote() RETURNS text LANGUAGE sql AS $$ SELECT '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11' $$;
CREATE FUNCTION push(id int, title text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT syncline.apply_push(jsonb_build_object('format', 1, 'source', remote(), 'changes', jsonb_build_array(
    jsonb_build_object('table', 'notes', 'op', 'upsert', 'pk', jsonb_build_object('id', id),
                       'row', jsonb_build_object('id', id, 'title', title), 'clock', 1,
                       'hlc', lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16), 16, '0'),
                       'node', remote())))) $$;

-- 0.1's SQL, this build's library: tracking, capture, pulls and pushes.
CREATE TABLE notes (id int PRIMARY KEY, title text);
CREATE TABLE gone (id int PRIMARY KEY);
SELECT syncline.track('notes');
SELECT syncline.track('gone');
INSERT INTO notes VALUES (1, 'server');
INSERT INTO gone VALUES (1);
SELECT is(push(2, 'device') ->> 'applied', '1', 'apply_push works on 0.1');
SELECT throws_like($$SELECT syncline.track('notes', '{"merge": "column"}')$$, '%column-level merge needs syncline 0.2%',
                   'column-level merge needs the update');
SELECT is((SELECT count(*) FROM syncline.rows), 3::bigint, 'capture works on 0.1');
CREATE TEMP TABLE device AS
  SELECT syncline.pull_since(NULL, 1000, '{"schema": 0}')::jsonb ->> 'cursor' AS cursor;
SELECT is(syncline.pull_since(NULL, 10, '{"schema": 0}')::jsonb ? 'schema_version', false,
          'a 0.1 server sends no schema, whatever the reader asks');
-- 0.1 has no event triggers: a dropped tracked table stays tracked and
-- breaks full pulls; the update cleans it up.
DROP TABLE gone;
SELECT throws_like($$SELECT syncline.pull_since(NULL, 1000)$$, '%has no columns%', 'the bug 0.2 fixes');

ALTER EXTENSION syncline UPDATE;
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'syncline'), '0.2', 'updated to 0.2');
SELECT is((SELECT string_agg(table_name || '=' || relid::text, ',') FROM syncline.tables), 'notes=notes',
          'tracked tables are keyed by relation, and the one dropped under 0.1 is gone');
SELECT is((SELECT string_agg(event || ' ' || table_name, ', ' ORDER BY version) FROM syncline.schema_log),
          'drop_table gone, track notes', 'the update logs what it found');
SELECT lives_ok($$SELECT syncline.pull_since(NULL, 1000)$$, 'full pulls work again');

-- A device's cursor from before the update stays valid.
INSERT INTO notes VALUES (3, 'after the update');
SELECT is((SELECT jsonb_agg(c -> 'pk' -> 'id') FROM jsonb_array_elements(
             syncline.pull_since((SELECT cursor FROM device), 100)::jsonb -> 'changes') c), '[3]',
          'a cursor issued before the update brings what came after');
SELECT is(push(4, 'device again') ->> 'applied', '1', 'pushes go on');
ALTER TABLE notes ADD COLUMN body text DEFAULT '';
SELECT is(syncline.pull_since(NULL, 10, '{"schema": 0}')::jsonb -> 'schema' -> 'tables' -> 0 -> 'columns' -> 2 ->> 'name',
          'body', 'schema changes are followed after the update');
SELECT is(push(5, 'old device') ->> 'rewritten', '1', 'a device behind the new column still pushes');

-- The updated extension has exactly the objects of a fresh install.
CREATE TEMP TABLE updated AS
  SELECT pg_describe_object(classid, objid, objsubid) AS object FROM pg_depend
   WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
     AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'syncline');
CREATE TEMP TABLE updated_columns AS
  SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'syncline' AND a.attnum > 0 AND NOT a.attisdropped;
CREATE TEMP TABLE updated_views AS
  SELECT viewname, definition FROM pg_views WHERE schemaname = 'syncline';
DROP EXTENSION syncline CASCADE;
CREATE EXTENSION syncline;
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'syncline'), '0.2', 'a fresh install is 0.2');
SELECT set_eq($$SELECT object FROM updated$$,
              $$SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
                 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'syncline')$$,
              'the updated extension has the objects of a fresh install');
SELECT set_eq($$SELECT relname, attname, type FROM updated_columns$$,
              $$SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                  JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'syncline' AND a.attnum > 0 AND NOT a.attisdropped$$,
              '... with the same columns');
SELECT set_eq($$SELECT viewname, definition FROM updated_views$$,
              $$SELECT viewname, definition FROM pg_views WHERE schemaname = 'syncline'$$,
              '... and the same views');

SELECT * FROM finish();
