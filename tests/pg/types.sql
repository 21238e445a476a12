-- Types on PostgreSQL: every common type round-trips exactly through a
-- changeset (types_a -> pull_since -> apply_push -> types_b), what a SQLite
-- client sends lands in the right PostgreSQL type (the canonical form wins
-- when PostgreSQL stores something else), and a value that does not fit gets
-- its change refused on its own, with a clear reason, and nothing of it written.
-- No BEGIN/ROLLBACK: pulls only see committed work.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
-- Session settings far from the canonical ones: nothing may depend on them.
SET TimeZone = 'America/New_York';
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
SELECT plan(87);

\set fake '\'00000000-0000-4000-8000-0000000000aa\''

-- A stamp offset_ms milliseconds after now (the drift bound is 5 minutes).
CREATE FUNCTION hlc(offset_ms bigint DEFAULT 0) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint + offset_ms) << 16), 16, '0') $$;
CREATE FUNCTION hlc_int(stamp text) RETURNS bigint LANGUAGE sql AS $$
  SELECT ('x' || stamp)::bit(64)::bigint $$;
-- A pulled batch re-addressed: the changes of one table, renamed, as if they
-- came from the fake node.
CREATE FUNCTION retarget(pulled jsonb, from_table text, to_table text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('format', 1, 'source', '00000000-0000-4000-8000-0000000000aa', 'changes',
           coalesce(jsonb_agg(c || jsonb_build_object('table', to_table,
                                                     'node', '00000000-0000-4000-8000-0000000000aa') ORDER BY n),
                    '[]'::jsonb))
    FROM jsonb_array_elements(pulled -> 'changes') WITH ORDINALITY AS x(c, n)
   WHERE c ->> 'table' = from_table $$;
-- The current row objects of one table in a full pull, by primary key.
CREATE FUNCTION pulled_rows(tbl text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_object_agg(c ->> 'pk', c -> 'row')
    FROM jsonb_array_elements(syncline.pull_since(NULL, 1000)::jsonb -> 'changes') c
   WHERE c ->> 'table' = tbl $$;
-- A one-change batch from the fake node.
CREATE FUNCTION push1(tbl text, pk jsonb, r jsonb, stamp text, clock int DEFAULT 1) RETURNS jsonb LANGUAGE sql AS $$
  SELECT syncline.apply_push(jsonb_build_object('format', 1, 'source', '00000000-0000-4000-8000-0000000000aa',
           'changes', jsonb_build_array(jsonb_build_object('table', tbl, 'op', 'upsert', 'pk', pk, 'row', r,
                                                           'clock', clock, 'hlc', stamp,
                                                           'node', '00000000-0000-4000-8000-0000000000aa')))) $$;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE types_a (
  id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric, t text, vc varchar(10),
  c char(5), by bytea, u uuid, d date, tm time, ts timestamp, tz timestamptz, iv interval, j json, jb jsonb,
  ai int[], at text[], m mood, p posint);
CREATE TABLE types_b (LIKE types_a INCLUDING ALL);

SELECT is(syncline.track('types_a') ->> 'table', 'types_a', 'types_a is tracked');
SELECT is(syncline.track('types_b') ->> 'table', 'types_b', 'types_b is tracked');

-- ---------------------------------------------------------------------------
-- Round trip: every type, edge values included.
INSERT INTO types_a VALUES
  (1, true, 1234, 123456789, 1234567890123, 1.5, 0.1, 12345678901234567890.123456789, 'héllo "q" \ ✓ 𝄞',
   'abc', 'ab', '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29', '23:59:59.999999',
   '2024-01-01 12:34:56.789', '2024-06-01 12:00:00.123456+02', '1 year 2 mons 3 days 04:05:06.5',
   '{"b": 1,  "a":[1, 2.50], "b": 2}', '{"b": 1, "a": [1, 2.50], "n": null}', '{1,NULL,3}',
   '{"a b","c,d","q\"uote",NULL,"NULL",""}', 'happy', 5),
  (2, false, 0, 0, 0, '-0', '-0', 'NaN', '', '', '', '', '00000000-0000-0000-0000-000000000000', 'infinity',
   '00:00', '-infinity', 'infinity', '-1 day', 'null', '[]', '{}', '{}', 'sad', 1),
  (3, NULL, -32768, -2147483648, -9223372036854775808, 'NaN', '-Infinity', '-0.000000000000000000000000001',
   E'tab\there\nnewline\r\u007f', 'ten chars!', 'five5',
   (SELECT decode(string_agg(lpad(to_hex(g), 2, '0'), '' ORDER BY g), 'hex') FROM generate_series(0, 255) g),
   'FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF', '4713-01-01 BC', '24:00:00', '294276-12-31 23:59:59.999999',
   '1900-01-01 00:00:00+00', '-178000000 years', '"\u00e9\u0000"', '{"deep": {"er": [true, false, null]}}',
   '{{1,2},{3,4}}', '{"{","}","\\"}', 'ok', 2147483647),
  (4, NULL, 32767, 2147483647, 9223372036854775807, 'Infinity', 1e300, '-Infinity', NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, '0', '1', '1.0e+2', NULL, NULL, NULL, NULL),
  (5, NULL, NULL, NULL, NULL, 3.4028235e38, 4.9e-324, 'Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (6, NULL, NULL, NULL, NULL, 1e-45, 1.7976931348623157e308, '0.1000000000000000000000000000000000001', NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (7, NULL, NULL, NULL, NULL, -1.25e-10, -123456.789e-200, 1e20, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (8, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL);

SELECT retarget(syncline.pull_since(NULL, 1000)::jsonb, 'types_a', 'types_b') AS to_b \gset
SELECT is(jsonb_array_length(:'to_b'::jsonb -> 'changes'), 8, 'the pull carries every row of types_a');
SELECT syncline.apply_push(:'to_b') AS summary \gset
SELECT is((:'summary'::jsonb ->> 'applied')::int, 8, 'every row is applied to types_b');
SELECT is((:'summary'::jsonb ->> 'rewritten')::int, 0, '... and none needed a canonical rewrite');

SELECT set_eq('SELECT id FROM types_b', 'SELECT id FROM types_a', 'types_b holds the same rows');
CREATE FUNCTION differs(cond text) RETURNS text LANGUAGE sql AS $$
  SELECT 'SELECT id FROM types_a a FULL JOIN types_b b USING (id) WHERE ' || cond $$;
SELECT is_empty(differs('a.b IS DISTINCT FROM b.b'), 'bool round-trips');
SELECT is_empty(differs('a.i2 IS DISTINCT FROM b.i2'), 'int2 round-trips');
SELECT is_empty(differs('a.i4 IS DISTINCT FROM b.i4'), 'int4 round-trips');
SELECT is_empty(differs('a.i8 IS DISTINCT FROM b.i8'), 'int8 round-trips');
SELECT is_empty(differs('a.f4::text IS DISTINCT FROM b.f4::text'), 'float4 round-trips (NaN, ±Infinity, -0, subnormal)');
SELECT is_empty(differs('a.f8::text IS DISTINCT FROM b.f8::text'), 'float8 round-trips (NaN, ±Infinity, -0, 1e300)');
SELECT is_empty(differs('a.f4 IS DISTINCT FROM b.f4 OR a.f8 IS DISTINCT FROM b.f8'), 'floats compare equal too');
SELECT is_empty(differs('a.n::text IS DISTINCT FROM b.n::text'), 'numeric round-trips exactly (scale, NaN, ±Infinity)');
SELECT is_empty(differs('a.t IS DISTINCT FROM b.t'), 'text round-trips');
SELECT is_empty(differs('a.vc IS DISTINCT FROM b.vc'), 'varchar round-trips');
SELECT is_empty(differs('a.c::bytea IS DISTINCT FROM b.c::bytea OR a.c IS DISTINCT FROM b.c'), 'char(n) round-trips');
SELECT is_empty(differs('a.by IS DISTINCT FROM b.by'), 'bytea round-trips (all 256 byte values)');
SELECT is_empty(differs('a.u IS DISTINCT FROM b.u'), 'uuid round-trips');
SELECT is_empty(differs('a.d IS DISTINCT FROM b.d'), 'date round-trips (BC, infinity)');
SELECT is_empty(differs('a.tm IS DISTINCT FROM b.tm'), 'time round-trips (24:00:00)');
SELECT is_empty(differs('a.ts IS DISTINCT FROM b.ts'), 'timestamp round-trips (µs, -infinity)');
SELECT is_empty(differs('a.tz IS DISTINCT FROM b.tz'), 'timestamptz round-trips (other session time zone)');
SELECT is_empty(differs('a.iv IS DISTINCT FROM b.iv OR a.iv::text IS DISTINCT FROM b.iv::text'),
                'interval round-trips (fields kept, not justified)');
SELECT is_empty(differs('a.j::text IS DISTINCT FROM b.j::text'), 'json round-trips verbatim (spacing, duplicate keys)');
SELECT is_empty(differs('a.jb IS DISTINCT FROM b.jb'), 'jsonb round-trips');
SELECT is_empty(differs('a.ai IS DISTINCT FROM b.ai'), 'int[] round-trips (NULL elements, 2-D)');
SELECT is_empty(differs('a.at IS DISTINCT FROM b.at'), 'text[] round-trips (quoting, NULL vs "NULL")');
SELECT is_empty(differs('a.m IS DISTINCT FROM b.m'), 'enum round-trips');
SELECT is_empty(differs('a.p IS DISTINCT FROM b.p'), 'domain round-trips');
SELECT is_empty(differs('row(a.*)::text IS DISTINCT FROM row(b.*)::text'), 'whole rows are textually identical');

SELECT is_empty($$
  SELECT ra.pk FROM syncline.rows ra JOIN syncline.tables ta ON ta.tid = ra.tid AND ta.table_name = 'types_a'
    FULL JOIN (SELECT rb.* FROM syncline.rows rb JOIN syncline.tables tb ON tb.tid = rb.tid AND tb.table_name = 'types_b') rb
      USING (pk)
   WHERE rb.hlc IS DISTINCT FROM ra.hlc OR rb.clock IS DISTINCT FROM ra.clock
      OR rb.node IS DISTINCT FROM (SELECT ref FROM syncline.nodes WHERE node_id = '00000000-0000-4000-8000-0000000000aa')$$,
  'types_b''s metadata keeps the sent versions (stamp, clock, origin)');
SELECT is(pulled_rows('types_b'), pulled_rows('types_a'), 'pulling types_b gives back exactly the values sent');
SELECT is((syncline.apply_push(:'to_b') ->> 'skipped')::int, 8, 'applying the batch again skips every change');

-- ---------------------------------------------------------------------------
-- What a SQLite client sends. sq has every column a push must carry.
CREATE TABLE sq (id uuid PRIMARY KEY, flag bool, at timestamptz, amount numeric, ratio float8, f4 float4,
                 price numeric(10,2), small int2, cnt int4, t text, u uuid, p posint);
SELECT is(syncline.track('sq') ->> 'table', 'sq', 'sq is tracked');
CREATE FUNCTION sq_row(id text, vals jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('id', id, 'flag', null, 'at', null, 'amount', null, 'ratio', null, 'f4', null,
                            'price', null, 'small', null, 'cnt', null, 't', null, 'u', null, 'p', null) || vals $$;
CREATE FUNCTION sq_push(id text, vals jsonb, stamp text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT push1('sq', jsonb_build_object('id', id), sq_row(id, vals), stamp) $$;
CREATE FUNCTION sq_meta(key uuid) RETURNS syncline.rows LANGUAGE sql AS $$
  SELECT r.* FROM syncline.rows r JOIN syncline.tables t USING (tid)
   WHERE t.table_name = 'sq' AND r.pk = jsonb_build_array(key::text)::text $$;
CREATE FUNCTION fake_ref() RETURNS int LANGUAGE sql AS $$
  SELECT ref FROM syncline.nodes WHERE node_id = '00000000-0000-4000-8000-0000000000aa' $$;

-- A UUID key in upper case is the same row as in lower case.
SELECT is((sq_push('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"cnt": 1}', hlc(10)) ->> 'applied')::int, 1,
          'an upper-case uuid key is applied');
SELECT is((sq_push('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"cnt": 2}', hlc(20)) ->> 'applied')::int, 1,
          '... and a later change with the lower-case key too');
SELECT is((SELECT count(*) FROM sq), 1::bigint, '... to the same row');
SELECT is((SELECT cnt FROM sq WHERE id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), 2, '... which holds the later value');
SELECT is((SELECT array_agg(r.pk) FROM syncline.rows r JOIN syncline.tables t USING (tid)
             WHERE t.table_name = 'sq' AND NOT r.deleted),
          ARRAY['["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]'], '... with one live metadata row, under the canonical key');
SELECT is((SELECT r.deleted AND r.node = 0 FROM syncline.rows r JOIN syncline.tables t USING (tid)
            WHERE t.table_name = 'sq' AND r.pk = '["A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"]'), true,
          '... and a local tombstone for the key as sent, so the sender drops its copy');
SELECT is((sq_push('B0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{}', hlc(30)) ->> 'rewritten')::int, 1,
          'an upper-case uuid in the row is rewritten to its canonical form');
SELECT is((sq_meta('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')).node, 0, '... which is a new local version');

-- Integers 0/1 into bool: stored as false/true, no rewrite (a bool reads back as 0/1).
SELECT is(sq_push('00000000-0000-4000-8000-000000000001', '{"flag": 0}', hlc(40)) - 'source' - 'cursor',
          '{"applied": 1, "skipped": 0, "rewritten": 0}', 'integer 0 into bool is stored as is');
SELECT is(sq_push('00000000-0000-4000-8000-000000000002', '{"flag": 1}', hlc(40)) - 'source' - 'cursor',
          '{"applied": 1, "skipped": 0, "rewritten": 0}', 'integer 1 into bool is stored as is');
SELECT results_eq($$SELECT flag FROM sq WHERE id IN ('00000000-0000-4000-8000-000000000001',
                                                     '00000000-0000-4000-8000-000000000002') ORDER BY id$$,
                  ARRAY[false, true], '... as false and true');
SELECT is((sq_meta('00000000-0000-4000-8000-000000000002')).node, fake_ref(), '... keeping the sender''s version');

-- ISO-8601 text into timestamptz; integers into numeric and float8.
SELECT lives_ok(format($$SELECT sq_push('00000000-0000-4000-8000-000000000003',
                  '{"at": "2026-11-23T05:11:30.5Z", "amount": 9223372036854775807, "ratio": 3}', %L)$$, hlc(50)),
                'ISO-8601 text, integers into numeric and float8 are accepted');
SELECT is((SELECT at FROM sq WHERE id = '00000000-0000-4000-8000-000000000003'),
          '2026-11-23 05:11:30.5+00'::timestamptz, 'ISO-8601 text lands as the same instant in timestamptz');
SELECT is((SELECT amount FROM sq WHERE id = '00000000-0000-4000-8000-000000000003'),
          9223372036854775807::numeric, 'an integer lands exactly in numeric');
SELECT is((SELECT ratio FROM sq WHERE id = '00000000-0000-4000-8000-000000000003'), 3::float8,
          'an integer lands in float8');

-- A float8 takes any double: no rewrite.
SELECT is((sq_push('00000000-0000-4000-8000-000000000004', '{"ratio": 0.1}', hlc(60)) ->> 'rewritten')::int, 0,
          'a real into float8 is stored as sent');
SELECT is((sq_meta('00000000-0000-4000-8000-000000000004')).node, fake_ref(), '... keeping the sender''s version');

-- A real into float4 loses precision: the stored form becomes a new local
-- version, newer than the one sent, and is what everyone pulls.
SELECT hlc(70) AS sent \gset
SELECT sq_push('00000000-0000-4000-8000-000000000005', '{"f4": 0.1}', :'sent') AS summary \gset
SELECT is((:'summary'::jsonb ->> 'applied')::int, 1, 'a real into float4 is applied');
SELECT is((:'summary'::jsonb ->> 'rewritten')::int, 1, '... and reported rewritten');
SELECT is((SELECT f4 FROM sq WHERE id = '00000000-0000-4000-8000-000000000005'), 0.1::float4, '... stored as float4');
SELECT is((sq_meta('00000000-0000-4000-8000-000000000005')).node, 0, '... as a local version (node 0)');
SELECT cmp_ok((sq_meta('00000000-0000-4000-8000-000000000005')).hlc, '>', hlc_int(:'sent'), '... stamped after the one sent');
SELECT is((sq_meta('00000000-0000-4000-8000-000000000005')).clock, 2::bigint, '... with the clock moved on');
SELECT is((SELECT c - 'table' - 'op' - 'pk' - 'clock' FROM jsonb_array_elements(syncline.pull_since(NULL, 1000)::jsonb -> 'changes') c
            WHERE c ->> 'table' = 'sq' AND c -> 'pk' ->> 'id' = '00000000-0000-4000-8000-000000000005'),
          jsonb_build_object('row', sq_row('00000000-0000-4000-8000-000000000005', jsonb_build_object('f4', 0.10000000149011612)),
                             'hlc', lpad(to_hex((sq_meta('00000000-0000-4000-8000-000000000005')).hlc), 16, '0'),
                             'node', syncline.node_id()),
          'a pull delivers the canonical value as this node''s version');
SELECT is((sq_push('00000000-0000-4000-8000-000000000005', '{"f4": 0.1}', :'sent') ->> 'skipped')::int, 1,
          'the original change, sent again, loses to the canonical version');

-- numeric(10,2) rounds: rewritten likewise.
SELECT hlc(80) AS sent \gset
SELECT is((sq_push('00000000-0000-4000-8000-000000000006', '{"price": "1.005"}', :'sent') ->> 'rewritten')::int, 1,
          'text 1.005 into numeric(10,2) is reported rewritten');
SELECT is((SELECT price::text FROM sq WHERE id = '00000000-0000-4000-8000-000000000006'), '1.01', '... stored rounded');
SELECT is((sq_meta('00000000-0000-4000-8000-000000000006')).node, 0, '... as a local version (node 0)');
SELECT cmp_ok((sq_meta('00000000-0000-4000-8000-000000000006')).hlc, '>', hlc_int(:'sent'), '... stamped after the one sent');

-- ---------------------------------------------------------------------------
-- Values that do not fit: the change is refused on its own (a conflict,
-- docs/protocol.md, "Conflicts"), naming the change, with syncline's
-- SQLSTATE or PostgreSQL's own; the rest of its batch applies. Nothing of it
-- is written; it is logged, and this server answers with its own state of
-- the row (a tombstone: it has none) one stamp above the refused one. The
-- device is told to forget its copy: the server could not read what it sent.

-- A summary that refused change n (of sq, key id) and nothing else.
CREATE FUNCTION refused_summary(n int, id text, stamp text, sqlstate text, reason text, applied int DEFAULT 0)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('applied', applied, 'skipped', 0, 'rewritten', 0, 'refused', jsonb_build_array(
           jsonb_build_object('change', n, 'table', 'sq', 'pk', jsonb_build_object('id', id), 'hlc', stamp,
                              'sqlstate', sqlstate, 'reason', format('change %s (table "sq"): %s', n, reason),
                              'forget', true))) $$;
SELECT (SELECT string_agg(s::text, ',' ORDER BY id) FROM sq s) AS sq_before \gset
CREATE TEMP TABLE sq_meta_before AS
  SELECT r.pk, r.clock, r.hlc, r.node, r.deleted FROM syncline.rows r JOIN syncline.tables t USING (tid)
   WHERE t.table_name = 'sq';
SELECT hlc(90) AS s \gset
SELECT is(sq_push('00000000-0000-4000-8000-0000000000e1', '{"cnt": "abc"}', :'s') - 'source' - 'cursor',
          refused_summary(0, '00000000-0000-4000-8000-0000000000e1', :'s', '42804', 'column "cnt" expects integer, got text'),
          'text into an integer column is refused on its own, naming the change (42804)');
SELECT is(sq_push('00000000-0000-4000-8000-0000000000e2', '{"t": {"blob": "AAE="}}', :'s') - 'source' - 'cursor',
          refused_summary(0, '00000000-0000-4000-8000-0000000000e2', :'s', '42804', 'column "t" expects text, got blob'),
          'a blob into a text column is refused (42804)');
SELECT is(sq_push('00000000-0000-4000-8000-0000000000e3', '{"u": "not-a-uuid"}', :'s') - 'source' - 'cursor',
          refused_summary(0, '00000000-0000-4000-8000-0000000000e3', :'s', '22P02',
                          'invalid input syntax for type uuid: "not-a-uuid"'),
          'a malformed uuid is refused with PostgreSQL''s own SQLSTATE and message (22P02)');
SELECT is(sq_push('00000000-0000-4000-8000-0000000000e4', '{"p": 0}', :'s') - 'source' - 'cursor',
          refused_summary(0, '00000000-0000-4000-8000-0000000000e4', :'s', '23514',
                          'value for domain public.posint violates check constraint "posint_check"'),
          'a value violating a domain''s CHECK is refused with the CHECK''s SQLSTATE (23514)');
SELECT is(sq_push('00000000-0000-4000-8000-0000000000e5', '{"small": 70000}', :'s') - 'source' - 'cursor',
          refused_summary(0, '00000000-0000-4000-8000-0000000000e5', :'s', '42804',
                          'column "small": 70000 is out of range for its type'),
          '70000 into int2 is out of range: refused');
SELECT is(sq_push('00000000-0000-4000-8000-0000000000e6', '{"f4": {"real": "1e300"}}', :'s') - 'source' - 'cursor',
          refused_summary(0, '00000000-0000-4000-8000-0000000000e6', :'s', '42804',
                          'column "f4": 1e+300 is out of range for real'),
          '1e300 into float4 is out of range: refused');
SELECT is(sq_push('00000000-0000-4000-8000-0000000000e9', '{"amount": "12,5"}', :'s') - 'source' - 'cursor',
          refused_summary(0, '00000000-0000-4000-8000-0000000000e9', :'s', '22P02',
                          'invalid input syntax for type numeric: "12,5"'),
          'malformed text into numeric is refused (22P02)');
-- (Text with U+0000 never reaches apply_push: jsonb itself refuses "\u0000".)
SELECT is((SELECT string_agg(s::text, ',' ORDER BY id) FROM sq s), :'sq_before', 'the refused changes wrote nothing to sq');
SELECT set_eq(format($$SELECT pk, clock, node, deleted, hlc <> %s FROM (
                         SELECT r.pk, r.clock, r.hlc, r.node, r.deleted FROM syncline.rows r JOIN syncline.tables t USING (tid)
                          WHERE t.table_name = 'sq' EXCEPT SELECT * FROM sq_meta_before) changed$$, hlc_int(:'s') + 1),
              $$SELECT jsonb_build_array(c.pk ->> 'id')::text AS pk, 2::bigint AS clock, 0 AS node, true AS deleted,
                       true AS above FROM syncline.conflicts c WHERE c.table_name = 'sq'$$,
              '... and the metadata only the answers: a tombstone of this server, at its own clock rather than one '
              'stamp above (the device forgets a value this server could not read)');
SELECT results_eq($$SELECT node_id::uuid, role_name, table_name, pk ->> 'id', op, "row", hlc, origin::uuid, scope, answer,
                           forget
                      FROM syncline.conflicts WHERE table_name = 'sq' ORDER BY id$$,
                  format($$SELECT %L::uuid, %L::text, 'sq'::text, id, 'upsert'::text, sq_row(id, vals), %L::text,
                                  %L::uuid, NULL::jsonb, 'restamped'::text, true
                             FROM (VALUES (1, '00000000-0000-4000-8000-0000000000e1', '{"cnt": "abc"}'::jsonb),
                                          (2, '00000000-0000-4000-8000-0000000000e2', '{"t": {"blob": "AAE="}}'),
                                          (3, '00000000-0000-4000-8000-0000000000e3', '{"u": "not-a-uuid"}'),
                                          (4, '00000000-0000-4000-8000-0000000000e4', '{"p": 0}'),
                                          (5, '00000000-0000-4000-8000-0000000000e5', '{"small": 70000}'),
                                          (6, '00000000-0000-4000-8000-0000000000e6', '{"f4": {"real": "1.0e+300"}}'),
                                          (7, '00000000-0000-4000-8000-0000000000e9', '{"amount": "12,5"}')) v(n, id, vals)
                            ORDER BY n$$, :fake, current_user, :'s', :fake),
                  'each refusal is logged: the device, its role, the change as sent, the answer, forget');
SELECT results_eq($$SELECT sqlstate, reason FROM syncline.conflicts WHERE table_name = 'sq' ORDER BY id$$,
                  $$VALUES ('42804', 'change 0 (table "sq"): column "cnt" expects integer, got text'),
                           ('42804', 'change 0 (table "sq"): column "t" expects text, got blob'),
                           ('22P02', 'change 0 (table "sq"): invalid input syntax for type uuid: "not-a-uuid"'),
                           ('23514', 'change 0 (table "sq"): value for domain public.posint violates check constraint "posint_check"'),
                           ('42804', 'change 0 (table "sq"): column "small": 70000 is out of range for its type'),
                           ('42804', 'change 0 (table "sq"): column "f4": 1e+300 is out of range for real'),
                           ('22P02', 'change 0 (table "sq"): invalid input syntax for type numeric: "12,5"')$$,
                  '... with the SQLSTATE and reason of the summary');
-- One bad change among good ones: only it is refused.
SELECT hlc(90) AS s \gset
SELECT is(syncline.apply_push(jsonb_build_object('format', 1, 'source', :fake, 'changes', jsonb_build_array(
            jsonb_build_object('table', 'sq', 'op', 'upsert', 'pk', '{"id": "00000000-0000-4000-8000-0000000000e7"}'::jsonb,
              'row', sq_row('00000000-0000-4000-8000-0000000000e7'), 'clock', 1, 'hlc', :'s', 'node', :fake),
            jsonb_build_object('table', 'sq', 'op', 'upsert', 'pk', '{"id": "00000000-0000-4000-8000-0000000000e8"}'::jsonb,
              'row', sq_row('00000000-0000-4000-8000-0000000000e8', '{"cnt": 1.5}'), 'clock', 1, 'hlc', :'s', 'node', :fake))))
            - 'source' - 'cursor',
          refused_summary(1, '00000000-0000-4000-8000-0000000000e8', :'s', '42804', 'column "cnt" expects integer, got real', 1),
          'a batch with one bad change: the summary names the index of the bad one, the other applies');
SELECT is((SELECT array_agg(id ORDER BY id) FROM sq WHERE id::text LIKE '%0e_'),
          ARRAY['00000000-0000-4000-8000-0000000000e7'::uuid], '... so sq holds the good row only');
SELECT is(((sq_meta('00000000-0000-4000-8000-0000000000e7')).node, (sq_meta('00000000-0000-4000-8000-0000000000e8')).node,
           (sq_meta('00000000-0000-4000-8000-0000000000e8')).deleted, (sq_meta('00000000-0000-4000-8000-0000000000e8')).hlc),
          (fake_ref(), 0, true, 1::bigint),
          '... with the sender''s version, and a tombstone of this server at the least stamp (the device forgets a '
          'value this server could not read; the server never had the row)');

-- ---------------------------------------------------------------------------
-- apply_push takes jsonb, which stores numbers as numeric: reals that need an
-- exponent, and -0.0, travel tagged (protocol.md, "Values"), and tagged they
-- keep their exact value.
SELECT lives_ok(format($$SELECT sq_push('00000000-0000-4000-8000-0000000000f1', '{"ratio": {"real": "1.0e+300"}}', %L)$$, hlc(95)),
                'a tagged real 1.0e+300 into float8 is accepted');
SELECT is((SELECT ratio FROM sq WHERE id = '00000000-0000-4000-8000-0000000000f1'), 1e300::float8, '... and stored');
SELECT sq_push('00000000-0000-4000-8000-0000000000f2', '{"ratio": {"real": "-0.0"}}', hlc(95)) AS summary \gset
SELECT is((SELECT ratio::text FROM sq WHERE id = '00000000-0000-4000-8000-0000000000f2'), '-0',
          'a tagged real -0.0 into float8 keeps its sign');

-- ---------------------------------------------------------------------------
-- Keys of types whose text depends on session settings: the capture trigger
-- must store the same canonical key as apply_push.
CREATE TABLE events (at timestamptz PRIMARY KEY, what text);
CREATE TABLE days (d date PRIMARY KEY, what text);
SELECT is(syncline.track('events') ->> 'table', 'events', 'events is tracked');
SELECT is(syncline.track('days') ->> 'table', 'days', 'days is tracked');
INSERT INTO events VALUES ('2024-01-01 12:00:00+00', 'local');
INSERT INTO days VALUES ('2024-11-05', 'local');  -- DateStyle DMY: 05/11/2024
SELECT is((SELECT r.pk FROM syncline.rows r JOIN syncline.tables t USING (tid) WHERE t.table_name = 'events'),
          '["2024-01-01 12:00:00+00"]', 'a timestamptz key is captured in canonical form whatever the session settings');
SELECT push1('events', '{"at": "2024-01-01 12:00:00+00"}', '{"at": "2024-01-01 12:00:00+00", "what": "remote"}',
             hlc(100)) AS summary \gset
SELECT is((SELECT count(*) FROM syncline.rows r JOIN syncline.tables t USING (tid) WHERE t.table_name = 'events'),
          1::bigint, '... so a remote change to the same row finds the same metadata row');
SELECT lives_ok('SELECT syncline.pull_since(NULL, 1000)', 'a date key captured under DateStyle DMY can be pulled');

SELECT * FROM finish();
