-- pull_since and apply_push on PostgreSQL: pages, cursors, the conflict
-- rule, idempotence, relays, changes refused on their own, atomic rejection
-- of malformed batches.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(60);

CREATE TABLE notes (id text PRIMARY KEY, org_id int NOT NULL, title text, body text);
SELECT syncline.track('notes', '{"scope": "org_id"}');

-- Helpers that build hand-made batches from a remote node.
CREATE FUNCTION hlc(offset_ms bigint) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint + offset_ms) << 16), 16, '0') $$;
CREATE FUNCTION up(id text, title text, stamp text, node text, org int DEFAULT 7) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'notes', 'op', 'upsert', 'pk', jsonb_build_object('id', id),
    'row', jsonb_build_object('id', id, 'org_id', org, 'title', title, 'body', 'b'),
    'clock', 1, 'hlc', stamp, 'node', node) $$;
CREATE FUNCTION del(id text, stamp text, node text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'notes', 'op', 'delete', 'pk', jsonb_build_object('id', id),
    'clock', 2, 'hlc', stamp, 'node', node) $$;
CREATE FUNCTION batch(source text, VARIADIC changes jsonb[]) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('format', 1, 'source', source, 'changes', to_jsonb(changes)) $$;
CREATE FUNCTION title(key text) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce((SELECT title FROM notes WHERE id = key), 'gone') $$;
CREATE FUNCTION state() RETURNS text LANGUAGE sql AS $$
  SELECT coalesce((SELECT string_agg(n::text, ',' ORDER BY id) FROM notes n), '') || '#' ||
         coalesce((SELECT string_agg(r::text, ',' ORDER BY tid, pk) FROM syncline.rows r), '') || '#' ||
         coalesce((SELECT string_agg(p::text, ',') FROM syncline.peers p), '') $$;
\set remote '\'0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11\''
\set other '\'1c7a7a3f-7b97-4d2d-8e2f-6b3a0b1e8d22\''

-- Pages: oldest first, never skipping or repeating a version.
INSERT INTO notes SELECT 'p' || g, 7, 't', 'b' FROM generate_series(1, 25) g;
INSERT INTO notes SELECT 'q' || g, 8, 't', 'b' FROM generate_series(1, 5) g;
SELECT syncline.pull_since(NULL, 10) AS page1 \gset
SELECT is(jsonb_array_length(:'page1'::jsonb -> 'changes'), 10, 'a page holds at most lim changes');
SELECT is((:'page1'::jsonb ->> 'has_more')::boolean, true, '... and says more remain');
SELECT syncline.pull_since(:'page1'::jsonb ->> 'cursor', 10) AS page2 \gset
SELECT syncline.pull_since(:'page2'::jsonb ->> 'cursor', 10) AS page3 \gset
SELECT is((:'page3'::jsonb ->> 'has_more')::boolean, false, 'the last page says so');
SELECT is((SELECT count(DISTINCT c ->> 'pk') FROM (
             SELECT jsonb_array_elements(:'page1'::jsonb -> 'changes') c UNION ALL
             SELECT jsonb_array_elements(:'page2'::jsonb -> 'changes') UNION ALL
             SELECT jsonb_array_elements(:'page3'::jsonb -> 'changes')) s), 30::bigint,
          'three pages deliver every row once');
SELECT is(jsonb_array_length(syncline.pull_since(:'page3'::jsonb ->> 'cursor', 10)::jsonb -> 'changes'), 0,
          'nothing after the end');
SELECT is(jsonb_array_length(syncline.pull_since(NULL, 100, '{"scope": 8}')::jsonb -> 'changes'), 5, 'a scope sees its rows only');

-- A pull writes nothing: it runs in a read-only transaction.
BEGIN READ ONLY;
SELECT is(jsonb_array_length(syncline.pull_since(NULL, 100, '{"scope": 8}')::jsonb -> 'changes'), 5,
          'pull_since runs in a read-only transaction');
COMMIT;

-- Cursors describe themselves.
SELECT throws_like($$SELECT syncline.pull_since('garbage', 10)$$, '%malformed%', 'a malformed cursor');
SELECT throws_like(format('SELECT syncline.pull_since(%L, 10, ''{"origin": "local"}'')', :'page1'::jsonb ->> 'cursor'),
                   '%other pull options%', 'a cursor taken with other options');
SELECT throws_like(format('SELECT syncline.pull_since(%L, 10)',
                          syncline.node_id() || ':cbf29ce484222325:999999999.0'), '%never issued%',
                   'a cursor never issued');
SELECT throws_like(format('SELECT syncline.pull_since(%L, 10)', :remote || ':cbf29ce484222325:1.0'),
                   '%issued by another database%', 'a cursor of another database');
SELECT throws_like($$SELECT syncline.pull_since(NULL, 0)$$, '%limit must be at least 1%', 'limit below 1');
SELECT throws_like($$SELECT syncline.pull_since(NULL, 10, '{"origin": "remote"}')$$, '%"origin" must be "local"%',
                   'a bad option');

-- Applying: newer wins, older loses, whatever the order.
SELECT is((syncline.apply_push(batch(:remote, up('n1', 'remote v1', hlc(-3000), :remote))) ->> 'applied')::int, 1,
          'a new row applies');
SELECT is(title('n1'), 'remote v1', '... and is written');
SELECT is((syncline.apply_push(batch(:remote, up('n1', 'older', hlc(-5000), :remote))) ->> 'skipped')::int, 1,
          'an older version is skipped');
SELECT is(title('n1'), 'remote v1', '... and changes nothing');
UPDATE notes SET title = 'local edit' WHERE id = 'n1';
SELECT is((syncline.apply_push(batch(:remote, up('n1', 'remote v2', hlc(-1000), :remote))) ->> 'skipped')::int, 1,
          'a local edit beats the version it replaced, whatever the wall clock');
SELECT syncline.apply_push(batch(:remote, up('n1', 'remote v3', hlc(2000), :remote)));
SELECT is(title('n1'), 'remote v3', 'a newer remote edit wins');

-- Equal times: the greater node id wins, on every node.
SELECT hlc(0) AS tie \gset
SELECT syncline.apply_push(batch(:remote, up('n2', 'from remote', :'tie', :remote)));
SELECT syncline.apply_push(batch(:other, up('n2', 'from other', :'tie', :other)));
SELECT is(title('n2'), 'from other', 'ties go to the greater node id (1c7a... > 0b6f...)');
SELECT is((syncline.apply_push(batch(upper(:other), up('n2', 'from other', :'tie', upper(:other)))) ->> 'skipped')::int, 1,
          'node ids compare in canonical form');

-- Deletes are versions: they beat older edits, later edits bring rows back.
SELECT syncline.apply_push(batch(:remote, del('n3', hlc(-2000), :remote)));
SELECT is((SELECT deleted FROM syncline.rows WHERE pk = '["n3"]'), true, 'a tombstone is kept for a row never seen');
SELECT syncline.apply_push(batch(:remote, up('n3', 'late older upsert', hlc(-4000), :remote)));
SELECT is(title('n3'), 'gone', 'a late, older upsert does not resurrect it');
SELECT syncline.apply_push(batch(:remote, up('n3', 'later edit', hlc(-1000), :remote)));
SELECT is(title('n3'), 'later edit', 'a later edit brings it back');

-- Idempotent replay, and several versions of one row in one batch.
SELECT hlc(-800) AS s2 \gset
SELECT batch(:remote, up('n4', 'v1', hlc(-900), :remote), up('n4', 'v2', :'s2', :remote), del('n5', hlc(-700), :remote)) AS b \gset
SELECT is(syncline.apply_push(:'b') ->> 'applied', '3', 'a batch applies');
SELECT state() AS before \gset
SELECT is(syncline.apply_push(:'b') ->> 'skipped', '3', 'the same batch again is skipped');
SELECT is(state(), :'before', '... and changes nothing');

-- Applied changes are not captured as local ones, but are relayed.
SELECT is((SELECT count(*) FROM jsonb_array_elements(syncline.pull_since(NULL, 1000, '{"origin": "local"}')::jsonb -> 'changes') c
            WHERE c -> 'pk' ->> 'id' = 'n4'), 0::bigint, 'applied changes are not in the local push queue');
SELECT is((SELECT c ->> 'node' FROM jsonb_array_elements(syncline.pull_since(NULL, 1000)::jsonb -> 'changes') c
            WHERE c -> 'pk' ->> 'id' = 'n4'), :remote, 'but a third node receives them, with their origin');
SELECT is((SELECT count(*) FROM jsonb_array_elements(syncline.pull_since(NULL, 1000, format('{"exclude_origin": "%s"}', :remote)::jsonb)::jsonb -> 'changes') c
            WHERE c -> 'pk' ->> 'id' = 'n4'), 0::bigint, 'exclude_origin: no echo to their origin');

-- Changes this server cannot apply are refused on their own (conflicts.sql
-- has the rule in full): the rest of the batch applies, the summary names
-- each refused change, and nothing of it is written. A change whose row
-- this server can name gets its answer: its own state of the row (here a
-- tombstone) one stamp above the refused one.
SELECT hlc(-100) AS s \gset
SELECT syncline.apply_push(batch(:remote,
         up('ok1', 'fine', :'s', :remote),
         up('bad1', 'x', :'s', :remote) || '{"row": {"id": "bad1", "org_id": 7, "title": "x", "body": "b", "zz": 1}}',
         jsonb_set(up('bad2', 'x', :'s', :remote), '{table}', '"nope"'),
         jsonb_set(up('bad3', 'x', :'s', :remote), '{row,org_id}', 'null'),
         up('bad4', 'x', :'s', :remote) - 'pk' || '{"pk": {"title": "x"}}',
         jsonb_set(up('bad5', 'x', :'s', :remote), '{pk,title}', '"x"'),
         jsonb_set(up('bad6', 'x', :'s', :remote), '{row,org_id}', '{"real": "NaN"}'),
         up('ok2', 'fine', :'s', :remote))) AS summary \gset
SELECT is(:'summary'::jsonb - 'refused' - 'cursor', jsonb_build_object('applied', 2, 'skipped', 0, 'rewritten', 0, 'source', :remote),
          'a batch with refused changes applies the others');
CREATE FUNCTION refusals(summary jsonb) RETURNS TABLE (change int, tbl text, pk jsonb, hlc text, sqlstate text, reason text, forget boolean)
LANGUAGE sql AS $$
  SELECT (r ->> 'change')::int, r ->> 'table', r -> 'pk', r ->> 'hlc', r ->> 'sqlstate', r ->> 'reason', (r ->> 'forget')::boolean
    FROM jsonb_array_elements(summary -> 'refused') r ORDER BY 1 $$;
SELECT results_eq(format('SELECT change, tbl, pk, sqlstate, reason, forget FROM refusals(%L)', :'summary'),
  $$VALUES (1, 'notes', '{"id": "bad1"}'::jsonb, '42703', 'change 1 (table "notes"): unknown column "zz"', true),
           (2, 'nope', '{"id": "bad2"}', '42P01', 'change 2 (table "nope"): no tracked table of this name', true),
           (3, 'notes', '{"id": "bad3"}', '23502', 'change 3 (table "notes"): null value in column "org_id" of relation "notes" '
                                                   'violates not-null constraint (Failing row contains (bad3, null, x, b).)', false),
           (4, 'notes', '{"title": "x"}', '42703',
            'change 4 (table "notes"): "pk" names column "title", which is not in the table''s primary key (id)', true),
           (5, 'notes', '{"id": "bad5", "title": "x"}', '42703',
            'change 5 (table "notes"): "pk" names column "title", which is not in the table''s primary key (id)', true),
           (6, 'notes', '{"id": "bad6"}', '42804', 'change 6 (table "notes"): column "org_id" expects integer, got real', true)$$,
  '... and refuses each bad one on its own: an unknown column or table, a NOT NULL violation, a key the table does '
  'not have, NaN for an integer; the device forgets what this server cannot name or read');
SELECT is((SELECT array_agg(DISTINCT hlc) FROM refusals(:'summary')), ARRAY[:'s'], '... with the stamps as sent');
SELECT is(ARRAY[title('ok1'), title('ok2'), title('bad1'), title('bad3'), title('bad4'), title('bad5'), title('bad6')],
          ARRAY['fine', 'fine', 'gone', 'gone', 'gone', 'gone', 'gone'], '... so only the good changes are in the table');
SELECT is((SELECT string_agg(r.pk || ':' || r.deleted || ':' || r.node || ':' ||
                             CASE WHEN r.hlc - ('x' || :'s')::bit(64)::bigint = 1 THEN 'one above'
                                  WHEN r.hlc = 1 THEN 'least' END, ' ' ORDER BY r.pk)
             FROM syncline.rows r WHERE r.pk IN ('["bad1"]', '["bad2"]', '["bad3"]', '["bad4"]', '["bad5"]', '["bad6"]')),
          '["bad3"]:true:0:one above ["bad6"]:true:0:least',
          '... and the rows this server can name get its answer: a tombstone of its own, one stamp above the refused '
          'one, or the least stamp where the device forgets its copy (this server never had the row)');
SELECT set_eq($$SELECT table_name, pk, op, answer, forget FROM syncline.conflicts$$,
  $$VALUES ('notes', '{"id": "bad1"}'::jsonb, 'upsert', 'none', true), ('nope', '{"id": "bad2"}', 'upsert', 'none', true),
           ('notes', '{"title": "x"}', 'upsert', 'none', true), ('notes', '{"id": "bad5", "title": "x"}', 'upsert', 'none', true),
           ('notes', '{"id": "bad6"}', 'upsert', 'restamped', true), ('notes', '{"id": "bad3"}', 'upsert', 'restamped', false)$$,
  '... and each is logged in syncline.conflicts');

-- Malformed batches are rejected whole: a clear error naming the change,
-- and nothing written.
SELECT state() AS before \gset
SELECT throws_ok(format('SELECT syncline.apply_push(%L)', batch(:remote, up('ok3', 'fine', hlc(-100), :remote),
                   jsonb_set(up('m1', 'x', hlc(-100), :remote), '{row,id}', '"m2"'))),
                 '22023', 'syncline.apply_push: change 1 (table "notes"): "row" and "pk" disagree on column "id"',
                 'a change whose key and row disagree rejects the batch');
-- (A malformed change after a good one: conflicts.sql, "Batches rejected
-- after a change was converted".)
SELECT throws_ok(format('SELECT syncline.apply_push(%L)', batch(:remote,
                   jsonb_set(jsonb_set(up('m1', 'x', hlc(-100), :remote), '{pk,id}', 'null'), '{row,id}', 'null'),
                   up('ok3', 'fine', hlc(-100), :remote))),
                 '22023', 'syncline.apply_push: change 0 (table "notes"): primary key column "id" is null',
                 'a null key rejects the batch');
SELECT throws_like($$SELECT syncline.apply_push('{"format": 3, "source": "0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11", "changes": []}')$$,
                   '%unsupported format 3%', 'a batch of another format');
SELECT throws_like($$SELECT syncline.apply_push('{"format": 1, "changes": [')$$, '%batch: malformed JSON at byte 26%',
                   'malformed JSON is refused (batches arrive as text, read once by the codec)');
SELECT throws_like($$SELECT syncline.apply_push('{"format": 1, "source": "0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11", "changes": [], "x": "\udc00"}')$$,
                   '%not valid UTF-8%', 'invalid UTF-8 (a lone surrogate) is refused');
SELECT throws_like($$SELECT syncline.apply_push('{"format": 1, "format": 1, "source": "0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11", "changes": []}')$$,
                   '%duplicate%', 'a duplicate key is refused (jsonb would have kept the last one silently)');
SELECT is(syncline.apply_push('{"format": 1, "source": "0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11", "changes": []}'::jsonb) ->> 'applied',
          '0', 'apply_push(jsonb), for batches at hand in psql, gives the same answer');
SELECT is(pg_typeof(syncline.pull_since(NULL, 1))::text, 'text', 'pull_since returns the batch as text, exactly as written');
SELECT throws_like(format('SELECT syncline.apply_push(%L)', batch(:remote,
                     jsonb_set(up('m', 'x', hlc(-100), :remote), '{row,title}', to_jsonb(repeat('x', 65 * 1024 * 1024))))),
                   '%more than the limit of 64 MiB%', 'a huge batch fails cleanly');
SELECT is(state(), :'before', 'rejected batches wrote nothing');
-- (Stamps ahead of this server's clock, whether sent by their origin or
-- relayed: conflicts.sql.)
SELECT throws_like(format('SELECT syncline.apply_push(%L)', batch(:remote, up('n4', 'v2 but different', :'s2', :remote))),
                   '%already known for this row with different content%', 'equal stamps with different content: corrupt');

-- Foreign keys that cannot be deferred: children may come before their
-- parents in a batch (a parent updated after its children has a later
-- version); apply_push orders upserts parents first, deletes children first.
CREATE TABLE invoice (id text PRIMARY KEY, total numeric);
CREATE TABLE line (id text PRIMARY KEY, invoice_id text NOT NULL REFERENCES invoice (id), amount numeric);
SELECT syncline.track('invoice');
SELECT syncline.track('line');
SELECT hlc(-50) AS s50 \gset
SELECT is(syncline.apply_push(batch(:remote,
  jsonb_build_object('table', 'line', 'op', 'upsert', 'pk', '{"id": "l1"}'::jsonb,
    'row', '{"id": "l1", "invoice_id": "i1", "amount": "2.5"}'::jsonb, 'clock', 1, 'hlc', hlc(-60), 'node', :remote),
  jsonb_build_object('table', 'invoice', 'op', 'upsert', 'pk', '{"id": "i1"}'::jsonb,
    'row', '{"id": "i1", "total": "2.5"}'::jsonb, 'clock', 2, 'hlc', :'s50', 'node', :remote))) ->> 'applied', '2',
  'a child before its parent applies under a NOT DEFERRABLE foreign key');
-- A child whose parent is in no order of the batch: while more pages are to
-- come (the parent may be in one), the batch is rejected, to be sent again;
-- in the last page, the child is refused on its own.
SELECT hlc(-60) AS s60 \gset
SELECT batch(:remote, jsonb_build_object('table', 'line', 'op', 'upsert', 'pk', '{"id": "l9"}'::jsonb,
    'row', '{"id": "l9", "invoice_id": "nope", "amount": "1"}'::jsonb, 'clock', 1, 'hlc', :'s60', 'node', :remote)) AS orphan \gset
SELECT throws_ok(format('SELECT syncline.apply_push(%L)', :'orphan'::jsonb || '{"has_more": true}'), '23503',
                 'syncline.apply_push: change 0 (table "line"): insert or update on table "line" violates foreign key '
                 'constraint "line_invoice_id_fkey"',
                 'a foreign key violation in a page with more to come rejects the batch');
SELECT results_eq(format('SELECT change, tbl, sqlstate, reason, forget FROM refusals(syncline.apply_push(%L))', :'orphan'),
                  $$VALUES (0, 'line', '23503', 'change 0 (table "line"): insert or update on table "line" violates foreign '
                                                'key constraint "line_invoice_id_fkey" (Key (invoice_id)=(nope) is not '
                                                'present in table "invoice".)', false)$$,
                  '... and in the last page is refused on its own');
SELECT is((SELECT count(*) FROM line WHERE id = 'l9'), 0::bigint, '... and writes nothing to the table');
SELECT is(syncline.apply_push(batch(:remote,
  jsonb_build_object('table', 'invoice', 'op', 'delete', 'pk', '{"id": "i1"}'::jsonb, 'clock', 3, 'hlc', hlc(-40), 'node', :remote),
  jsonb_build_object('table', 'line', 'op', 'delete', 'pk', '{"id": "l1"}'::jsonb, 'clock', 2, 'hlc', hlc(-30), 'node', :remote)))
  ->> 'applied', '2', 'a parent deleted before its children applies too');

-- Peer cursors: recorded with the batch, never moved back.
SELECT is(syncline.peer_cursor(:remote::uuid), NULL, 'no cursor from a peer yet');
SELECT syncline.apply_push(batch(:remote, VARIADIC ARRAY[]::jsonb[]) || jsonb_build_object('cursor', :remote || ':cbf29ce484222325:50')) \gset
SELECT syncline.apply_push(batch(:remote, VARIADIC ARRAY[]::jsonb[]) || jsonb_build_object('cursor', :remote || ':cbf29ce484222325:40')) \gset
SELECT is(syncline.peer_cursor(:remote::uuid), :remote || ':cbf29ce484222325:50', 'the peer cursor never moves back');

-- A user trigger that catches an error (a subtransaction rolled back inside
-- the apply) leaves capture off for the rest of the apply and the next one.
CREATE FUNCTION forgiving() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN PERFORM 1 / 0; EXCEPTION WHEN division_by_zero THEN NULL; END;
  RETURN NULL;
END $$;
CREATE TRIGGER forgiving AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION forgiving();
SELECT lives_ok(format($$SELECT syncline.apply_push(%L)$$, batch(:remote, up('f1', 'first', hlc(0), :remote))),
                'an apply through a forgiving trigger');
SELECT lives_ok(format($$SELECT syncline.apply_push(%L)$$, batch(:remote, up('f2', 'second', hlc(0), :remote))),
                '... and the next one');
SELECT is((SELECT string_agg(r.pk || ':' || (r.node <> 0), ' ' ORDER BY r.pk) FROM syncline.rows r WHERE r.pk IN ('["f1"]', '["f2"]')),
          '["f1"]:true ["f2"]:true', '... keep the origin node of both');
DROP TRIGGER forgiving ON notes;

-- What an apply's writes cause (a cascaded delete) is captured as a local
-- write; the applied row keeps its origin's version.
CREATE TABLE folders (id text PRIMARY KEY);
CREATE TABLE files (id text PRIMARY KEY, folder text NOT NULL REFERENCES folders ON DELETE CASCADE);
SELECT syncline.track('folders');
SELECT syncline.track('files');
INSERT INTO folders VALUES ('f1');
INSERT INTO files VALUES ('a', 'f1');
-- (Relayed by another node: this node's clock is far ahead after the tests above.)
SELECT syncline.apply_push(jsonb_build_object('format', 1, 'source', :other::text, 'changes', jsonb_build_array(
  jsonb_build_object('table', 'folders', 'op', 'delete', 'pk', jsonb_build_object('id', 'f1'), 'clock', 2,
                     'hlc', lpad(to_hex((SELECT r.hlc + 1 FROM syncline.rows r JOIN syncline.tables t USING (tid)
                                          WHERE t.table_name = 'folders')), 16, '0'),
                     'node', :remote::text)))) ->> 'applied' AS applied \gset
SELECT is(:'applied'::text, '1', 'a remote delete of a folder applies');
SELECT is((SELECT string_agg(t.table_name || r.pk || ':' || r.deleted || ':' || (r.node = 0), ' ' ORDER BY t.table_name)
             FROM syncline.rows r JOIN syncline.tables t USING (tid) WHERE t.table_name IN ('folders', 'files')),
          'files["a"]:true:true folders["f1"]:true:false', 'a cascaded delete is captured here, the applied one is not');
SELECT is((SELECT count(*) FROM files), 0::bigint, '... and the cascade happened');

SELECT * FROM finish();
