-- Merges whose writes depend on each other or on the server: a UNIQUE value
-- handed from one row to another inside a batch or across pages, and values
-- a user's trigger sets while a change is applied.
-- No BEGIN/ROLLBACK: pulls only see committed work.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(38);

CREATE TABLE users (id uuid PRIMARY KEY, email text UNIQUE NOT NULL);
CREATE TABLE notes (id uuid PRIMARY KEY, user_id uuid REFERENCES users (id), body text);
SELECT syncline.track('users');
SELECT syncline.track('notes');

-- Hand-made batches from one remote device. A stamp is offset_ms after now
-- (the drift bound is 5 minutes); every case takes its stamps in one
-- statement, in the order the device wrote them.
CREATE FUNCTION remote() RETURNS text LANGUAGE sql AS $$ SELECT '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11' $$;
CREATE FUNCTION hlc(offset_ms bigint) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint + offset_ms) << 16), 16, '0') $$;
CREATE FUNCTION hlc_int(stamp text) RETURNS bigint LANGUAGE sql AS $$ SELECT ('x' || stamp)::bit(64)::bigint $$;
CREATE FUNCTION id(n text) RETURNS uuid LANGUAGE sql AS $$ SELECT ('00000000-0000-4000-8000-' || lpad(n, 12, '0'))::uuid $$;
CREATE FUNCTION user_up(n text, email text, stamp text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'users', 'op', 'upsert', 'pk', jsonb_build_object('id', id(n)),
    'row', jsonb_build_object('id', id(n), 'email', email), 'clock', 1, 'hlc', stamp, 'node', remote()) $$;
CREATE FUNCTION user_del(n text, stamp text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'users', 'op', 'delete', 'pk', jsonb_build_object('id', id(n)),
    'clock', 2, 'hlc', stamp, 'node', remote()) $$;
CREATE FUNCTION note_del(n text, stamp text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'notes', 'op', 'delete', 'pk', jsonb_build_object('id', id(n)),
    'clock', 2, 'hlc', stamp, 'node', remote()) $$;
CREATE FUNCTION note_up(n text, user_n text, stamp text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'notes', 'op', 'upsert', 'pk', jsonb_build_object('id', id(n)),
    'row', jsonb_build_object('id', id(n), 'user_id', id(user_n), 'body', 'note ' || n), 'clock', 1, 'hlc', stamp,
    'node', remote()) $$;
CREATE FUNCTION batch(VARIADIC changes jsonb[]) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('format', 1, 'source', remote(), 'changes', to_jsonb(changes)) $$;
CREATE FUNCTION apply(b jsonb) RETURNS text LANGUAGE sql AS $$ SELECT format('SELECT syncline.apply_push(%L)', b) $$;
-- The users and notes of one case (their ids start with `prefix`), as text.
CREATE FUNCTION rows_of(prefix text) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce((SELECT string_agg(right(u.id::text, 2) || '=' || u.email, ' ' ORDER BY u.id) FROM users u
                    WHERE right(u.id::text, 2) LIKE prefix || '%'), '') || ' | ' ||
         coalesce((SELECT string_agg(right(n.id::text, 2) || '->' || right(n.user_id::text, 2), ' ' ORDER BY n.id)
                     FROM notes n WHERE right(n.id::text, 2) LIKE prefix || '%'), '') $$;
-- A row's metadata: live or deleted, and whose version.
CREATE FUNCTION meta(tbl text, n text) RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN r.deleted THEN 'deleted' ELSE 'live' END || ' by ' ||
         CASE WHEN r.node = 0 THEN 'server' ELSE (SELECT node_id::text FROM syncline.nodes WHERE ref = r.node) END
    FROM syncline.rows r JOIN syncline.tables t USING (tid)
   WHERE t.table_name = tbl AND r.pk = jsonb_build_array(id(n)::text)::text $$;

-- Case A: the device deleted u1 (email a@x), then created u2 with the same
-- email and a note of u2; all three arrive in one batch, in the order the
-- device wrote them. Every prefix of that order satisfies the constraints,
-- so the merge can write it; writing u2 before u1 is gone breaks
-- users_email_key (PostgreSQL checks a NOT DEFERRABLE UNIQUE at every row).
SELECT lives_ok(apply(batch(user_up('a1', 'a@x', hlc(-9000)))), 'case A: the server holds u1 (a@x)');
SELECT lives_ok(apply(batch(user_del('a1', hlc(-5000)), user_up('a2', 'a@x', hlc(-4000)), note_up('a3', 'a2', hlc(-3000)))),
                'case A: delete u1, insert u2 with its email, insert a note of u2, in one batch');
SELECT is(rows_of('a'), 'a2=a@x | a3->a2', 'case A: the server holds u2 and its note, not u1');
SELECT is(meta('users', 'a1'), 'deleted by ' || remote(), 'case A: u1 has the device''s tombstone');

-- The same batch as a relay may list it: a node that relayed these changes
-- and later received a newer delete of u1 from another device gives u1's
-- tombstone a later local version than u2, so its pulls list u2 (and the
-- note) first. The versions are the same, so the result must be too.
SELECT lives_ok(apply(batch(user_up('b1', 'b@x', hlc(-9000)))), 'relay order: the server holds u1 (b@x)');
SELECT lives_ok(apply(batch(user_up('b2', 'b@x', hlc(-4000)), note_up('b3', 'b2', hlc(-3000)), user_del('b1', hlc(-5000)))),
                'relay order: insert u2 with u1''s email and its note, then delete u1, in one batch');
SELECT is(rows_of('b'), 'b2=b@x | b3->b2', 'relay order: the server holds u2 and its note, not u1');

-- Case B: across two pages (each page its own apply_push, all or nothing).
-- On the server u1 (c@x) also has a note; the device deleted that note and
-- u1, then created u2 with the same email and a note of u2. Split after the
-- deletes, each page is valid on its own.
SELECT lives_ok(apply(batch(user_up('c1', 'c@x', hlc(-9000)), note_up('c0', 'c1', hlc(-8000)))),
                'case B1: the server holds u1 (c@x) and a note of u1');
SELECT hlc(-6000) AS c_del0, hlc(-5000) AS c_del1, hlc(-4000) AS c_u2, hlc(-3000) AS c_note \gset
SELECT lives_ok(apply(batch(note_del('c0', :'c_del0'), user_del('c1', :'c_del1'))),
                'case B1: page 1 deletes the note of u1 and u1');
SELECT lives_ok(apply(batch(user_up('c2', 'c@x', :'c_u2'), note_up('c3', 'c2', :'c_note'))),
                'case B1: page 2 inserts u2 with u1''s email and a note of u2');
SELECT is(rows_of('c'), 'c2=c@x | c3->c2', 'case B1: the server holds u2 and its note, not u1');

-- Split after u2: the hand-off is inside page 1 (with the note's delete),
-- the new note in page 2.
SELECT lives_ok(apply(batch(user_up('d1', 'd@x', hlc(-9000)), note_up('d0', 'd1', hlc(-8000)))),
                'case B2: the server holds u1 (d@x) and a note of u1');
SELECT hlc(-6000) AS d_del0, hlc(-5000) AS d_del1, hlc(-4000) AS d_u2, hlc(-3000) AS d_note \gset
SELECT lives_ok(apply(batch(note_del('d0', :'d_del0'), user_del('d1', :'d_del1'), user_up('d2', 'd@x', :'d_u2'))),
                'case B2: page 1 deletes the note of u1 and u1, and inserts u2 with u1''s email');
SELECT lives_ok(apply(batch(note_up('d3', 'd2', :'d_note'))), 'case B2: page 2 inserts a note of u2');
SELECT is(rows_of('d'), 'd2=d@x | d3->d2', 'case B2: the server holds u2 and its note, not u1');
-- (The reverse split, u2 and its note in page 1 and u1's delete in page 2,
-- has no valid page 1: two users would hold one email when it commits.)

-- Swap: u1 moves from e@x to another email, then u2 takes e@x, in one batch.
SELECT lives_ok(apply(batch(user_up('e1', 'e@x', hlc(-9000)))), 'swap: the server holds u1 (e@x)');
SELECT lives_ok(apply(batch(user_up('e1', 'e-moved@x', hlc(-5000)), user_up('e2', 'e@x', hlc(-4000)))),
                'swap: u1 moves to another email, u2 takes e@x, in one batch');
SELECT is(rows_of('e'), 'e1=e-moved@x e2=e@x | ', 'swap: both users hold their new emails');

-- The swap as the device's pull lists it when u1 was edited again after u2
-- took its email: one version per row, in the order of each row's last
-- write, so u2 comes first (a pull is a snapshot, not a history).
SELECT lives_ok(apply(batch(user_up('f1', 'f@x', hlc(-9000)))), 'swap, edited again: the server holds u1 (f@x)');
SELECT lives_ok(apply(batch(user_up('f2', 'f@x', hlc(-4000)), user_up('f1', 'f-moved-again@x', hlc(-3000)))),
                'swap, edited again: u2 (f@x) listed before u1''s last version');
SELECT is(rows_of('f'), 'f1=f-moved-again@x f2=f@x | ', 'swap, edited again: both users hold their new emails');

-- A user's BEFORE trigger on the server changes what an apply writes: the
-- server then holds a value the device never sent. Like a canonical-form
-- rewrite (types.md), the stored row must become a new version of this
-- server, newer than the one received, so that it flows back to the device.
CREATE TABLE t (id int PRIMARY KEY, v text, stamp text);
SELECT syncline.track('t');
CREATE FUNCTION set_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.stamp := 'set by trigger';
  RETURN NEW;
END $$;
CREATE TRIGGER set_stamp BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION set_stamp();
CREATE FUNCTION t_up(id int, v text, stamp_value text, stamp text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 't', 'op', 'upsert', 'pk', jsonb_build_object('id', id),
    'row', jsonb_build_object('id', id, 'v', v, 'stamp', stamp_value), 'clock', 1, 'hlc', stamp, 'node', remote()) $$;
-- The change for row `key` of t in a pull of everything (with `options`).
CREATE FUNCTION pulled_t(key int, options jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
  SELECT c FROM jsonb_array_elements(syncline.pull_since(NULL, 1000, options)::jsonb -> 'changes') c
   WHERE c ->> 'table' = 't' AND (c -> 'pk' ->> 'id')::int = key $$;

SELECT hlc(-2000) AS t_sent \gset
SELECT syncline.apply_push(batch(t_up(1, 'from client', 'client stamp', :'t_sent'))) AS t_summary \gset
SELECT is(:'t_summary'::jsonb ->> 'rewritten', '1', 'trigger: an insert the trigger changed counts as rewritten');
SELECT is((SELECT stamp FROM t WHERE id = 1), 'set by trigger', 'trigger: the server holds the trigger''s value');
SELECT is(pulled_t(1) -> 'row' ->> 'stamp', 'set by trigger', 'trigger: a pull returns the trigger''s value');
SELECT cmp_ok(hlc_int(pulled_t(1) ->> 'hlc'), '>', hlc_int(:'t_sent'),
              'trigger: ... with a stamp newer than the one the device sent');
SELECT is(pulled_t(1) ->> 'node', syncline.node_id()::text, 'trigger: ... as a version of the server');
SELECT is(pulled_t(1, jsonb_build_object('exclude_origin', remote())) -> 'row' ->> 'stamp', 'set by trigger',
          'trigger: so the device''s own pulls (exclude_origin) receive it');

-- An update (the row exists) is the same. (Its stamp is ahead of the wall
-- clock, so that it beats the server's version of the row whether that
-- version took the least stamp above the one received or a stamp of the
-- server's clock.)
SELECT hlc(1000) AS t_sent2 \gset
SELECT syncline.apply_push(batch(t_up(1, 'edited on client', 'client stamp 2', :'t_sent2'))) AS t_summary2 \gset
SELECT is(:'t_summary2'::jsonb ->> 'rewritten', '1', 'trigger: an update the trigger changed counts as rewritten');
SELECT is(pulled_t(1, jsonb_build_object('exclude_origin', remote())) -> 'row',
          jsonb_build_object('id', 1, 'v', 'edited on client', 'stamp', 'set by trigger'),
          'trigger: the device receives the updated row with the trigger''s value');

-- A change the trigger leaves as it is stays the device's version.
SELECT hlc(-500) AS t_sent3 \gset
SELECT syncline.apply_push(batch(t_up(2, 'from client', 'set by trigger', :'t_sent3'))) AS t_summary3 \gset
SELECT is(:'t_summary3'::jsonb ->> 'rewritten', '0', 'trigger: a change the trigger does not alter is not rewritten');
SELECT is(pulled_t(2) ->> 'node', remote(), 'trigger: ... and keeps the device''s version');

-- A refusal inside a run of one table's changes (written as one statement)
-- names its own change. While more pages are to come, a constraint error
-- rejects the batch (a later page may make the row fit) and the run leaves
-- nothing behind; in the last page, only that change is refused.
CREATE TABLE checked(id int PRIMARY KEY, v int CHECK (v < 100));
SELECT syncline.track('checked');
CREATE FUNCTION c_up(id int, v int, stamp text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'checked', 'op', 'upsert', 'pk', jsonb_build_object('id', id),
    'row', jsonb_build_object('id', id, 'v', v), 'clock', 1, 'hlc', stamp, 'node', remote()) $$;
SELECT hlc(-300) AS c_sent \gset
SELECT batch(c_up(1, 1, :'c_sent'), c_up(2, 2, :'c_sent'), c_up(3, 3, :'c_sent'), c_up(4, 400, :'c_sent'),
             c_up(5, 5, :'c_sent'), c_up(6, 6, :'c_sent')) AS run \gset
SELECT throws_ok(apply(:'run'::jsonb || '{"has_more": true}'),
                 '23514', NULL, 'a refused change in a run, more pages to come: the constraint''s own SQLSTATE');
SELECT throws_like(apply(:'run'::jsonb || '{"has_more": true}'),
                   'syncline.apply_push: change 3 (table "checked"): new row for relation "checked" violates check constraint%',
                   '... naming the change at fault');
SELECT is((SELECT count(*) FROM checked), 0::bigint, '... and nothing of the batch is written');
SELECT syncline.apply_push(:'run') AS c_summary \gset
SELECT is(:'c_summary'::jsonb - 'source' - 'cursor',
          jsonb_build_object('applied', 5, 'skipped', 0, 'rewritten', 0, 'refused', jsonb_build_array(jsonb_build_object(
            'change', 3, 'table', 'checked', 'pk', jsonb_build_object('id', 4), 'hlc', :'c_sent', 'sqlstate', '23514',
            'reason', 'change 3 (table "checked"): new row for relation "checked" violates check constraint "checked_v_check" '
                      '(Failing row contains (4, 400).)', 'forget', false))),
          'the last page: the refused change is refused on its own, with the constraint''s SQLSTATE, naming it');
SELECT is((SELECT array_agg(id ORDER BY id) FROM checked), ARRAY[1, 2, 3, 5, 6], '... and the rest of the run is written');
SELECT is((SELECT (r.hlc - hlc_int(:'c_sent'), r.node, r.deleted) FROM syncline.rows r JOIN syncline.tables t USING (tid)
            WHERE t.table_name = 'checked' AND r.pk = '[4]'), (1::bigint, 0, true),
          '... and the server answers with a tombstone one stamp above the refused one');
SELECT is((SELECT (node_id::uuid, table_name, pk, "row", sqlstate, answer, forget) FROM syncline.conflicts WHERE table_name = 'checked'),
          (remote()::uuid, 'checked'::text, '{"id": 4}'::jsonb, '{"id": 4, "v": 400}'::jsonb, '23514'::text, 'restamped'::text, false),
          '... and logs it');

SELECT * FROM finish();
