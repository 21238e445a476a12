-- Tenant isolation: two organisations, two roles, row-level security and an
-- authorisation hook (docs/security.md).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(21);

CREATE TABLE memberships (member name NOT NULL, org_id int NOT NULL, PRIMARY KEY (member, org_id));
CREATE TABLE notes (id text PRIMARY KEY, org_id int NOT NULL, title text);
CREATE ROLE org7_app;
CREATE ROLE org8_app;
INSERT INTO memberships VALUES ('org7_app', 7), ('org8_app', 8);
GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO org7_app, org8_app;
GRANT SELECT ON memberships TO org7_app, org8_app;
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY member_rows ON notes
  USING (org_id IN (SELECT org_id FROM memberships WHERE member = current_user))
  WITH CHECK (org_id IN (SELECT org_id FROM memberships WHERE member = current_user));
-- The hook: may the current role see and write this scope? (Superusers
-- bypass it like they bypass row-level security.)
-- It runs inside syncline's functions, whose search_path is pg_catalog: pin
-- its own.
CREATE FUNCTION may_access_org(scope jsonb) RETURNS boolean LANGUAGE sql STABLE SET search_path = public AS $$
  SELECT EXISTS (SELECT 1 FROM memberships WHERE member = current_user AND org_id = (scope #>> '{}')::int)
      OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) $$;
SELECT is(syncline.track('notes', '{"scope": "org_id", "authorize": "public.may_access_org"}') ->> 'table', 'notes',
          'tracked with a scope and an authorisation hook');
SELECT throws_ok($$SELECT syncline.track('notes', '{"scope": "org_id", "authorize": "no_such_fn"}')$$, '42P01',
                 'syncline.track: options: no function no_such_fn(jsonb) returning boolean', 'the hook must exist');
SELECT syncline.track('notes', '{"scope": "org_id", "authorize": "public.may_access_org"}') IS NOT NULL AS retracked \gset

INSERT INTO notes VALUES ('a7', 7, 'org 7 note'), ('a8', 8, 'org 8 note'), ('b8', 8, 'org 8, deleted');
DELETE FROM notes WHERE id = 'b8';

CREATE FUNCTION pulled_ids(options jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg((c -> 'pk' ->> 'id') || ':' || (c ->> 'op'), ',' ORDER BY c -> 'pk' ->> 'id'), '')
    FROM jsonb_array_elements(syncline.pull_since(NULL, 100, options)::jsonb -> 'changes') c $$;
GRANT EXECUTE ON FUNCTION pulled_ids(jsonb) TO org7_app, org8_app;

SET ROLE org7_app;
SELECT is(pulled_ids('{}'), 'a7:upsert', 'org 7 pulls its rows only: no org 8 row, no org 8 tombstone');
SELECT is(pulled_ids('{"scope": 8}'), '', 'a forged scope option gets nothing');
SELECT is(pulled_ids('{"scope": 7}'), 'a7:upsert', 'its own scope');
RESET ROLE;
SET ROLE org8_app;
SELECT is(pulled_ids('{}'), 'a8:upsert,b8:delete', 'org 8 sees its rows and its tombstone');
RESET ROLE;
SELECT is(pulled_ids('{}'), 'a7:upsert,a8:upsert,b8:delete', 'the administrator sees everything');

-- Writing another tenant's rows through apply_push is refused, change by
-- change, as a privilege error (42501); the rest of the batch applies. The
-- device is told to forget its copy: this server's answer (its own state of
-- the row, above the refused stamp) stays in the other tenant's scope.
CREATE FUNCTION hlc() RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16), 16, '0') $$;
CREATE FUNCTION hlc_ahead(ms bigint) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint + ms) << 16), 16, '0') $$;
CREATE FUNCTION remote_batch(VARIADIC changes jsonb[]) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('format', 1, 'source', '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11', 'changes', to_jsonb(changes)) $$;
CREATE FUNCTION up(id text, org int, title text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'notes', 'op', 'upsert', 'pk', jsonb_build_object('id', id),
    'row', jsonb_build_object('id', id, 'org_id', org, 'title', title), 'clock', 9, 'hlc', hlc(),
    'node', '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11') $$;
CREATE FUNCTION del(id text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'notes', 'op', 'delete', 'pk', jsonb_build_object('id', id), 'clock', 9,
    'hlc', hlc(), 'node', '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11') $$;
GRANT EXECUTE ON FUNCTION hlc(), remote_batch(jsonb[]), up(text, int, text), del(text) TO org7_app;
-- A summary without its source and cursor, and its refusals without their
-- stamps (each up() and del() takes the time).
CREATE FUNCTION unstamped(summary jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT summary - 'source' - 'cursor' || jsonb_build_object('refused',
           (SELECT jsonb_agg(r - 'hlc') FROM jsonb_array_elements(summary -> 'refused') r)) $$;
CREATE FUNCTION refused(n int, id text, reason text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('change', n, 'table', 'notes', 'pk', jsonb_build_object('id', id), 'sqlstate', '42501',
                            'reason', format('change %s (table "notes"): %s', n, reason), 'forget', true) $$;
SELECT (SELECT string_agg(n::text, ',' ORDER BY id) FROM notes n) AS before \gset

SET ROLE org7_app;
SELECT syncline.apply_push(remote_batch(up('x7', 7, 'fine'), up('n8', 8, 'sneaky insert'))) AS insert8 \gset
SELECT syncline.apply_push(remote_batch(up('a8', 8, 'sneaky edit'))) AS edit8 \gset
SELECT syncline.apply_push(remote_batch(up('a8', 7, 'moved into my org'))) AS move8 \gset
SELECT syncline.apply_push(remote_batch(del('a8'))) AS delete8 \gset
SELECT is(pulled_ids('{}'), 'a7:upsert,x7:upsert', 'org 7 pulls its rows only: no answer about org 8''s rows reaches it');
RESET ROLE;
SELECT is(unstamped(:'insert8'),
          jsonb_build_object('applied', 1, 'skipped', 0, 'rewritten', 0, 'refused',
                             jsonb_build_array(refused(1, 'n8', 'not authorised for scope 8 (by public.may_access_org(jsonb))'))),
          'creating a row in another tenant is refused on its own; the batch''s own row applies');
SELECT is(:'edit8'::jsonb #>> '{refused,0,sqlstate}', '42501', 'a scope the hook refuses is a privilege error (42501)');
SELECT is(unstamped(:'edit8'),
          jsonb_build_object('applied', 0, 'skipped', 0, 'rewritten', 0, 'refused',
                             jsonb_build_array(refused(0, 'a8', 'not authorised for scope 8 (by public.may_access_org(jsonb))'))),
          'changing another tenant''s row is refused');
SELECT is(unstamped(:'move8'),
          jsonb_build_object('applied', 0, 'skipped', 0, 'rewritten', 0, 'refused',
                             jsonb_build_array(refused(0, 'a8', 'the row''s scope is 8; a change cannot move it to 7'))),
          'moving another tenant''s row into one''s own scope is refused');
SELECT is(unstamped(:'delete8'),
          jsonb_build_object('applied', 0, 'skipped', 0, 'rewritten', 0, 'refused',
                             jsonb_build_array(refused(0, 'a8', 'not authorised for scope 8 (by public.may_access_org(jsonb))'))),
          'deleting another tenant''s row is refused');
SELECT is((SELECT string_agg(n::text, ',' ORDER BY id) FROM notes n), :'before' || ',(x7,7,fine)',
          'nothing of the refused changes was written to the table');
SELECT results_eq($$SELECT role_name, pk ->> 'id', op, scope, sqlstate, answer, forget FROM syncline.conflicts ORDER BY id$$,
                  $$VALUES ('org7_app', 'n8', 'upsert', '8'::jsonb, '42501', 'restamped', true),
                           ('org7_app', 'a8', 'upsert', '8', '42501', 'restamped', true),
                           ('org7_app', 'a8', 'upsert', '7', '42501', 'restamped', true),
                           ('org7_app', 'a8', 'delete', '8', '42501', 'restamped', true)$$,
                  'each refusal is logged with the role that pushed it and the scope the change named');
SET ROLE org7_app;
SELECT is(syncline.apply_push(remote_batch(up('x7', 7, 'fine'))) ->> 'applied', '1', 'its own scope is writable');
SELECT throws_like($$INSERT INTO syncline.rows (tid, pk, clock, hlc, node, deleted, xid, seq) VALUES (1, '["z"]', 1, 1, 0, false, '1', 1)$$,
                   '%permission denied%', 'the metadata cannot be written directly');
SELECT throws_like($$SELECT syncline.set_max_drift(1)$$, '%permission denied%', 'nor the settings');
RESET ROLE;
SELECT is((SELECT title FROM notes WHERE id = 'a8'), 'org 8 note', 'the other tenant''s row is untouched');

-- Nor do refused changes reach into the other tenant's rows through the
-- versions the server records for them: stamped a few minutes ahead (within
-- the drift bound), they must not make org 8's own later edits lose.
CREATE FUNCTION up_at(id text, org int, title text, stamp text, node text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', 'notes', 'op', 'upsert', 'pk', jsonb_build_object('id', id),
    'row', jsonb_build_object('id', id, 'org_id', org, 'title', title), 'clock', 9, 'hlc', stamp, 'node', node) $$;
\set org8_device '\'08000000-0000-4000-8000-000000000008\''
SET ROLE org7_app;
SELECT syncline.apply_push(remote_batch(up_at('a8', 8, 'ahead', hlc_ahead(240000), '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11'),
                                        up_at('k8', 8, 'ahead', hlc_ahead(240000), '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11')))
       -> 'refused' AS hostile \gset
SET ROLE org8_app;
SELECT is(syncline.apply_push(jsonb_build_object('format', 1, 'source', :org8_device, 'changes', jsonb_build_array(
            up_at('a8', 8, 'org 8 edit', hlc(), :org8_device), up_at('k8', 8, 'org 8 row', hlc(), :org8_device))))
            - 'source' - 'cursor',
          '{"applied": 2, "skipped": 0, "rewritten": 0}',
          'org 8''s own edit, and its new row, made after org 7''s refused changes stamped ahead, apply');
RESET ROLE;
SELECT is((SELECT array_agg(title ORDER BY id) FROM notes WHERE id IN ('a8', 'k8')), ARRAY['org 8 edit', 'org 8 row'],
          '... and are written');

RESET ROLE;
DROP OWNED BY org7_app, org8_app;
SELECT * FROM finish();
