-- Pages capped in bytes on PostgreSQL: pull_since stops a page before the
-- change that would take it past its byte cap (16 MiB, or the "max_bytes"
-- option), the next page starts at that change, a row larger than the cap
-- travels alone, and a row larger than any batch (64 MiB) is an error
-- naming it.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(19);

CREATE TABLE docs (id text PRIMARY KEY, body text);
SELECT syncline.track('docs');
CREATE FUNCTION add(first int, last int, bytes int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO docs SELECT 'd' || g, repeat('x', bytes) FROM generate_series(first, last) g $$;

-- Every page from a cursor to the end, with a byte cap per page.
CREATE FUNCTION pages(after text, caps int[], lim int DEFAULT 1000)
    RETURNS TABLE (n int, bytes int, ids text[], more boolean, cursor text) LANGUAGE plpgsql AS $$
DECLARE
  page text;
BEGIN
  n := 0;
  cursor := after;
  LOOP
    page := syncline.pull_since(cursor, lim,
      CASE WHEN caps IS NULL THEN '{}' ELSE jsonb_build_object('max_bytes', caps[1 + n % cardinality(caps)]) END);
    bytes := octet_length(page);
    ids := ARRAY(SELECT c -> 'pk' ->> 'id' FROM jsonb_array_elements(page::jsonb -> 'changes') c);
    more := (page::jsonb ->> 'has_more')::boolean;
    cursor := page::jsonb ->> 'cursor';
    RETURN NEXT;
    n := n + 1;
    EXIT WHEN NOT more;
  END LOOP;
END $$;

-- Many rows: each page stops at its cap; together they deliver every row
-- once, in order. The cap changes from page to page: it is not part of the
-- cursor's filter.
SELECT add(0, 99, 1000);  -- about 1100 bytes a change
CREATE TABLE walk AS SELECT * FROM pages(NULL, ARRAY[10000, 5000]);
SELECT cmp_ok((SELECT count(*) FROM walk), '>', 10::bigint, 'a pull of 100 rows of 1 kB in pages of 10 or 5 kB');
SELECT is((SELECT count(*) FROM walk WHERE bytes > CASE WHEN n % 2 = 0 THEN 10000 ELSE 5000 END), 0::bigint,
          'no page is larger than its cap');
-- One more change (and the room kept for the longest cursor) would not have fitted.
SELECT is((SELECT count(*) FROM walk WHERE more AND bytes + 1200 + 320 <= CASE WHEN n % 2 = 0 THEN 10000 ELSE 5000 END),
          0::bigint, 'no page stops early');
SELECT is((SELECT count(*) FROM walk WHERE more), (SELECT count(*) - 1 FROM walk), 'has_more until the last page');
SELECT is((SELECT array_agg(id ORDER BY n, ord) FROM walk, unnest(ids) WITH ORDINALITY AS u(id, ord)),
          (SELECT array_agg('d' || g ORDER BY g) FROM generate_series(0, 99) g), 'every row once, in order');
SELECT is((SELECT ids FROM pages((SELECT cursor FROM walk ORDER BY n DESC LIMIT 1), NULL)), '{}'::text[],
          'nothing after the last cursor');
SELECT is(jsonb_array_length(syncline.pull_since(NULL, 1000)::jsonb -> 'changes'), 100,
          'with the default cap, 100 changes of 1 kB make one page');

-- The default cap: 16 MiB.
TRUNCATE walk;
SELECT syncline.pull_since(NULL, 1000) AS start \gset
SELECT add(100, 119, 1 << 20);
INSERT INTO walk SELECT * FROM pages(:'start' ::jsonb ->> 'cursor', NULL);
SELECT is((SELECT cardinality(ids) FROM walk WHERE n = 0), 15, 'the default cap holds 15 changes of 1 MiB');
SELECT cmp_ok((SELECT bytes FROM walk WHERE n = 0), '<=', 16 << 20, '... in at most 16 MiB');
SELECT is((SELECT ids FROM walk WHERE n = 1), ARRAY['d115', 'd116', 'd117', 'd118', 'd119'], 'the next page goes on');

-- A row larger than the cap travels alone.
TRUNCATE walk;
DELETE FROM docs WHERE id LIKE 'd1__';
SELECT syncline.pull_since(:'start' ::jsonb ->> 'cursor', 1000) AS start \gset
SELECT add(200, 201, 10), add(202, 202, 50000), add(203, 204, 10);
INSERT INTO walk SELECT * FROM pages(:'start' ::jsonb ->> 'cursor', ARRAY[2000]);
SELECT is((SELECT array_agg(ids::text ORDER BY n) FROM walk WHERE ids && ARRAY['d200', 'd202', 'd204']),
          ARRAY['{d200,d201}', '{d202}', '{d203,d204}'], 'a row larger than the cap has a page of its own');
SELECT cmp_ok((SELECT bytes FROM walk WHERE ids = ARRAY['d202']), '>', 50000, '... larger than the cap');
SELECT is((SELECT more FROM walk WHERE ids = ARRAY['d202']), true, '... and more follows');

-- A row larger than any batch: an error naming it (SQLSTATE 54000,
-- program_limit_exceeded); the rows before it still sync.
SELECT syncline.pull_since(:'start' ::jsonb ->> 'cursor', 1000) AS start \gset
SELECT add(300, 301, 10);
INSERT INTO docs VALUES ('huge', repeat('x', 65 << 20));
SELECT add(302, 302, 10);
SELECT syncline.pull_since(:'start' ::jsonb ->> 'cursor', 1000) AS before_huge \gset
SELECT is(ARRAY(SELECT c -> 'pk' ->> 'id' FROM jsonb_array_elements(:'before_huge'::jsonb -> 'changes') c),
          ARRAY['d300', 'd301'], 'the rows before a huge one make a page');
SELECT is((:'before_huge'::jsonb ->> 'has_more')::boolean, true, '... which says more remain');
SELECT throws_like(format('SELECT syncline.pull_since(%L, 1000)', :'before_huge'::jsonb ->> 'cursor'),
                   '%table "docs", row ["huge"]: its change takes % bytes, more than a batch may hold (64 MiB)',
                   'a row larger than any batch is an error naming it');
SELECT throws_ok(format('SELECT syncline.pull_since(%L, 1000)', :'before_huge'::jsonb ->> 'cursor'), '54000', NULL,
                 '... program_limit_exceeded');
UPDATE docs SET body = 'small' WHERE id = 'huge';
SELECT is(ARRAY(SELECT c -> 'pk' ->> 'id' FROM jsonb_array_elements(
            syncline.pull_since(:'before_huge'::jsonb ->> 'cursor', 1000)::jsonb -> 'changes') c),
          ARRAY['d302', 'huge'], 'made smaller, it syncs');

-- Bad caps.
SELECT throws_like($$SELECT syncline.pull_since(NULL, 10, '{"max_bytes": 0}')$$,
                   '%"max_bytes" must be an integer from 1 to 67108864%', 'max_bytes below 1');

SELECT * FROM finish();
