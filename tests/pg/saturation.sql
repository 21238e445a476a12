-- Stamps and change counters at the top of their range saturate
-- (docs/protocol.md, "Stamps"): a row whose version holds the greatest stamp
-- (7fffffffffffffff) and clock (2^63 - 1) still takes every local write, and
-- the write is captured at the greatest stamp and clock.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(17);

CREATE TABLE tops (id text PRIMARY KEY, v text);
SELECT syncline.track('tops');
INSERT INTO tops SELECT 't' || g, 'a' FROM generate_series(1, 5) g;
-- Puts a row's version at the top (as the extension's owner, who may write
-- the metadata).
CREATE FUNCTION top(key text) RETURNS void LANGUAGE sql AS $$
  UPDATE syncline.rows SET hlc = 9223372036854775807, clock = 9223372036854775807 WHERE pk = '["' || key || '"]' $$;
CREATE FUNCTION version(key text) RETURNS text LANGUAGE sql AS $$
  SELECT r.clock || ' ' || lpad(to_hex(r.hlc), 16, '0') || ' ' || r.node || ' ' || r.deleted
    FROM syncline.rows r WHERE pk = '["' || key || '"]' $$;

SELECT top('t1');
SELECT lives_ok($$UPDATE tops SET v = 'b' WHERE id = 't1'$$, 'an UPDATE of a row at the greatest stamp and clock');
SELECT is(version('t1'), '9223372036854775807 7fffffffffffffff 0 false', '... is captured at the greatest stamp and clock');
SELECT is((SELECT (c ->> 'hlc') || ' ' || (c ->> 'clock') || ' ' || (c -> 'row' ->> 'v')
             FROM jsonb_array_elements(syncline.pull_since(NULL, 100)::jsonb -> 'changes') c WHERE c -> 'pk' ->> 'id' = 't1'),
          '7fffffffffffffff 9223372036854775807 b', '... and pulled so');

SELECT top('t2');
SELECT lives_ok($$DELETE FROM tops WHERE id = 't2'$$, 'a DELETE');
SELECT is(version('t2'), '9223372036854775807 7fffffffffffffff 0 true', '... is captured as a tombstone there');
SELECT lives_ok($$INSERT INTO tops VALUES ('t2', 'back')$$, 'an INSERT over that tombstone');
SELECT is(version('t2'), '9223372036854775807 7fffffffffffffff 0 false', '... revives the row there');

-- Statements of several rows write their versions as a set.
SELECT top('t3'), top('t4');
SELECT lives_ok($$UPDATE tops SET v = 'c' WHERE id IN ('t3', 't4')$$, 'an UPDATE of several rows');
SELECT is(version('t3') || ', ' || version('t4'),
          '9223372036854775807 7fffffffffffffff 0 false, 9223372036854775807 7fffffffffffffff 0 false',
          '... is captured there');
SELECT top('t3'), top('t4');
SELECT lives_ok($$DELETE FROM tops WHERE id IN ('t3', 't4')$$, 'a DELETE of several rows');
SELECT is(version('t3') || ', ' || version('t4'),
          '9223372036854775807 7fffffffffffffff 0 true, 9223372036854775807 7fffffffffffffff 0 true',
          '... is captured there');

SELECT top('t5');
SELECT lives_ok($$TRUNCATE tops$$, 'a TRUNCATE');
SELECT is(version('t5'), '9223372036854775807 7fffffffffffffff 0 true', '... is captured there');

-- A row written without capture over a tombstone at the top: tracking the
-- table again makes it a new local version.
SET session_replication_role = replica;
INSERT INTO tops VALUES ('t5', 'uncaptured');
RESET session_replication_role;
SELECT top('t5');
SELECT lives_ok($$SELECT syncline.track('tops')$$, 'tracking again over a tombstone at the top');
SELECT is(version('t5'), '9223372036854775807 7fffffffffffffff 0 false', '... revives the row there');

-- The node's clock, at the top now, stays there.
SELECT lives_ok($$INSERT INTO tops VALUES ('t6', 'new')$$, 'a new row on a node whose clock is at the top');
SELECT is(version('t6'), '1 7fffffffffffffff 0 false', '... is stamped at the top');

SELECT * FROM finish();
