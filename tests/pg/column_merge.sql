-- Column-level merge on PostgreSQL (docs/column-merge.md): the track
-- option, capture that stamps only the columns an UPDATE changed (by their
-- stored images), format-2 pulls, and apply_push merging each column by its
-- own stamp. The rule itself is core's (tests/unit/column_merge_test.cc).
-- No BEGIN/ROLLBACK: pulls only see committed work.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(57);

CREATE TABLE notes (id int PRIMARY KEY, title text, body text, status text, score float8, amount numeric);
CREATE TABLE plain (id int PRIMARY KEY, v text);
SELECT syncline.track('plain');

CREATE FUNCTION remote() RETURNS text LANGUAGE sql AS $$ SELECT '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11' $$;
CREATE FUNCTION server() RETURNS text LANGUAGE sql AS $$ SELECT value FROM syncline.meta WHERE key = 'node_id' $$;
-- A stamp offset_ms after now (the drift bound is 5 minutes).
CREATE FUNCTION hlc(offset_ms bigint) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint + offset_ms) << 16), 16, '0') $$;
CREATE FUNCTION stamp(h text) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_object('hlc', h, 'node', remote()) $$;
-- An upsert of note `id` carrying `row` at `h`, with older stamps for the
-- columns in `older` (format 2).
CREATE FUNCTION note_up(id int, r jsonb, h text, older jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'notes', 'op', 'upsert', 'pk', jsonb_build_object('id', id),
    'row', jsonb_build_object('id', id) || r, 'clock', 2, 'hlc', h, 'node', remote())
    || CASE WHEN older = '{}' THEN '{}'::jsonb ELSE jsonb_build_object('columns', older) END $$;
CREATE FUNCTION note_del(id int, h text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'notes', 'op', 'delete', 'pk', jsonb_build_object('id', id), 'clock', 3,
    'hlc', h, 'node', remote()) $$;
CREATE FUNCTION push(VARIADIC changes jsonb[]) RETURNS jsonb LANGUAGE sql AS $$
  SELECT syncline.apply_push(jsonb_build_object('format', 2, 'source', remote(), 'changes', to_jsonb(changes))) $$;
CREATE FUNCTION note(n int) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce((SELECT concat_ws('|', title, body, status) FROM notes WHERE id = n), 'gone') $$;
-- The stamps of note n's columns as a format-2 pull gives them: the names
-- of the columns stamped below the row's version.
CREATE FUNCTION older_columns(n int) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(k, ',' ORDER BY k), '')
    FROM jsonb_array_elements(syncline.pull_since(NULL, 1000, '{"format": 2}')::jsonb -> 'changes') c,
         jsonb_object_keys(coalesce(c -> 'columns', '{}')) k
   WHERE c ->> 'table' = 'notes' AND (c -> 'pk' ->> 'id')::int = n $$;
CREATE FUNCTION cols(n int) RETURNS bytea LANGUAGE sql AS $$
  SELECT r.cols FROM syncline.rows r JOIN syncline.tables t USING (tid)
   WHERE t.table_name = 'notes' AND r.pk = jsonb_build_array(n)::text $$;
CREATE FUNCTION version_of(n int) RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN r.deleted THEN 'deleted' ELSE 'live' END || ' by ' ||
         CASE WHEN r.node = 0 THEN 'server' ELSE 'device' END
    FROM syncline.rows r JOIN syncline.tables t USING (tid)
   WHERE t.table_name = 'notes' AND r.pk = jsonb_build_array(n)::text $$;

-- Tracking.
SELECT throws_like($$SELECT syncline.track('notes', '{"merge": "field"}')$$, '%"merge" must be "row" or "column"%',
                   'an unknown merge mode is refused');
SELECT is(syncline.track('notes', '{"merge": "column"}') ->> 'merge', 'column', 'track: merge by column');
SELECT is((SELECT merge FROM syncline.tables WHERE table_name = 'plain'), 'row', 'row merge stays the default');
SELECT is(syncline.track('notes') ->> 'merge', 'column', 'tracking again without the option keeps the mode');

-- Capture.
INSERT INTO notes VALUES (1, 'title', 'body', 'open', 0, 1.0);
SELECT is(cols(1), NULL, 'an INSERT stamps the whole row');
UPDATE notes SET title = 'title 2' WHERE id = 1;
SELECT is(older_columns(1), 'amount,body,id,score,status', 'an UPDATE stamps only the column it changed');
UPDATE notes SET amount = 1.00 WHERE id = 1;
SELECT is(older_columns(1), 'body,id,score,status,title', 'numeric 1.0 to 1.00 is a change (stored images differ)');
UPDATE notes SET score = '-0'::float8 WHERE id = 1;
SELECT is(older_columns(1), 'amount,body,id,status,title', 'float8 0 to -0 is a change');
UPDATE notes SET body = body, status = 'open' WHERE id = 1;
SELECT is(older_columns(1), 'amount,body,id,score,status,title', 'setting columns to their values changes none');
UPDATE notes SET body = repeat('x', 10000) WHERE id = 1;
UPDATE notes SET title = 'title 3' WHERE id = 1;
SELECT is(older_columns(1), 'amount,body,id,score,status', 'an unchanged TOASTed value is no change');
UPDATE notes SET body = repeat('x', 10000) WHERE id = 1;
SELECT is(older_columns(1), 'amount,body,id,score,status,title', 'nor is the same large value written again');
UPDATE notes SET body = 'body' WHERE id = 1;
BEGIN;
UPDATE notes SET title = 'a' WHERE id = 1;
UPDATE notes SET status = 'b' WHERE id = 1;
COMMIT;
SELECT is(older_columns(1), 'amount,body,id,score,title',
          'two updates in one transaction: each stamps its column, the later one the row');
UPDATE notes SET id = 2 WHERE id = 1;
SELECT is(cols(2), NULL, 'a row under a new key is a whole row');
SELECT is(version_of(1), 'deleted by server', 'and its old key a tombstone');
DELETE FROM notes WHERE id = 2;
SELECT is(cols(2), NULL, 'a tombstone has no column stamps');
INSERT INTO notes VALUES (2, 'again', 'b', 's', 0, 1);
SELECT is(cols(2), NULL, 'a row inserted again is a whole row');
BEGIN;
DELETE FROM notes WHERE id = 2;
INSERT INTO notes VALUES (2, 'again', 'b2', 's', 0, 1);
UPDATE notes SET title = 'x' WHERE id = 2;
COMMIT;
SELECT is(note(2), 'x|b2|s', 'delete, insert and update of one key in a transaction');
UPDATE notes SET status = 'done' WHERE id = 2;
TRUNCATE notes;
SELECT is(cols(2), NULL, 'TRUNCATE leaves tombstones without column stamps');
SELECT is(syncline.pull_since(NULL, 1000, '{"format": 2}')::jsonb ->> 'format', '1',
          'a page whose rows are all at their versions is format 1');

-- Format 1 and format 2 pulls.
INSERT INTO notes VALUES (10, 'title', 'body', 'open');
UPDATE notes SET status = 'closed' WHERE id = 10;
SELECT is(syncline.pull_since(NULL, 1000, '{"format": 2}')::jsonb ->> 'format', '2',
          'a format-2 reader gets format 2');
SELECT ok(NOT syncline.pull_since(NULL, 1000)::text LIKE '%"columns"%', 'a format-1 reader gets rows as versions');

-- apply_push. Note 20: the device edits the body while the server edits the
-- status; both are kept.
SELECT is(push(note_up(20, '{"title": "t", "body": "b", "status": "new"}', hlc(-60000))) ->> 'applied', '1',
          'a device creates a note');
UPDATE notes SET status = 'triaged' WHERE id = 20;
SELECT is(push(note_up(20, '{"title": "t", "body": "edited", "status": "new"}', hlc(-1000),
                       jsonb_build_object('title', stamp(hlc(-60000)), 'status', stamp(hlc(-60000))))) ->> 'applied',
          '1', 'the device edits the body; its stale status is stamped before the server''s edit');
SELECT is(note(20), 't|edited|triaged', 'the body is the device''s, the status the server''s');
SELECT is(version_of(20), 'live by server', 'the merged row is a new version by the server (not as sent)');
SELECT is(older_columns(20), 'amount,body,id,score,status,title',
          'every column keeps its own stamp, below the merged version''s');
-- A format-1 change carries every column at its stamp: a later one wins them all.
SELECT is(push(jsonb_build_object('table', 'notes', 'op', 'upsert', 'pk', '{"id": 20}'::jsonb,
                                  'row', '{"id": 20, "title": "t1", "body": "b1", "status": "s1", "score": 1.5, "amount": "2"}'::jsonb, 'clock', 4,
                                  'hlc', hlc(1000), 'node', remote())) ->> 'applied', '1', 'a format-1 change');
SELECT is(note(20), 't1|b1|s1', 'a later format-1 change wins every column');
SELECT is(version_of(20), 'live by device', 'and the row is its version, as sent');
-- An edit older than the columns it carries changes nothing.
SELECT is(push(note_up(20, '{"title": "old"}', hlc(-30000))) ->> 'skipped', '1', 'an older column edit is skipped');
SELECT is(note(20), 't1|b1|s1', 'and the row is as it was');
-- A change carrying some columns writes only those.
SELECT is(push(note_up(21, '{"title": "only"}', hlc(-20000))) ->> 'applied', '1', 'a row that carries one column');
SELECT is(note(21), 'only', 'the others take their defaults');
SELECT is(push(note_up(21, '{"body": "later"}', hlc(-19000))) ->> 'applied', '1', 'another column of it, later');
SELECT is(note(21), 'only|later', 'both kept');
SELECT is(push(note_up(21, '{"amount": 2}', hlc(-18000))) ->> 'rewritten', '1',
          'a column stored in another form than sent (numeric for an integer) is rewritten');
SELECT ok(older_columns(21) NOT LIKE '%amount%', 'at a new version of the server''s, so that the device takes it');

-- A delete clears the columns older than it; a column edited after it stays.
SELECT is(push(note_up(30, '{"title": "title", "body": "body", "status": "open"}', hlc(-60000))) ->> 'applied', '1',
          'a device creates a note');
UPDATE notes SET status = 'later' WHERE id = 30;
SELECT is(push(note_del(30, hlc(-30000))) ->> 'applied', '1', 'the device deletes it, before the server''s status edit');
SELECT is(note(30), 'later', 'the row stays with the later status, the older columns cleared to NULL');
SELECT is(push(note_del(30, hlc(1000))) ->> 'applied', '1', 'a later delete');
SELECT is(note(30), 'gone', 'deletes the row');
SELECT is(push(note_up(30, '{"title": "late"}', hlc(-500))) ->> 'skipped', '1',
          'an edit older than the delete never brings the row back');
SELECT is(push(note_up(30, '{"title": "back"}', hlc(2000))) ->> 'applied', '1', 'a later edit brings it back');
SELECT is(note(30), 'back', 'with NULL in the columns it did not carry');

-- A column the server refuses is refused on its own; the batch goes on.
ALTER TABLE notes ADD CONSTRAINT short_status CHECK (length(status) < 20);
SELECT is(push(note_up(31, '{"status": "a status far too long to store"}', hlc(-100)),
               note_up(32, '{"title": "fine"}', hlc(-100))) -> 'refused' -> 0 ->> 'change', '0',
          'a column value a constraint refuses is refused');
SELECT is(note(32), 'fine', 'and the change after it applied');

-- A write of some columns of a row is an update of those: NOT NULL columns
-- it does not carry keep their values (found by the demo: INSERT ... ON
-- CONFLICT checks NOT NULL on the row it would insert, before the conflict).
-- (Stamped ahead: the server's clock has seen the stamps pushed above.)
CREATE TABLE tasks (id int PRIMARY KEY, title text NOT NULL, owner text NOT NULL, done boolean NOT NULL DEFAULT false);
SELECT syncline.track('tasks', '{"merge": "column"}');
INSERT INTO tasks VALUES (1, 'task', 'ann');
SELECT is(syncline.apply_push(jsonb_build_object('format', 2, 'source', remote(), 'changes', jsonb_build_array(
            jsonb_build_object('table', 'tasks', 'op', 'upsert', 'pk', '{"id": 1}'::jsonb,
                               'row', '{"id": 1, "done": true}'::jsonb, 'clock', 2, 'hlc', hlc(10000), 'node', remote()))))
            ->> 'applied', '1', 'a change of one column of a row with NOT NULL columns');
SELECT is((SELECT concat_ws('|', title, owner, done) FROM tasks), 'task|ann|t', 'writes that column alone');
SELECT is((SELECT count(*) FROM syncline.conflicts WHERE table_name = 'tasks'), 0::bigint, 'and refuses nothing');

-- A renamed column keeps its own stamp; a dropped one's goes with it.
CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
SELECT syncline.track('docs', '{"merge": "column"}');
INSERT INTO docs VALUES (1, 'title', 'body');
UPDATE docs SET title = 'edited';
CREATE FUNCTION older_docs() RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(k, ',' ORDER BY k), '')
    FROM jsonb_array_elements(syncline.pull_since(NULL, 1000, '{"format": 2}')::jsonb -> 'changes') c,
         jsonb_object_keys(coalesce(c -> 'columns', '{}')) k
   WHERE c ->> 'table' = 'docs' $$;
SELECT is(older_docs(), 'body,id', 'the title is newer than the rest');
ALTER TABLE docs RENAME COLUMN title TO heading;
SELECT is(older_docs(), 'body,id', 'renamed, it keeps its stamp');
ALTER TABLE docs DROP COLUMN heading;
ALTER TABLE docs ADD COLUMN heading text;
SELECT is(older_docs(), 'body,heading,id', 'a column added under a dropped one''s name does not inherit its stamp');

-- Back to row merge, and again.
SELECT is(syncline.track('notes', '{"merge": "row"}') ->> 'merge', 'row', 'switch to row merge');
SELECT is((SELECT count(*) FROM syncline.rows r JOIN syncline.tables t USING (tid)
            WHERE t.table_name = 'notes' AND r.cols IS NOT NULL), 0::bigint, 'the column stamps go');
SELECT is(syncline.track('notes', '{"merge": "column"}') ->> 'merge', 'column', 'and back to column merge');
UPDATE notes SET body = 'again' WHERE id = 20;
SELECT is(older_columns(20), 'amount,id,score,status,title', 'every column was at the row''s version, the body now later');

SELECT * FROM finish();
