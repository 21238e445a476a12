-- Declaratively partitioned tables (docs/postgres.md, "Partitioned tables"):
-- capture of writes through the parent and into partitions at every level,
-- partitions created, attached, detached, truncated and dropped later,
-- cross-partition updates, pulls and applies through the parent.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(45);

CREATE TABLE events (id int, region text, org_id int NOT NULL, title text, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
-- A second level: a partitioned partition and its leaf.
CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us') PARTITION BY RANGE (id);
CREATE TABLE events_us_low PARTITION OF events_us FOR VALUES FROM (0) TO (1000);
INSERT INTO events VALUES (1, 'eu', 7, 'before'), (2, 'us', 7, 'before');

-- The metadata of a row of events: clock:deleted, or 'none'.
CREATE FUNCTION meta(key text) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce((SELECT r.clock || ':' || r.deleted FROM syncline.rows r JOIN syncline.tables t USING (tid)
                    WHERE t.table_name = 'events' AND r.pk = key), 'none') $$;
CREATE FUNCTION capture_triggers(rel regclass) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM pg_trigger WHERE tgrelid = rel AND tgname LIKE 'syncline_%' $$;

SELECT is(syncline.track('events', '{"scope": "org_id"}') ->> 'backfilled', '2',
          'track a partitioned table: the rows of its partitions are backfilled');
SELECT is(capture_triggers('events') + capture_triggers('events_eu') + capture_triggers('events_us') +
          capture_triggers('events_us_low'), 16::bigint, 'capture triggers on the parent and every partition, all levels');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events_us_low'::regclass AND tgenabled = 'A'), 4::bigint,
          'a partition''s capture triggers fire ALWAYS');
SELECT throws_like($$SELECT syncline.track('events_eu')$$, '%events_eu is a partition of public.events%',
                   'a partition alone is refused');
SELECT throws_like($$SELECT syncline.track('events_us')$$, '%is a partition of public.events%',
                   'an intermediate partition alone is refused');

-- Inheritance (not declarative partitioning) stays refused.
CREATE TABLE base (id int PRIMARY KEY);
CREATE TABLE child (extra text) INHERITS (base);
ALTER TABLE child ADD PRIMARY KEY (id);
SELECT throws_like($$SELECT syncline.track('base')$$, '%base uses table inheritance%', 'an inheritance parent is refused');
SELECT throws_like($$SELECT syncline.track('child')$$, '%child uses table inheritance%', 'an inheritance child is refused');

-- Writes through the parent and directly into partitions.
INSERT INTO events VALUES (3, 'eu', 7, 'through the parent');
SELECT is(meta('[3,"eu"]'), '1:false', 'an insert through the parent is captured');
INSERT INTO events_eu VALUES (4, 'eu', 7, 'into a partition');
SELECT is(meta('[4,"eu"]'), '1:false', 'an insert into a partition is captured');
INSERT INTO events_us_low VALUES (5, 'us', 7, 'into a second-level partition');
SELECT is(meta('[5,"us"]'), '1:false', 'an insert into a second-level partition is captured');
UPDATE events_us_low SET title = 'updated' WHERE id = 5;
SELECT is(meta('[5,"us"]'), '2:false', 'an update of a partition is captured');
UPDATE events SET title = 'updated' WHERE id = 5;
SELECT is(meta('[5,"us"]'), '3:false', 'an update through the parent is captured once');
DELETE FROM events_eu WHERE id = 4;
SELECT is(meta('[4,"eu"]'), '2:true', 'a delete from a partition leaves a tombstone');
SELECT is((SELECT scope FROM syncline.rows WHERE pk = '[5,"us"]'), '7', 'a partition''s rows keep the parent''s scope');
SELECT is((SELECT count(DISTINCT tid) FROM syncline.rows), 1::bigint, 'every partition writes under the parent''s tid');

-- A partition created later.
CREATE TABLE events_asia PARTITION OF events FOR VALUES IN ('asia');
SELECT is(capture_triggers('events_asia'), 4::bigint, 'a partition created later gets capture triggers');
INSERT INTO events_asia VALUES (6, 'asia', 7, 'new partition');
SELECT is(meta('[6,"asia"]'), '1:false', 'writes into a partition created later are captured');

-- A partition created later below a partitioned partition.
CREATE TABLE events_us_high PARTITION OF events_us FOR VALUES FROM (1000) TO (2000);
INSERT INTO events_us_high VALUES (1001, 'us', 7, 'second level, later');
SELECT is(meta('[1001,"us"]'), '1:false', 'writes into a second-level partition created later are captured');

-- A table with rows attached later, its columns in another order.
CREATE TABLE events_sa (title text, org_id int NOT NULL, region text NOT NULL, id int NOT NULL);
INSERT INTO events_sa VALUES ('brought in', 7, 'sa', 7);
ALTER TABLE events ATTACH PARTITION events_sa FOR VALUES IN ('sa');
SELECT is(capture_triggers('events_sa'), 4::bigint, 'an attached partition gets capture triggers');
SELECT is(meta('[7,"sa"]'), '1:false', 'the rows an attached partition brings in are backfilled');
INSERT INTO events_sa (id, region, org_id, title) VALUES (8, 'sa', 7, 'after attach');
SELECT is(meta('[8,"sa"]'), '1:false', 'writes into an attached partition are captured, by column name');
SELECT is((SELECT scope FROM syncline.rows WHERE pk = '[8,"sa"]'), '7', '... with its scope');

-- Detach: the table leaves the tracked table, its rows become tombstones.
ALTER TABLE events DETACH PARTITION events_sa;
SELECT is(capture_triggers('events_sa'), 0::bigint, 'a detached partition loses its capture triggers');
SELECT is(meta('[7,"sa"]') || ' ' || meta('[8,"sa"]'), '2:true 2:true', 'the rows of a detached partition are tombstones');
INSERT INTO events_sa VALUES ('not tracked', 7, 'sa', 9);
SELECT is(meta('[9,"sa"]'), 'none', 'writes into a detached table are not captured');
ALTER TABLE events ATTACH PARTITION events_sa FOR VALUES IN ('sa');
SELECT is(meta('[7,"sa"]') || ' ' || meta('[9,"sa"]'), '3:false 1:false', 'attached again: its rows are live again');

-- A table tracked on its own cannot become a partition of a tracked one.
CREATE TABLE events_oc (id int, region text, org_id int NOT NULL, title text, PRIMARY KEY (id, region));
SELECT syncline.track('events_oc') IS NOT NULL AS tracked \gset
SELECT throws_like($$ALTER TABLE events ATTACH PARTITION events_oc FOR VALUES IN ('oc')$$, '%tracked on its own%',
                   'attaching a table tracked on its own is refused');

-- An update that moves a row to another partition, through the parent: the
-- parent's transition tables hold it as an update (old row, new row).
UPDATE events SET region = 'us' WHERE id = 3;
SELECT is(meta('[3,"us"]'), '1:false', 'a row moved across partitions has one live version under its new key');
SELECT is(meta('[3,"eu"]'), '2:true', '... and a tombstone under its old key');
SELECT is((SELECT count(*) FROM syncline.rows WHERE pk LIKE '[3,%' AND NOT deleted), 1::bigint,
          '... one live version only');

-- TRUNCATE of one partition: its rows only.
TRUNCATE events_eu;
SELECT is(meta('[1,"eu"]'), '2:true', 'truncating a partition tombstones its rows');
SELECT is(meta('[2,"us"]') || ' ' || meta('[6,"asia"]'), '1:false 1:false', '... and no other partition''s');

-- DROP of a partition: its rows left the table.
DROP TABLE events_asia;
SELECT is(meta('[6,"asia"]'), '2:true', 'dropping a partition tombstones its rows');
SELECT is(meta('[2,"us"]'), '1:false', '... and no other partition''s');

-- Renaming the parent: partitions capture under the new name.
ALTER TABLE events RENAME TO happenings;
INSERT INTO events_eu VALUES (10, 'eu', 7, 'after rename');
SELECT is((SELECT count(*) FROM syncline.rows r JOIN syncline.tables t USING (tid)
            WHERE t.table_name = 'happenings' AND r.pk = '[10,"eu"]'), 1::bigint, 'partitions follow a rename of the parent');
ALTER TABLE happenings RENAME TO events;

-- A pull reads through the parent: its live rows are the parent's rows.
SELECT is((SELECT jsonb_agg(c -> 'row' ORDER BY (c -> 'row' ->> 'id')::int)
             FROM jsonb_array_elements(syncline.pull_since(NULL, 1000)::jsonb -> 'changes') c
            WHERE c ->> 'op' = 'upsert'),
          (SELECT jsonb_agg(to_jsonb(e) ORDER BY id) FROM events e), 'a pull carries exactly the parent''s rows');

-- apply_push writes through the parent; PostgreSQL routes the rows.
\set remote '\'0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11\''
CREATE FUNCTION hlc(offset_ms bigint) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex(((extract(epoch FROM clock_timestamp()) * 1000)::bigint + offset_ms) << 16), 16, '0') $$;
SELECT is((syncline.apply_push(jsonb_build_object('format', 1, 'source', :remote, 'changes', jsonb_build_array(
            jsonb_build_object('table', 'events', 'op', 'upsert', 'pk', '{"id": 11, "region": "eu"}'::jsonb,
                               'row', '{"id": 11, "region": "eu", "org_id": 7, "title": "pushed"}'::jsonb,
                               'clock', 1, 'hlc', hlc(0), 'node', :remote),
            jsonb_build_object('table', 'events', 'op', 'delete', 'pk', '{"id": 2, "region": "us"}'::jsonb,
                               'clock', 5, 'hlc', hlc(0), 'node', :remote)))) ->> 'applied')::int, 2,
          'apply_push into the parent');
SELECT is((SELECT title FROM events_eu WHERE id = 11), 'pushed', 'the pushed row is routed to its partition');
SELECT is((SELECT clock || ':' || deleted || ':' || (node <> 0) FROM syncline.rows WHERE pk = '[11,"eu"]'),
          '1:false:true', '... keeping the pushing device''s version, not captured as local');
SELECT is(meta('[2,"us"]'), '5:true', 'the pushed delete removed the row from its partition');

-- TRUNCATE of the parent: every row.
TRUNCATE events;
SELECT is((SELECT count(*) FROM syncline.rows WHERE NOT deleted), 0::bigint, 'truncating the parent tombstones every row');
SELECT is(meta('[11,"eu"]'), '2:true', '... with one new version each (the partitions'' TRUNCATE triggers fire too)');

-- An owner without superuser rights: the event triggers follow its DDL too.
CREATE ROLE partitions_owner NOLOGIN;
GRANT CREATE ON SCHEMA public TO partitions_owner;
SET ROLE partitions_owner;
CREATE TABLE owned (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE owned_low PARTITION OF owned FOR VALUES FROM (0) TO (10);
SELECT syncline.track('owned') IS NOT NULL AS tracked \gset
CREATE TABLE owned_high PARTITION OF owned FOR VALUES FROM (10) TO (20);
INSERT INTO owned_high VALUES (11, 'by its owner');
RESET ROLE;
SELECT is((SELECT r.clock || ':' || r.deleted FROM syncline.rows r JOIN syncline.tables t USING (tid)
            WHERE t.table_name = 'owned' AND r.pk = '[11]'), '1:false',
          'a partition its owner creates later is captured');

SELECT ok(syncline.untrack('events'), 'untrack');
SELECT is(capture_triggers('events') + capture_triggers('events_eu') + capture_triggers('events_us_low') +
          capture_triggers('events_sa'), 0::bigint, 'untrack drops the capture triggers of every partition');

SELECT * FROM finish();
