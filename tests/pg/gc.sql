-- Garbage collection (docs/postgres.md, "Garbage collection"): syncline.gc()
-- drops tombstones below a horizon made of an age, the pull positions of the
-- devices seen lately, and a cap; a cursor below what was collected is
-- answered with SQLSTATE SL001 ("resync"); a push of an unknown row stamped
-- at or below the collected stamps is refused rather than bring a deleted
-- row back; devices report their pull positions with syncline.device_seen.
-- No BEGIN/ROLLBACK: pulls only see committed work.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(49);

\set dev_a '\'0a000000-0000-4000-8000-00000000000a\''
\set dev_b '\'0b000000-0000-4000-8000-00000000000b\''

CREATE TABLE notes (id int PRIMARY KEY, body text);
SELECT syncline.track('notes') IS NOT NULL AS tracked \gset
CREATE FUNCTION hlc(offset_ms bigint DEFAULT 0) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint + offset_ms) << 16), 16, '0') $$;
CREATE FUNCTION up(id int, body text, stamp text, node text, clock int DEFAULT 2) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('format', 1, 'source', node, 'changes', jsonb_build_array(jsonb_build_object(
    'table', 'notes', 'op', 'upsert', 'pk', jsonb_build_object('id', id),
    'row', jsonb_build_object('id', id, 'body', body), 'clock', clock, 'hlc', stamp, 'node', node))) $$;
CREATE FUNCTION tombstones() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM syncline.rows WHERE deleted $$;
CREATE FUNCTION cursor_of(page text) RETURNS text LANGUAGE sql AS $$ SELECT page::jsonb ->> 'cursor' $$;
-- Pulls page after page from a cursor; the changes delivered.
CREATE FUNCTION pull_pages(cursor text, lim int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  page jsonb;
  total bigint := 0;
BEGIN
  LOOP
    page := syncline.pull_since(cursor, lim)::jsonb;
    total := total + jsonb_array_length(page -> 'changes');
    cursor := page ->> 'cursor';
    EXIT WHEN NOT coalesce((page ->> 'has_more')::boolean, false);
  END LOOP;
  RETURN total;
END $$;

-- ---------------------------------------------------------------------------
-- (1) 1000 rows, 900 deleted. A cursor from before the deletes, one after.
INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 1000) g;
SELECT hlc(-60000) AS early_stamp \gset
SELECT cursor_of(syncline.pull_since(NULL, 100000)) AS before_deletes \gset
DELETE FROM notes WHERE id > 100;
SELECT cursor_of(syncline.pull_since(:'before_deletes', 100000)) AS after_deletes \gset
SELECT is(tombstones(), 900::bigint, 'the deletes left 900 tombstones');

-- (2) Nothing is collected before its time: by default tombstones younger
-- than 7 days stay, and a dry run changes nothing.
SELECT is((syncline.gc() ->> 'collected')::bigint, 0::bigint, 'gc() keeps tombstones younger than 7 days');
SELECT is((syncline.gc('{"min_age": "0", "dry_run": true}') ->> 'collected')::bigint, 900::bigint,
          'a dry run reports what would go');
SELECT is(tombstones(), 900::bigint, '... and collects nothing');

-- (3) With no age: every tombstone goes, and the metadata is the live rows'.
SELECT syncline.gc('{"min_age": "0"}') AS result \gset
SELECT is((:'result'::jsonb ->> 'collected')::bigint, 900::bigint, 'gc collects the 900 tombstones');
SELECT is(tombstones(), 0::bigint, 'no tombstone is left');
SELECT is((SELECT count(*) FROM syncline.rows), (SELECT count(*) FROM notes), 'metadata holds the live rows only');
SELECT ok((:'result'::jsonb ->> 'watermark')::bigint > 0, 'the watermark is the greatest stamp collected');
SELECT is(:'result'::jsonb -> 'held_by', '[]'::jsonb, 'no device held it back');

-- (4) Cursors: one from before the deletes gets "resync" (SL001); one past
-- them, and a full pull, go on.
SELECT throws_ok(format('SELECT syncline.pull_since(%L)', :'before_deletes'), 'SL001', NULL,
                 'a cursor older than the collected deletes is refused with SL001');
SELECT throws_like(format('SELECT syncline.pull_since(%L)', :'before_deletes'), '%garbage collection horizon%resync%',
                   '... saying resync');
SELECT lives_ok(format('SELECT syncline.pull_since(%L)', :'after_deletes'), 'a cursor past the deletes pulls on');
SELECT is(jsonb_array_length(syncline.pull_since(NULL, 100000)::jsonb -> 'changes'), 100,
          'a full pull brings the 100 live rows');
SELECT is(pull_pages(NULL, 30), 100::bigint, 'a full pull in pages goes on below the horizon it began under');
SELECT cursor_of(syncline.pull_since(NULL, 30)) AS first_page \gset
DELETE FROM notes WHERE id = 100;
SELECT is((syncline.gc('{"min_age": "0"}') ->> 'collected')::bigint, 1::bigint, 'another collection');
SELECT throws_ok(format('SELECT syncline.pull_since(%L)', :'first_page'), 'SL001', NULL,
                 '... refuses a page cursor issued under the horizon before it');

-- (5) The watermark: an edit of a deleted row (clock 2), stamped before the
-- collected deletes, is refused on its own and the device forgets its copy;
-- a row stamped after them goes in; a row new at its origin (clock 1) made
-- before them goes in too, stamped above the watermark.
SELECT syncline.apply_push(up(500, 'late edit', :'early_stamp', :dev_a)) AS summary \gset
SELECT is((:'summary'::jsonb -> 'refused' -> 0 ->> 'sqlstate'), 'SL001', 'a late edit of a collected row is refused');
SELECT is((:'summary'::jsonb -> 'refused' -> 0 ->> 'forget')::boolean, true, '... and the device is to forget it');
SELECT is((SELECT count(*) FROM notes WHERE id = 500), 0::bigint, '... and the row does not come back');
SELECT is((SELECT sqlstate FROM syncline.conflicts WHERE node_id = :dev_a), 'SL001', '... and it is logged');
SELECT is(syncline.apply_push(up(2000, 'new', hlc(), :dev_a)) ->> 'applied', '1', 'a new row stamped now goes in');
SELECT is(syncline.apply_push(up(2001, 'made offline', :'early_stamp', :dev_a, 1)) ->> 'rewritten', '1',
          'a row new at its origin, stamped before the collected deletes, goes in restamped');
SELECT ok((SELECT hlc > (syncline.gc('{"dry_run": true}') ->> 'watermark')::bigint AND node = 0
             FROM syncline.rows WHERE pk = '[2001]'), '... above the watermark, as the server''s version');
SELECT is(syncline.apply_push(up(50, 'edit', :'early_stamp', :dev_a)) - 'source' - 'rewritten' - 'cursor',
          '{"applied": 0, "skipped": 1}',
          'an old stamp on a row the server knows merges as always (older: skipped)');

-- (6) Devices report their pull positions; one seen lately holds the
-- horizon at its position, until it falls out of the window.
SELECT cursor_of(syncline.pull_since(NULL, 100000)) AS b_cursor \gset
SELECT syncline.device_seen(:dev_b, :'b_cursor', '7') AS seen \gset
SELECT ok(:'seen'::jsonb ? 'bound' AND :'seen'::jsonb ->> 'position' ~ '^[0-9]+\.0$',
          'device_seen answers the collection bound and a position');
SELECT is((SELECT pull_cursor FROM syncline.devices WHERE node_id = :dev_b), :'b_cursor',
          'the devices table holds its pull cursor');
SELECT is((SELECT scope FROM syncline.devices WHERE node_id = :dev_b), '7'::jsonb, '... and its scope');
SELECT is((SELECT last_push FROM syncline.devices WHERE node_id = :dev_b), NULL, '... and no push yet');
DELETE FROM notes WHERE id <= 10;
SELECT syncline.gc('{"min_age": "0"}') AS result \gset
SELECT is((:'result'::jsonb ->> 'collected')::bigint, 0::bigint, 'a device behind the deletes holds them');
SELECT ok(:'result'::jsonb -> 'held_by' @> jsonb_build_array(jsonb_build_object('node_id', :dev_b)),
          '... and gc names it');
SELECT ok(:'result'::jsonb -> 'held_by' @> jsonb_build_array(jsonb_build_object('node_id', :dev_a, 'pull_cursor', NULL)),
          '... and the device that pushed but never reported a position');
SELECT lives_ok(format('SELECT syncline.pull_since(%L)', :'b_cursor'), '... and its cursor still pulls');
SELECT is((syncline.gc('{"min_age": "0", "device_window": "0"}') ->> 'collected')::bigint, 11::bigint,
          'devices idle past the window no longer hold the horizon (10 deletes, and the answer to the late edit)');
SELECT throws_ok(format('SELECT syncline.pull_since(%L)', :'b_cursor'), 'SL001', NULL,
                 '... and its cursor then gets resync');

-- A push counts as activity too: a device that pushes but reports no
-- position (an older client) holds the horizon while it pushes.
UPDATE syncline.devices SET last_seen = now() - interval '40 days' WHERE node_id = :dev_a;
SELECT syncline.apply_push(up(3000, 'still pushing', hlc(), :dev_a)) AS summary \gset
SELECT ok((SELECT last_seen > now() - interval '1 minute' FROM syncline.devices WHERE node_id = :dev_a),
          'a push refreshes the device''s last_seen');

-- (7) The cap: at most max_tombstones stay, whatever holds them.
SELECT syncline.device_seen(:dev_b, cursor_of(syncline.pull_since(NULL, 100000)), '7') AS seen \gset
DELETE FROM notes WHERE id BETWEEN 11 AND 20;
SELECT is((syncline.gc('{"min_age": "0"}') ->> 'collected')::bigint, 0::bigint, 'the device holds 10 new tombstones');
SELECT is((syncline.gc('{"min_age": "0", "max_tombstones": 3}') ->> 'collected')::bigint, 7::bigint,
          'the cap keeps 3 of them');
SELECT is(tombstones(), 3::bigint, '... which are left');

-- (8) The age is measured by the marks of earlier runs: a mark 8 days old
-- lets the default policy collect what was there then.
DELETE FROM syncline.devices;
INSERT INTO syncline.gc_marks VALUES (now() - interval '10 days', '1');
INSERT INTO syncline.gc_marks VALUES (now() - interval '8 days', pg_snapshot_xmin(pg_current_snapshot()));
DELETE FROM notes WHERE id BETWEEN 21 AND 25;
SELECT is((syncline.gc() ->> 'collected')::bigint, 3::bigint, 'gc() collects what is older than the 7-day mark');
SELECT is(tombstones(), 5::bigint, '... and keeps the newer tombstones');
SELECT is((SELECT count(*) FROM syncline.gc_marks WHERE at < now() - interval '9 days'), 0::bigint,
          'marks older than the one used are dropped');

-- (9) Bad input.
SELECT throws_ok($$SELECT syncline.gc('{"age": "1 day"}')$$, '22023', NULL, 'an unknown option is an error');
SELECT throws_like($$SELECT syncline.gc('{"min_age": "soon"}')$$, '%bad option value%', 'a bad interval is an error');
SELECT throws_ok($$SELECT syncline.gc('{"max_tombstones": -1}')$$, '22023', NULL, 'a negative cap is an error');
SELECT is(syncline.gc(NULL) ->> 'dry_run', 'false', 'gc(NULL) runs with the defaults');
SELECT throws_ok(format('SELECT syncline.device_seen(%L, %L)', :dev_a, 'not-a-cursor'), '22023', NULL,
                 'device_seen refuses a cursor this server did not issue');
SELECT lives_ok(format('SELECT syncline.device_seen(%L, NULL)', :dev_a), 'a device that has not pulled yet reports');

-- (10) Roles: gc is for administrators; a node id is bound to its role.
CREATE ROLE gc_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO gc_app;
SET ROLE gc_app;
SELECT throws_ok($$SELECT syncline.gc()$$, '42501', NULL, 'a plain role may not collect');
SELECT throws_ok(format('SELECT syncline.device_seen(%L, NULL)', :dev_a), '42501', NULL,
                 'a node id bound to another role is refused');
RESET ROLE;

SELECT * FROM finish();
