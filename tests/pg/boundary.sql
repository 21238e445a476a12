-- The C++/PostgreSQL boundary (pg_extension/pg_boundary.h): an error raised
-- under syncline's functions reaches the caller whole, with its SQLSTATE,
-- detail and hint, and so does the reason for a change apply_push refuses.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(17);

-- {sqlstate, message, detail, hint} of the error a statement raises.
CREATE FUNCTION error_of(statement text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  state text; message text; detail text; hint text;
BEGIN
  EXECUTE statement;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
                          hint = PG_EXCEPTION_HINT;
  RETURN ARRAY[state, message, detail, hint];
END $$;
CREATE FUNCTION hlc() RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint) << 16), 16, '0') $$;
-- apply_push of one note (in a page with more to come, if more).
CREATE FUNCTION push_note(id text, title text, more boolean DEFAULT false) RETURNS text LANGUAGE sql AS $$
  SELECT format('SELECT syncline.apply_push(%L)', jsonb_build_object('format', 1,
    'source', '00000000-0000-4000-8000-0000000000aa', 'has_more', more, 'changes', jsonb_build_array(jsonb_build_object(
      'table', 'notes', 'op', 'upsert', 'pk', jsonb_build_object('id', id), 'row', jsonb_build_object('id', id, 'title', title),
      'clock', 1, 'hlc', hlc(), 'node', '00000000-0000-4000-8000-0000000000aa')))) $$;
-- The reason apply_push gives for refusing the first change of what it returns.
CREATE FUNCTION refusal_of(statement text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  summary jsonb;
BEGIN
  EXECUTE statement INTO summary;
  RETURN ARRAY[summary #>> '{refused,0,sqlstate}', summary #>> '{refused,0,reason}'];
END $$;

-- ---------------------------------------------------------------------------
-- PostgreSQL's errors, raised while syncline holds an SPI connection, outlive
-- it: SPI_finish frees SPI's memory before the error is raised again. A long
-- message lives in a block of its own, which freeing returns to the system.
-- (Errors from a PL/pgSQL function would not show it: such a function leaves
-- its own SPI connection open when it fails, and SPI_finish closes that one.)
CREATE TABLE notes (id text PRIMARY KEY, title text CHECK (length(title) < 100 OR title::int > 0));
SELECT syncline.track('notes') IS NOT NULL AS tracked \gset
-- A user's trigger fails with an error the merge cannot refuse a change for:
-- it ends the apply.
CREATE FUNCTION give_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded', MESSAGE = repeat('z', 200000), DETAIL = 'by a trigger',
                        HINT = 'drop it';
END $$;
CREATE TRIGGER give_up BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION give_up();
SELECT error_of(push_note('n1', 'short')) AS e \gset
SELECT is((:'e'::text[])[1], '54000', 'apply_push: PostgreSQL''s error keeps its SQLSTATE');
SELECT ok((:'e'::text[])[2] = 'syncline.apply_push: change 0 (table "notes"): ' || repeat('z', 200000),
          '... and its whole message, prefixed with the change at fault');
SELECT is((:'e'::text[])[3:4], ARRAY['by a trigger', 'drop it'], '... and its detail and hint');
DROP TRIGGER give_up ON notes;
-- A change PostgreSQL refuses is refused on its own (docs/protocol.md,
-- "Conflicts"): PostgreSQL's words, whole, are the reason.
SELECT refusal_of(push_note('n1', repeat('x', 200000))) AS e \gset
SELECT is((:'e'::text[])[1], '22P02', 'a refused change: PostgreSQL''s SQLSTATE is the refusal''s');
SELECT ok((:'e'::text[])[2] = 'change 0 (table "notes"): invalid input syntax for type integer: "' || repeat('x', 200000) || '"',
          '... and its whole message, prefixed with the change, the reason');
SELECT ok((SELECT reason FROM syncline.conflicts ORDER BY id DESC LIMIT 1) = (:'e'::text[])[2], '... in the log too');
-- A user's trigger refusing the row: a constraint, which rejects a page with
-- more to come (with the trigger's message, detail and hint) and is refused
-- on its own in the last page (with the detail in the reason).
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused', DETAIL = 'by a trigger', HINT = 'drop it';
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION refuse();
SELECT is(error_of(push_note('n1', 'short', true)),
          ARRAY['23514', 'syncline.apply_push: change 0 (table "notes"): refused', 'by a trigger', 'drop it'],
          'apply_push: a trigger''s error keeps its SQLSTATE, message, detail and hint');
SELECT is(refusal_of(push_note('n1', 'short')), ARRAY['23514', 'change 0 (table "notes"): refused (by a trigger)'],
          '... and as a refusal, its SQLSTATE, message and detail');
DROP TRIGGER refuse ON notes;

-- The same under track(): a row-level security policy that fails on the
-- rows track() backfills (for a role that does not bypass it).
CREATE ROLE syncline_tracker NOLOGIN;
CREATE TABLE other (id int PRIMARY KEY);
INSERT INTO other VALUES (1);
ALTER TABLE other OWNER TO syncline_tracker;
CREATE FUNCTION boom(int) RETURNS boolean LANGUAGE sql VOLATILE AS $$ SELECT (repeat('y', 300000) || $1)::int > 0 $$;
ALTER TABLE other ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY boom ON other USING (boom(id));
SET ROLE syncline_tracker;
SELECT error_of($$SELECT syncline.track('other')$$) AS e \gset
RESET ROLE;
SELECT is((:'e'::text[])[1], '22P02', 'track: PostgreSQL''s error keeps its SQLSTATE');
SELECT ok((:'e'::text[])[2] = 'invalid input syntax for type integer: "' || repeat('y', 300000) || '1"',
          '... and its whole message');
SELECT is((SELECT count(*) FROM syncline.tables WHERE table_name = 'other'), 0::bigint, '... and other is not tracked');
ALTER TABLE other DISABLE ROW LEVEL SECURITY;
SET ROLE syncline_tracker;
SELECT is(syncline.track('other') ->> 'backfilled', '1', 'other is tracked once the policy is gone');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- syncline's own errors: a SQLSTATE, a short message, and the explanation
-- (DETAIL) or what to do (HINT) apart, only when there is one.
CREATE TABLE nokey (a int);
SELECT is(error_of($$SELECT syncline.track('nokey')$$),
          ARRAY['22023', 'syncline.track: table public.nokey has no primary key',
                'syncline identifies rows by their primary key.', ''],
          'track: no primary key, with why as the detail');
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (PRIMARY KEY (id)) INHERITS (parent);
SELECT is(error_of($$SELECT syncline.track('child')$$),
          ARRAY['22023', 'syncline.track: table public.child uses table inheritance',
                'syncline tracks ordinary and declaratively partitioned tables (PARTITION BY), not tables that '
                'inherit or are inherited from (INHERITS): capture cannot tell a parent''s rows from its children''s.',
                ''],
          'track: an inheritance child, with why as the detail');
SELECT is(error_of($$SELECT syncline.track('notes', '{"scope": "title", "authorize": "no_such_fn"}')$$),
          ARRAY['42P01', 'syncline.track: options: no function no_such_fn(jsonb) returning boolean', '',
                'Name it with its schema, e.g. public.no_such_fn.'],
          'track: an unknown authorisation hook, with a hint');
CREATE SCHEMA elsewhere;
CREATE TABLE elsewhere.notes (id text PRIMARY KEY);
SELECT is(error_of($$SELECT syncline.track('elsewhere.notes')$$),
          ARRAY['22023', 'syncline.track: a table named notes is already tracked in schema public',
                'Batches name tables unqualified, so tracked tables need names unique across schemas.', ''],
          'track: a second table of one name, with why as the detail');
SET ROLE syncline_tracker;
SELECT is(error_of($$SELECT syncline.untrack('notes')$$),
          ARRAY['42501', 'syncline.untrack: must be owner of table notes', '', ''],
          'untrack: not the owner, 42501 without detail or hint');
RESET ROLE;

-- Roles are cluster-wide: leave none behind.
SELECT syncline.untrack('other') AS untracked \gset
DROP TABLE other;
DROP ROLE syncline_tracker;

SELECT * FROM finish();
