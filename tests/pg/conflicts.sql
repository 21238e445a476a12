-- Conflicts on PostgreSQL (docs/protocol.md, "Conflicts"): a change the
-- server cannot apply is refused on its own, the rest of its batch applies,
-- the refusal is logged in syncline.conflicts, and the server answers with
-- its own state of the row one stamp above the refused one, which the
-- device's next pull delivers. Node ids are bound to roles; stamps far
-- ahead of the server's clock wait or are refused.
-- No BEGIN/ROLLBACK: pulls only see committed work.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(75);

\set dev_a '\'0a000000-0000-4000-8000-00000000000a\''
\set dev_b '\'0b000000-0000-4000-8000-00000000000b\''
\set dev_c '\'0c000000-0000-4000-8000-00000000000c\''

CREATE TABLE tags (id uuid PRIMARY KEY, org_id int NOT NULL, name text NOT NULL, UNIQUE (org_id, name));
CREATE TABLE projects (id uuid PRIMARY KEY, org_id int NOT NULL, name text);
CREATE TABLE tasks (id uuid PRIMARY KEY, org_id int NOT NULL, project_id uuid NOT NULL REFERENCES projects (id),
                    title text);
CREATE DOMAIN email AS text CHECK (VALUE LIKE '%_@_%');
CREATE TABLE profiles (id uuid PRIMARY KEY, org_id int NOT NULL, name varchar(8) NOT NULL, age int CHECK (age >= 0),
                       email email);
SELECT syncline.track('tags', '{"scope": "org_id"}') IS NOT NULL AS tracked \gset
SELECT syncline.track('projects', '{"scope": "org_id"}') IS NOT NULL AS tracked \gset
SELECT syncline.track('tasks', '{"scope": "org_id"}') IS NOT NULL AS tracked \gset
SELECT syncline.track('profiles', '{"scope": "org_id"}') IS NOT NULL AS tracked \gset

-- Hand-made batches. A stamp is offset_ms after now (the drift bound is 5
-- minutes; a stamp more than an hour ahead is refused).
CREATE FUNCTION hlc(offset_ms bigint DEFAULT 0) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint + offset_ms) << 16), 16, '0') $$;
CREATE FUNCTION hlc_int(stamp text) RETURNS bigint LANGUAGE sql AS $$ SELECT ('x' || stamp)::bit(64)::bigint $$;
CREATE FUNCTION hlc_text(stamp bigint) RETURNS text LANGUAGE sql AS $$ SELECT lpad(to_hex(stamp), 16, '0') $$;
CREATE FUNCTION id(n int) RETURNS uuid LANGUAGE sql AS $$
  SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid $$;
CREATE FUNCTION up(tbl text, r jsonb, stamp text, node text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', tbl, 'op', 'upsert', 'pk', jsonb_build_object('id', r -> 'id'), 'row', r,
                            'clock', 1, 'hlc', stamp, 'node', node) $$;
CREATE FUNCTION del(tbl text, key uuid, stamp text, node text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('table', tbl, 'op', 'delete', 'pk', jsonb_build_object('id', key), 'clock', 2,
                            'hlc', stamp, 'node', node) $$;
CREATE FUNCTION tag(n int, org int, name text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('id', id(n), 'org_id', org, 'name', name) $$;
CREATE FUNCTION batch(source text, VARIADIC changes jsonb[]) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('format', 1, 'source', source, 'changes', to_jsonb(changes)) $$;
CREATE FUNCTION apply(b jsonb) RETURNS text LANGUAGE sql AS $$ SELECT format('SELECT syncline.apply_push(%L)', b) $$;
-- A summary's refusals, in change order.
CREATE FUNCTION refusals(summary jsonb)
RETURNS TABLE (change int, tbl text, pk jsonb, hlc text, sqlstate text, reason text, forget boolean) LANGUAGE sql AS $$
  SELECT (r ->> 'change')::int, r ->> 'table', r -> 'pk', r ->> 'hlc', r ->> 'sqlstate', r ->> 'reason',
         (r ->> 'forget')::boolean
    FROM jsonb_array_elements(summary -> 'refused') r ORDER BY 1 $$;
-- A row's metadata as "<live|deleted> by <server|node id> at <stamp>".
CREATE FUNCTION meta(tbl text, key uuid) RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN r.deleted THEN 'deleted' ELSE 'live' END || ' by ' ||
         CASE WHEN r.node = 0 THEN 'server' ELSE (SELECT node_id::text FROM syncline.nodes WHERE ref = r.node) END ||
         ' at ' || hlc_text(r.hlc)
    FROM syncline.rows r JOIN syncline.tables t USING (tid)
   WHERE t.table_name = tbl AND r.pk = jsonb_build_array(key::text)::text $$;
-- The log entry of the refused change of table tbl, key `key`, stamped
-- `stamp` (without its id and time).
CREATE FUNCTION logged(tbl text, key uuid, stamp text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT to_jsonb(c) - 'id' - 'at' FROM syncline.conflicts c
   WHERE table_name = tbl AND pk = jsonb_build_object('id', key) AND hlc = stamp $$;
-- What it should be.
CREATE FUNCTION entry(node text, tbl text, change jsonb, scope jsonb, sqlstate text, reason text, answer text,
                      forget boolean) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('node_id', node, 'role_name', current_user, 'table_name', tbl, 'pk', change -> 'pk',
                            'op', change -> 'op', 'row', change -> 'row', 'hlc', change -> 'hlc', 'origin', change -> 'node',
                            'scope', scope, 'sqlstate', sqlstate, 'reason', reason, 'answer', answer, 'forget', forget,
                            'resolved_at', NULL) $$;

-- ---------------------------------------------------------------------------
-- (1) Two devices create rows with the same UNIQUE value. The second push
-- applies its other changes and refuses that row (23505) on its own; the
-- server answers with a tombstone one stamp above it, which the device's
-- next pull delivers, so the device drops its copy.
SELECT syncline.pull_since(NULL, 1000, jsonb_build_object('scope', 7, 'exclude_origin', :dev_b)) AS b_clone \gset
SELECT hlc(-3000) AS a_sent, hlc(-2000) AS b_sent \gset
SELECT is(syncline.apply_push(batch(:dev_a, up('tags', tag(1, 7, 'urgent'), :'a_sent', :dev_a))) ->> 'applied', '1',
          'unique: device A creates tag "urgent"');
SELECT syncline.apply_push(batch(:dev_b, up('tags', tag(2, 7, 'urgent'), :'b_sent', :dev_b),
                                         up('tags', tag(3, 7, 'later'), :'b_sent', :dev_b))) AS b_summary \gset
SELECT is((:'b_summary'::jsonb ->> 'applied')::int, 1, 'unique: device B''s push of the same name applies its other tag');
SELECT results_eq(format('SELECT * FROM refusals(%L)', :'b_summary'),
                  format($$VALUES (0, 'tags', jsonb_build_object('id', id(2)), %L, '23505',
                                   'change 0 (table "tags"): duplicate key value violates unique constraint '
                                   '"tags_org_id_name_key" (Key (org_id, name)=(7, urgent) already exists.)', false)$$,
                         :'b_sent'),
                  'unique: ... and refuses the duplicate on its own, with PostgreSQL''s SQLSTATE and words');
SELECT is((SELECT array_agg(name ORDER BY name) FROM tags), ARRAY['later', 'urgent'], 'unique: tags holds A''s tag and B''s other one');
SELECT is((SELECT id FROM tags WHERE name = 'urgent'), id(1), 'unique: ... the name is A''s');
SELECT is(meta('tags', id(2)), 'deleted by server at ' || hlc_text(hlc_int(:'b_sent') + 1),
          'unique: the server answers with a tombstone one stamp above the refused one');
SELECT is((SELECT scope FROM syncline.rows r JOIN syncline.tables t USING (tid)
            WHERE t.table_name = 'tags' AND r.pk = jsonb_build_array(id(2)::text)::text), '7',
          'unique: ... in the refused row''s scope, which device B pulls');
SELECT is(logged('tags', id(2), :'b_sent'),
          entry(:dev_b, 'tags', up('tags', tag(2, 7, 'urgent'), :'b_sent', :dev_b), '7', '23505',
                'change 0 (table "tags"): duplicate key value violates unique constraint "tags_org_id_name_key" '
                '(Key (org_id, name)=(7, urgent) already exists.)', 'restamped', false),
          'unique: the refusal is logged: the device, its role, the change as sent, why, the answer');
SELECT syncline.pull_since(:'b_clone'::jsonb ->> 'cursor', 1000, jsonb_build_object('scope', 7, 'exclude_origin', :dev_b))
       AS b_pull \gset
SELECT is((SELECT jsonb_agg(c - 'clock' - 'table' ORDER BY c ->> 'hlc') FROM jsonb_array_elements(:'b_pull'::jsonb -> 'changes') c),
          jsonb_build_array(
            jsonb_build_object('op', 'upsert', 'pk', jsonb_build_object('id', id(1)), 'row', tag(1, 7, 'urgent'),
                               'hlc', :'a_sent', 'node', :dev_a),
            jsonb_build_object('op', 'delete', 'pk', jsonb_build_object('id', id(2)),
                               'hlc', hlc_text(hlc_int(:'b_sent') + 1), 'node', syncline.node_id())),
          'unique: device B''s next pull from its cursor delivers A''s tag and the tombstone for its own');

-- ---------------------------------------------------------------------------
-- (2) A child under a parent another device deleted (a foreign key). While
-- more pages are to come (the parent may be in one), the batch is rejected
-- with PostgreSQL's error; in the last page the child is refused on its own.
CREATE FUNCTION project(n int, org int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('id', id(n), 'org_id', org, 'name', 'project ' || n) $$;
CREATE FUNCTION task(n int, project int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('id', id(n), 'org_id', 7, 'project_id', id(project), 'title', 'task ' || n) $$;
SELECT hlc(-9000) AS p_made, hlc(-5000) AS p_gone, hlc(-4000) AS t_made \gset
SELECT is(syncline.apply_push(batch(:dev_a, up('projects', project(10, 7), :'p_made', :dev_a),
                                            del('projects', id(10), :'p_gone', :dev_a))) ->> 'applied', '2',
          'foreign key: device A creates a project and deletes it');
SELECT batch(:dev_b, up('projects', project(13, 7), :'t_made', :dev_b), up('tasks', task(11, 10), :'t_made', :dev_b),
             up('tasks', task(12, 13), :'t_made', :dev_b)) AS orphan \gset
SELECT throws_ok(apply(:'orphan'::jsonb || '{"has_more": true}'), '23503',
                 'syncline.apply_push: change 1 (table "tasks"): insert or update on table "tasks" violates foreign key '
                 'constraint "tasks_project_id_fkey"',
                 'foreign key: device B''s task under it, in a page with more to come, rejects the batch');
SELECT is((SELECT count(*) FROM projects WHERE id = id(13)) + (SELECT count(*) FROM tasks), 0::bigint,
          'foreign key: ... which writes nothing');
SELECT syncline.apply_push(:'orphan') AS orphan_summary \gset
SELECT is((:'orphan_summary'::jsonb ->> 'applied')::int, 2, 'foreign key: in the last page, the other changes apply');
SELECT results_eq(format('SELECT change, tbl, sqlstate, reason, forget FROM refusals(%L)', :'orphan_summary'),
                  format($$VALUES (1, 'tasks', '23503', 'change 1 (table "tasks"): insert or update on table "tasks" '
                                   'violates foreign key constraint "tasks_project_id_fkey" (Key (project_id)=(%s) is '
                                   'not present in table "projects".)', false)$$, id(10)),
                  'foreign key: ... and the orphan is refused on its own (23503)');
SELECT is((SELECT array_agg(id ORDER BY id) FROM tasks), ARRAY[id(12)], 'foreign key: the orphan is not written');
SELECT is(meta('tasks', id(11)), 'deleted by server at ' || hlc_text(hlc_int(:'t_made') + 1),
          'foreign key: the server answers with a tombstone one stamp above it');
SELECT is(logged('tasks', id(11), :'t_made') ->> 'sqlstate', '23503', 'foreign key: the refusal is logged');

-- ---------------------------------------------------------------------------
-- (3) Rules only the server has: a varchar(n), NOT NULL, a CHECK, a domain.
-- A change to a row the server holds is answered with the server's row.
CREATE FUNCTION profile(n int, vals jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('id', id(n), 'org_id', 7, 'name', 'p' || n, 'age', 30, 'email', 'p@x') || vals $$;
SELECT hlc(-8000) AS pr_made, hlc(-1000) AS pr_sent \gset
SELECT is(syncline.apply_push(batch(:dev_a, up('profiles', profile(20), :'pr_made', :dev_a))) ->> 'applied', '1',
          'server rules: device A creates a profile');
SELECT syncline.pull_since(NULL, 1000, jsonb_build_object('scope', 7, 'exclude_origin', :dev_b)) AS b_before \gset
SELECT syncline.apply_push(batch(:dev_b,
         up('profiles', profile(21, '{"name": "far too long"}'), :'pr_sent', :dev_b),
         up('profiles', profile(22, '{"name": null}'), :'pr_sent', :dev_b),
         up('profiles', profile(23, '{"age": -1}'), :'pr_sent', :dev_b),
         up('profiles', profile(24, '{"email": "nobody"}'), :'pr_sent', :dev_b),
         up('profiles', profile(20, '{"age": -5}'), :'pr_sent', :dev_b),
         up('profiles', profile(25), :'pr_sent', :dev_b))) AS pr_summary \gset
SELECT is((:'pr_summary'::jsonb ->> 'applied')::int, 1, 'server rules: the one good change of the batch applies');
SELECT results_eq(format('SELECT change, sqlstate, reason, forget FROM refusals(%L)', :'pr_summary'),
  $$VALUES (0, '22001', 'change 0 (table "profiles"): value too long for type character varying(8)', true),
           (1, '23502', 'change 1 (table "profiles"): null value in column "name" of relation "profiles" violates '
                        'not-null constraint (Failing row contains (00000000-0000-4000-8000-000000000022, 7, null, 30, p@x).)',
            false),
           (2, '23514', 'change 2 (table "profiles"): new row for relation "profiles" violates check constraint '
                        '"profiles_age_check" (Failing row contains (00000000-0000-4000-8000-000000000023, 7, p23, -1, p@x).)',
            false),
           (3, '23514', 'change 3 (table "profiles"): value for domain public.email violates check constraint "email_check"', true),
           (4, '23514', 'change 4 (table "profiles"): new row for relation "profiles" violates check constraint '
                        '"profiles_age_check" (Failing row contains (00000000-0000-4000-8000-000000000020, 7, p20, -5, p@x).)',
            false)$$,
  'server rules: varchar(n) (22001), NOT NULL (23502), CHECK (23514) and a domain (23514) are refused on their own; '
  'the device forgets what the server could not read');
SELECT is((SELECT array_agg((id, age)::text ORDER BY id) FROM profiles),
          ARRAY[(id(20), 30)::text, (id(25), 30)::text], 'server rules: nothing of the refused changes is written');
SELECT results_eq($$SELECT right(r.pk, 4) COLLATE "default", r.deleted, r.node, r.hlc = $$ || hlc_int(:'pr_sent') + 1 || $$,
                            r.hlc = 1
                       FROM syncline.rows r JOIN syncline.tables t USING (tid)
                      WHERE t.table_name = 'profiles' AND r.pk NOT LIKE '%25"]' ORDER BY r.pk$$,
                  $$VALUES ('20"]', false, 0, true, false), ('21"]', true, 0, false, true), ('22"]', true, 0, true, false),
                           ('23"]', true, 0, true, false), ('24"]', true, 0, false, true)$$,
                  'server rules: each refused row is answered by the server (its row, or a tombstone): one stamp above '
                  'the refused one, or, when the device forgets its copy, the least stamp (the server never had the row)');
SELECT is((SELECT c - 'clock' - 'table' FROM jsonb_array_elements(syncline.pull_since(:'b_before'::jsonb ->> 'cursor', 1000,
             jsonb_build_object('scope', 7, 'exclude_origin', :dev_b))::jsonb -> 'changes') c WHERE c -> 'pk' ->> 'id' = id(20)::text),
          jsonb_build_object('op', 'upsert', 'pk', jsonb_build_object('id', id(20)), 'row', profile(20),
                             'hlc', hlc_text(hlc_int(:'pr_sent') + 1), 'node', syncline.node_id()),
          'server rules: the device''s next pull brings back the server''s row over its refused edit');
SELECT is((SELECT array_agg(answer || ':' || forget ORDER BY pk ->> 'id') FROM syncline.conflicts WHERE table_name = 'profiles'),
          ARRAY['restamped:false', 'restamped:true', 'restamped:false', 'restamped:false', 'restamped:true'],
          'server rules: each refusal is logged with its answer');

-- ---------------------------------------------------------------------------
-- (4) An authorisation hook refuses a scope: a privilege error (42501), the
-- device forgets its copy (the answer may lie in a scope it does not pull).
-- A change that moves a row to another scope is refused the same way; the
-- server's row, in its scope, comes back to the device.
CREATE TABLE docs (id uuid PRIMARY KEY, org_id int NOT NULL, body text);
CREATE ROLE conf_org7 NOLOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO conf_org7;
GRANT SELECT ON tags, projects, tasks, profiles TO conf_org7;  -- its pulls read every tracked table
CREATE FUNCTION may_access_org(scope jsonb) RETURNS boolean LANGUAGE sql STABLE SET search_path = public AS $$
  SELECT (scope #>> '{}')::int = 7 OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) $$;
SELECT syncline.track('docs', '{"scope": "org_id", "authorize": "public.may_access_org"}') IS NOT NULL AS tracked \gset
CREATE FUNCTION doc(n int, org int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('id', id(n), 'org_id', org, 'body', 'doc ' || n) $$;
SELECT hlc(-7000) AS d_made, hlc(-6000) AS d_sent \gset
SET ROLE conf_org7;
SELECT is(syncline.apply_push(batch(:dev_c, up('docs', doc(40, 7), :'d_made', :dev_c))) ->> 'applied', '1',
          'hook: a role creates a document in its scope');
SELECT syncline.pull_since(NULL, 1000, jsonb_build_object('scope', 7, 'exclude_origin', :dev_c)) AS c_before \gset
SELECT syncline.apply_push(batch(:dev_c, up('docs', doc(41, 8), :'d_sent', :dev_c), up('docs', doc(40, 8), :'d_sent', :dev_c),
                                         up('docs', doc(42, 7), :'d_sent', :dev_c))) AS d_summary \gset
SELECT syncline.pull_since(:'c_before'::jsonb ->> 'cursor', 1000, jsonb_build_object('scope', 7, 'exclude_origin', :dev_c))
       AS c_pull \gset
RESET ROLE;
SELECT is((:'d_summary'::jsonb ->> 'applied')::int, 1, 'hook: the batch''s change in the role''s scope applies');
SELECT results_eq(format('SELECT change, sqlstate, reason, forget FROM refusals(%L)', :'d_summary'),
  $$VALUES (0, '42501', 'change 0 (table "docs"): not authorised for scope 8 (by public.may_access_org(jsonb))', true),
           (1, '42501', 'change 1 (table "docs"): the row''s scope is 7; a change cannot move it to 8', true)$$,
  'hook: a scope the hook refuses, and a scope move, are refused on their own (42501) and the device forgets them');
SELECT is((SELECT array_agg((id, org_id)::text ORDER BY id) FROM docs), ARRAY[(id(40), 7)::text, (id(42), 7)::text],
          'hook: nothing of the refused changes is written');
SELECT is((SELECT array_agg(role_name || ':' || forget ORDER BY id) FROM syncline.conflicts WHERE table_name = 'docs'),
          ARRAY['conf_org7:true', 'conf_org7:true'], 'hook: the refusals are logged with the role, forget = true');
SELECT is((SELECT jsonb_agg(c - 'clock' - 'table' - 'hlc' ORDER BY c ->> 'hlc') FROM jsonb_array_elements(:'c_pull'::jsonb -> 'changes') c),
          jsonb_build_array(jsonb_build_object('op', 'upsert', 'pk', jsonb_build_object('id', id(40)), 'row', doc(40, 7),
                                               'node', syncline.node_id())),
          'hook: the device''s next pull brings back the row it tried to move, as the server holds it (at the server''s '
          'clock), and nothing of scope 8');

-- ---------------------------------------------------------------------------
-- (5) Stamps far ahead of the server's clock. A hostile relay's change
-- stamped 7fffffffffffffff (the greatest stamp) would beat every later edit
-- of its row for good: it is refused (the device forgets it), and answered
-- at the server's own clock, so the row stays writable.
\set relay '\'0d000000-0000-4000-8000-00000000000d\''
\set far '\'0e000000-0000-4000-8000-00000000000e\''
SELECT hlc(-1000) AS h_made \gset
SELECT is(syncline.apply_push(batch(:dev_a, up('tags', tag(30, 7, 'kept'), :'h_made', :dev_a))) ->> 'applied', '1',
          'drift: device A creates a tag');
SELECT hlc(0) AS h_before, hlc(-500) AS h_fine, hlc(2 * 3600 * 1000) AS h_hours \gset
SELECT syncline.apply_push(batch(:relay, up('tags', tag(30, 7, 'hijacked'), '7fffffffffffffff', :far),
                                         up('tags', tag(31, 7, 'fine'), :'h_fine', :relay),
                                         up('tags', tag(32, 7, 'planted'), '7fffffffffffffff', :far),
                                         up('tags', tag(33, 7, 'hours ahead'), :'h_hours', :relay))) AS h_summary \gset
SELECT hlc(60 * 1000) AS h_after \gset
SELECT is((:'h_summary'::jsonb ->> 'applied')::int, 1, 'drift: the batch''s honest change applies');
SELECT results_eq(format('SELECT change, sqlstate, forget FROM refusals(%L)', :'h_summary'),
                  $$VALUES (0, '22023', true), (2, '22023', true), (3, '22023', true)$$,
                  'drift: a relayed change stamped 7fffffffffffffff, and one two hours ahead from its origin, are refused; '
                  'the device forgets them');
SELECT alike((SELECT reason FROM refusals(:'h_summary') WHERE change = 0),
             'change 0 (table "tags"): hlc 7fffffffffffffff is % s ahead of this node''s clock (the bound is 3600 s); %',
             'drift: ... saying by how much the stamp is ahead');
SELECT is((SELECT array_agg(name ORDER BY id) FROM tags WHERE id IN (id(30), id(31), id(32), id(33))), ARRAY['kept', 'fine'],
          'drift: nothing of the refused changes is written');
SELECT is((SELECT array_agg(r.node || ':' || (r.hlc - CASE WHEN r.pk LIKE '%30"]' THEN hlc_int(:'h_made') ELSE 0 END)
                            ORDER BY r.pk)
             FROM syncline.rows r WHERE r.pk IN (SELECT jsonb_build_array(id(n)::text)::text FROM unnest(ARRAY[30, 32, 33]) n)),
          ARRAY['0:1', '0:1', '0:1'],
          'drift: the server answers each at the least stamp above its own version, not above the refused stamp');
SELECT is(ARRAY[left(meta('tags', id(30)), 14), left(meta('tags', id(32)), 17), left(meta('tags', id(33)), 17)],
          ARRAY['live by server', 'deleted by server', 'deleted by server'],
          'drift: ... with its row, or a tombstone');
SELECT cmp_ok((SELECT value::bigint FROM syncline.meta WHERE key = 'hlc'), '<', hlc_int(:'h_after'),
              'drift: the server''s clock has not seen the refused stamps');
SELECT is(syncline.apply_push(batch(:dev_a, up('tags', tag(30, 7, 'edited'), hlc(1000), :dev_a))) ->> 'applied', '1',
          'drift: a later honest edit of the row applies');
SELECT is((SELECT name FROM tags WHERE id = id(30)), 'edited', 'drift: ... and is written');

-- ---------------------------------------------------------------------------
-- (7) A node id is bound to the role that first pushed under it
-- (syncline.devices): another role cannot push in its name; a superuser
-- may. A device reads its own refusals through conflicts_for(node), which
-- gives them to its role only.
\set dev_f '\'0f000000-0000-4000-8000-00000000000f\''
\set dev_g '\'01000000-0000-4000-8000-000000000010\''
CREATE ROLE conf_alice NOLOGIN;
CREATE ROLE conf_bob NOLOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON tags, projects, tasks, profiles, docs TO conf_alice, conf_bob;
SET ROLE conf_alice;
SELECT hlc(-900) AS f_sent \gset
SELECT syncline.apply_push(batch(:dev_f, up('tags', tag(50, 7, 'alice'), :'f_sent', :dev_f),
                                         up('tags', tag(51, 7, 'urgent'), :'f_sent', :dev_f))) AS f_summary \gset
RESET ROLE;
SELECT is((SELECT role_name FROM syncline.devices WHERE node_id = :dev_f), 'conf_alice',
          'binding: the first push under a node id binds it to the pushing role');
SELECT is(jsonb_build_array(:'f_summary'::jsonb -> 'applied', :'f_summary'::jsonb #> '{refused,0,change}'), '[1, 1]',
          'binding: ... (which got a change refused)');
SET ROLE conf_bob;
SELECT throws_ok(apply(batch(:dev_f, up('tags', tag(52, 7, 'bob as alice'), hlc(-800), :dev_f))), '42501',
                 format('syncline.apply_push: batch: node %s pushes as role "conf_alice", not "conf_bob"', :dev_f),
                 'binding: another role cannot push under that node id');
SELECT hlc(-700) AS g_sent \gset
SELECT syncline.apply_push(batch(:dev_g, up('tags', tag(53, 7, 'urgent'), :'g_sent', :dev_g))) AS g_summary \gset
RESET ROLE;
SELECT is((SELECT count(*) FROM tags WHERE id = id(52)), 0::bigint, 'binding: ... and nothing of its batch is written');
SELECT is((SELECT role_name FROM syncline.devices WHERE node_id = :dev_f), 'conf_alice', 'binding: ... nor is the node rebound');
SELECT is(syncline.apply_push(batch(:dev_f, up('tags', tag(54, 7, 'by admin'), hlc(-600), :dev_f))) ->> 'applied', '1',
          'binding: a superuser may push under any node id');
SELECT is(:'g_summary'::jsonb #>> '{refused,0,sqlstate}', '23505', 'binding: bob''s own device gets a change refused too');

SET SESSION AUTHORIZATION conf_alice;
SELECT results_eq(format('SELECT table_name, pk, hlc FROM syncline.conflicts_for(%L)', :dev_f),
                  format($$VALUES ('tags', jsonb_build_object('id', id(51)), %L)$$, :'f_sent'),
                  'conflicts_for: a device''s role reads its refusals');
SELECT is_empty(format('SELECT * FROM syncline.conflicts_for(%L)', :dev_g), 'conflicts_for: ... and not another device''s');
SELECT is_empty(format('SELECT * FROM syncline.conflicts_for(%L, %s)', :dev_f,
                       (SELECT max(id) FROM syncline.conflicts_for(:dev_f::uuid))),
                'conflicts_for: ... after the last one it has, none');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION conf_bob;
SELECT is_empty(format('SELECT * FROM syncline.conflicts_for(%L)', :dev_f),
                'conflicts_for: another role (logged in as itself) reads nothing of a device not its own');
SELECT is((SELECT array_agg(hlc) FROM syncline.conflicts_for(:dev_g::uuid)), ARRAY[:'g_sent'],
          'conflicts_for: ... and its own device''s refusals');
RESET SESSION AUTHORIZATION;
-- The same role in a session an administrator opened (a pool that logs in
-- as a superuser and takes each user's role): conflicts_for must judge the
-- role, as apply_push's binding does, not the session's login.
SET ROLE conf_bob;
SELECT is_empty(format('SELECT * FROM syncline.conflicts_for(%L)', :dev_f),
                'conflicts_for: another role (SET ROLE in an administrator''s session) reads nothing of a device not its own');
SELECT throws_ok('SELECT count(*) FROM syncline.conflicts', '42501', 'permission denied for table conflicts',
                 'conflicts_for: the log itself is for administrators only');
RESET ROLE;
SELECT is((SELECT count(*) FROM syncline.conflicts_for(:dev_f::uuid)), 1::bigint, 'conflicts_for: a superuser reads any device''s');

-- ---------------------------------------------------------------------------
-- (8) resolve_conflicts marks entries done; prune_conflicts drops old ones
-- (by default resolved ones after 30 days, any after 90). Both are for
-- administrators.
SELECT array_agg(id ORDER BY id) AS all_ids, count(*) AS logged FROM syncline.conflicts \gset
SELECT (:'all_ids'::bigint[])[1] AS e1, (:'all_ids'::bigint[])[2] AS e2, (:'all_ids'::bigint[])[3] AS e3,
       (:'all_ids'::bigint[])[4] AS e4 \gset
SELECT is(syncline.resolve_conflicts(ARRAY[:e1, :e2]::bigint[]), 2::bigint, 'resolve_conflicts: marks the entries done');
SELECT is((SELECT array_agg(id ORDER BY id) FROM syncline.conflicts WHERE resolved_at IS NOT NULL), ARRAY[:e1, :e2]::bigint[],
          'resolve_conflicts: ... those only');
SELECT is(syncline.resolve_conflicts(ARRAY[:e1, :e2, :e3]::bigint[]), 1::bigint,
          'resolve_conflicts: ... and counts only those not done before');
SET ROLE conf_alice;
SELECT throws_ok(format('SELECT syncline.resolve_conflicts(ARRAY[%s]::bigint[])', :e4), '42501', NULL,
                 'resolve_conflicts: not for other roles');
SELECT throws_ok('SELECT syncline.prune_conflicts()', '42501', NULL, 'prune_conflicts: not for other roles');
RESET ROLE;
-- Ages: e1 resolved 40 days ago, e2 10 days ago, e3 unresolved (left so)
-- and 100 days old, e4 unresolved and 50 days old.
UPDATE syncline.conflicts SET at = now() - interval '41 days', resolved_at = now() - interval '40 days' WHERE id = :e1;
UPDATE syncline.conflicts SET at = now() - interval '20 days', resolved_at = now() - interval '10 days' WHERE id = :e2;
UPDATE syncline.conflicts SET at = now() - interval '100 days', resolved_at = NULL WHERE id = :e3;
UPDATE syncline.conflicts SET at = now() - interval '50 days' WHERE id = :e4;
SELECT is(syncline.prune_conflicts(), 2::bigint, 'prune_conflicts: drops resolved entries after 30 days and any after 90');
SELECT is((SELECT array_agg(id ORDER BY id) FROM syncline.conflicts WHERE id IN (:e1, :e2, :e3, :e4)), ARRAY[:e2, :e4]::bigint[],
          'prune_conflicts: ... those only');
SELECT is(syncline.prune_conflicts('1 day', '30 days'), 2::bigint, 'prune_conflicts: with other retentions');
SELECT is((SELECT count(*) FROM syncline.conflicts), :logged - 4::bigint, 'prune_conflicts: ... the recent entries stay');

-- Roles are cluster-wide: leave none behind.
DROP OWNED BY conf_org7, conf_alice, conf_bob;
DROP ROLE conf_org7, conf_alice, conf_bob;

-- ---------------------------------------------------------------------------
-- Batches rejected after a change was converted. A stamp more than the
-- drift bound (5 minutes) but less than an hour ahead of the server's
-- clock makes the batch wait (55000: the next sync tries again), whether
-- its origin sent it or a relay; a malformed change after a good one, or a
-- constraint in a page with more to come, rejects the batch. Either way the
-- caller's transaction and settings are as they were, so that a caller that
-- catches the error goes on. (Last in this file, and caught by a function
-- of its own rather than pgTAP's throws_ok: a rejected batch that leaves a
-- subtransaction open behind the caller's handler fails these tests, not
-- the rest of the file.)
CREATE FUNCTION outcome(b jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM syncline.apply_push(b);
  RETURN 'applied';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT current_setting('search_path') AS path_before \gset
SELECT hlc(-100) AS w_fine, hlc(10 * 60 * 1000) AS w_ahead \gset
SELECT outcome(batch(:dev_a, up('tags', tag(60, 7, 'fine'), :'w_fine', :dev_a),
                             up('tags', tag(61, 7, 'ahead'), :'w_ahead', :dev_a))) AS waits \gset
SELECT current_setting('search_path') AS path_after, pg_current_xact_id_if_assigned() IS NULL AS no_transaction \gset
SELECT pg_catalog.set_config('search_path', :'path_before', false) AS restored \gset
SELECT alike(:'waits'::text, format('55000: syncline.apply_push: change 1 (table "tags"): hlc %s is %% s ahead of this node''s '
                                    'clock (the bound is 300 s); check the origin''s clock; the batch waits until then', :'w_ahead'),
             'wait: a change 10 minutes ahead makes the batch wait (55000)');
SELECT is((SELECT count(*) FROM tags WHERE id IN (id(60), id(61))), 0::bigint, 'wait: ... and nothing of it is written');
SELECT is(:'path_after'::text, :'path_before', 'wait: ... and the caller''s search_path is as it was');
SELECT ok(:'no_transaction'::boolean, 'wait: ... and no transaction is left open behind the caller''s exception handler');

-- The other rejections run each in a session of its own, where the error
-- ends the transaction uncaught: should a rejected batch leave a
-- subtransaction open again, the tests above fail, while a second one
-- caught in this session would crash the server at disconnect (and fail the
-- files after this one). They push from other devices than the one above,
-- whose syncline.devices row such a transaction would keep locked (and a
-- lock wait fails rather than hangs). Each gives psql's error line, with
-- the SQLSTATE only, then with the message only.
SELECT format('SELECT syncline.apply_push(%L)', batch(:relay, up('tags', tag(62, 7, 'fine'), :'w_fine', :relay),
                                                      up('tags', tag(63, 7, 'ahead'), :'w_ahead', :far))) AS push \gset
\set state `PGOPTIONS='-c lock_timeout=10s' psql -X -q -At -d :'DBNAME' -v VERBOSITY=sqlstate -c :'push' 2>&1`
\set message `PGOPTIONS='-c lock_timeout=10s' psql -X -q -At -d :'DBNAME' -v VERBOSITY=terse -c :'push' 2>&1`
SELECT is(:'state'::text, 'ERROR:  55000', 'wait: a relayed change 10 minutes ahead makes the batch wait too');
SELECT alike(:'message'::text, 'ERROR:  syncline.apply_push: change 1 (table "tags"): %; the batch waits until then',
             'wait: ... naming the change');
SELECT is((SELECT count(*) FROM tags WHERE id IN (id(62), id(63))), 0::bigint, 'wait: ... and nothing of it is written');

SELECT format('SELECT syncline.apply_push(%L)', batch(:dev_b, up('tags', tag(64, 7, 'fine'), :'w_fine', :dev_b),
                jsonb_set(jsonb_set(up('tags', tag(65, 7, 'x'), :'w_fine', :dev_b), '{pk,id}', 'null'), '{row,id}', 'null')))
       AS push \gset
\set state `PGOPTIONS='-c lock_timeout=10s' psql -X -q -At -d :'DBNAME' -v VERBOSITY=sqlstate -c :'push' 2>&1`
\set message `PGOPTIONS='-c lock_timeout=10s' psql -X -q -At -d :'DBNAME' -v VERBOSITY=terse -c :'push' 2>&1`
SELECT is(ARRAY[:'state', :'message'],
          ARRAY['ERROR:  22023', 'ERROR:  syncline.apply_push: change 1 (table "tags"): primary key column "id" is null'],
          'malformed: a null key after a good change rejects the batch');

SELECT format('SELECT syncline.apply_push(%L)', batch(:dev_b, up('tags', tag(66, 7, 'fine'), :'w_fine', :dev_b),
                up('profiles', profile(67, '{"email": "nobody"}'), :'w_fine', :dev_b)) || '{"has_more": true}') AS push \gset
\set state `PGOPTIONS='-c lock_timeout=10s' psql -X -q -At -d :'DBNAME' -v VERBOSITY=sqlstate -c :'push' 2>&1`
\set message `PGOPTIONS='-c lock_timeout=10s' psql -X -q -At -d :'DBNAME' -v VERBOSITY=terse -c :'push' 2>&1`
SELECT is(ARRAY[:'state', :'message'],
          ARRAY['ERROR:  23514',
                'ERROR:  syncline.apply_push: change 1 (table "profiles"): value for domain public.email violates check '
                'constraint "email_check"'],
          'more to come: a domain''s CHECK rejects the batch with PostgreSQL''s SQLSTATE and words');
SELECT is((SELECT count(*) FROM tags WHERE id IN (id(64), id(66))), 0::bigint, 'malformed, more to come: nothing is written');

-- An error the merge cannot refuse a change for, raised while a value is
-- converted (here a domain's CHECK calls a function that gives up), ends
-- the apply; caught by the caller (in a session of its own), it leaves that
-- session's transaction and settings as they were.
CREATE FUNCTION give_up(v text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF v = 'give up' THEN RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded', MESSAGE = 'gave up'; END IF;
  RETURN true;
END $$;
CREATE DOMAIN fragile AS text CHECK (public.give_up(VALUE));
CREATE TABLE fragile_notes (id uuid PRIMARY KEY, body fragile);
SELECT syncline.track('fragile_notes') IS NOT NULL AS tracked \gset
SELECT format('SELECT outcome(%L)', batch(:dev_b, up('tags', tag(68, 7, 'fine'), :'w_fine', :dev_b),
                up('fragile_notes', jsonb_build_object('id', id(69), 'body', 'give up'), :'w_fine', :dev_b))) AS push \gset
\set caught `PGOPTIONS='-c lock_timeout=10s' psql -X -q -At -d :'DBNAME' -c :'push' -c "SELECT current_setting('search_path') || ' / ' || (pg_current_xact_id_if_assigned() IS NULL)" 2>&1`
SELECT is(:'caught'::text, E'54000: syncline.apply_push: change 1 (table "fragile_notes"): gave up\n"$user", public / true',
          'an error while converting ends the apply; a caller that catches it goes on in its own transaction, settings as they were');

SELECT * FROM finish();
