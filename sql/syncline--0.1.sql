-- syncline 0.1: install script. Released: never edited again. Changes go
-- into syncline--0.1--0.2.sql and onwards; the install script of a later
-- version is this one followed by the upgrade scripts (pg_extension/Makefile).
\echo Use "CREATE EXTENSION syncline" to load this file. \quit

-- Metadata. Owned by the extension's owner; no other role may write it: the
-- capture trigger and apply_push write it in the owner's name.
CREATE TABLE syncline.meta (
  key text PRIMARY KEY,
  value text NOT NULL
);
INSERT INTO syncline.meta VALUES
  ('node_id', pg_catalog.gen_random_uuid()::text),
  ('max_drift_ms', '300000'),
  ('hlc', '0');

CREATE TABLE syncline.tables (
  tid serial PRIMARY KEY,
  table_schema text NOT NULL,
  table_name text NOT NULL UNIQUE,  -- batches name tables unqualified
  pk_columns text[] NOT NULL,
  scope_column text,
  notify boolean NOT NULL DEFAULT true,
  authorize text  -- a function (scope jsonb) RETURNS boolean, as regprocedure text
);

CREATE TABLE syncline.nodes (
  ref serial PRIMARY KEY,
  node_id text COLLATE "C" NOT NULL UNIQUE
);

-- One row per tracked row (tombstones included). (xid, seq) is the local
-- version: the writing transaction's id and a sequence number within it.
-- Pulls deliver only versions of transactions older than the pulling
-- snapshot's xmin, in (xid, seq) order: see docs/postgres.md, "Gap-free pulls".
CREATE SEQUENCE syncline.rows_seq CACHE 64;
CREATE TABLE syncline.rows (
  tid integer NOT NULL,
  pk text COLLATE "C" NOT NULL,
  clock bigint NOT NULL,
  hlc bigint NOT NULL,
  node integer NOT NULL,  -- 0: this database, else syncline.nodes.ref
  deleted boolean NOT NULL,
  scope text COLLATE "C",  -- canonical JSON of the row's scope value
  xid xid8 NOT NULL,
  seq bigint NOT NULL,
  PRIMARY KEY (tid, pk)
);
-- Version order in two halves, every row in exactly one: a pull of
-- everything merges them, a scoped pull reads its scope's versions plus
-- those of tables tracked without a scope. Rows of unscoped tables thus
-- cost two indexes, rows of scoped tables three.
CREATE INDEX rows_unscoped_version ON syncline.rows (xid, seq) WHERE scope IS NULL;
CREATE INDEX rows_scoped_version ON syncline.rows (xid, seq) WHERE scope IS NOT NULL;
CREATE INDEX rows_scope_version ON syncline.rows (scope, xid, seq) WHERE scope IS NOT NULL;

CREATE TABLE syncline.peers (
  node_id text COLLATE "C" NOT NULL,
  filter text COLLATE "C" NOT NULL,
  cursor text NOT NULL,
  position text NOT NULL,
  PRIMARY KEY (node_id, filter)
);

-- pg_dump keeps the metadata (a restore is a copy of this node: see
-- docs/postgres.md, "Backups and copies").
-- Devices that push, each bound to the role that first pushed under its node
-- id (docs/protocol.md, "Device identity").
CREATE TABLE syncline.devices (
  node_id text COLLATE "C" PRIMARY KEY,
  role_name text NOT NULL,
  first_push timestamptz NOT NULL DEFAULT pg_catalog.now(),
  last_push timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Changes apply_push refused on their own (docs/protocol.md, "Conflicts").
CREATE TABLE syncline.conflicts (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  node_id text COLLATE "C" NOT NULL,  -- the device that pushed the change
  role_name text NOT NULL,
  table_name text NOT NULL,
  pk jsonb NOT NULL,
  op text NOT NULL,
  "row" jsonb,       -- the row as sent (upserts)
  hlc text NOT NULL,  -- the refused version's stamp and origin
  origin text NOT NULL,
  scope jsonb,        -- the row's scope, when its table has one
  sqlstate text NOT NULL,
  reason text NOT NULL,
  answer text NOT NULL,     -- 'restamped': the server's state, stamped above the refused one; 'none'
  forget boolean NOT NULL,  -- the device drops its copy of the row
  resolved_at timestamptz
);
CREATE INDEX conflicts_node ON syncline.conflicts (node_id, id);
CREATE INDEX conflicts_scope ON syncline.conflicts (scope, id) WHERE scope IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('syncline.meta', '');
SELECT pg_catalog.pg_extension_config_dump('syncline.tables', '');
SELECT pg_catalog.pg_extension_config_dump('syncline.tables_tid_seq', '');
SELECT pg_catalog.pg_extension_config_dump('syncline.nodes', '');
SELECT pg_catalog.pg_extension_config_dump('syncline.nodes_ref_seq', '');
SELECT pg_catalog.pg_extension_config_dump('syncline.rows', '');
SELECT pg_catalog.pg_extension_config_dump('syncline.rows_seq', '');
SELECT pg_catalog.pg_extension_config_dump('syncline.peers', '');
SELECT pg_catalog.pg_extension_config_dump('syncline.devices', '');
SELECT pg_catalog.pg_extension_config_dump('syncline.conflicts', '');
SELECT pg_catalog.pg_extension_config_dump('syncline.conflicts_id_seq', '');

-- Functions. The SQL-facing ones pin search_path and the settings that text
-- output of dates and times depends on.
CREATE FUNCTION syncline.track(tbl regclass, options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET TimeZone = 'UTC' SET extra_float_digits = 3 SET lc_monetary = 'C'
AS 'MODULE_PATHNAME', 'syncline_track';

CREATE FUNCTION syncline.untrack(tbl regclass)
RETURNS boolean LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'syncline_untrack';

-- Batches cross the SQL boundary as text, exactly as written and read (no
-- jsonb round trip: jsonb would collapse duplicate keys and reorder columns).
CREATE FUNCTION syncline.pull_since(cursor text, lim integer DEFAULT 1000, options jsonb DEFAULT '{}')
RETURNS text LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET TimeZone = 'UTC' SET extra_float_digits = 3 SET lc_monetary = 'C'
AS 'MODULE_PATHNAME', 'syncline_pull_since';

CREATE FUNCTION syncline.apply_push(batch text)
RETURNS jsonb LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET TimeZone = 'UTC' SET extra_float_digits = 3 SET lc_monetary = 'C'
AS 'MODULE_PATHNAME', 'syncline_apply_push';

-- For batches at hand as jsonb in psql. An untyped literal resolves to the
-- text form above (the preferred type of its category).
CREATE FUNCTION syncline.apply_push(batch jsonb)
RETURNS jsonb LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET TimeZone = 'UTC' SET extra_float_digits = 3 SET lc_monetary = 'C'
AS 'MODULE_PATHNAME', 'syncline_apply_push_jsonb';

CREATE FUNCTION syncline.peer_cursor(node uuid, options jsonb DEFAULT '{}')
RETURNS text LANGUAGE c STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'syncline_peer_cursor';

-- SECURITY DEFINER: every role that syncs needs the server's node id, and
-- no role but the extension owner may read syncline.meta.
CREATE FUNCTION syncline.node_id()
RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT value::uuid FROM syncline.meta WHERE key = 'node_id' $$;

CREATE FUNCTION syncline.hlc_now()
RETURNS text LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'syncline_hlc_now';

CREATE FUNCTION syncline.set_max_drift(ms bigint)
RETURNS bigint LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ UPDATE syncline.meta SET value = ms::text WHERE key = 'max_drift_ms' RETURNING value::bigint $$;
REVOKE EXECUTE ON FUNCTION syncline.set_max_drift(bigint) FROM PUBLIC;

-- Capture triggers (C), per statement (docs/postgres.md, "Capture"). They
-- run SQL as the extension's owner: the search path is pinned so that no
-- writer's schema can put an operator or function of its own in that SQL.
-- capture() pins search_path itself, only around the SQL it runs to fill its
-- caches: a SET clause would cost every captured statement a GUC save and
-- restore.
CREATE FUNCTION syncline.capture()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'syncline_capture';

CREATE FUNCTION syncline.capture_truncate()
RETURNS trigger LANGUAGE c
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'syncline_capture_truncate';

-- What a client needs to build its schema: every tracked table with its
-- columns, types, primary key and scope column.
CREATE VIEW syncline.tracked_tables AS
SELECT t.table_schema, t.table_name, t.pk_columns AS primary_key, t.scope_column, t.notify, t.authorize,
       (SELECT jsonb_agg(jsonb_build_object(
                 'name', a.attname,
                 'type', format_type(a.atttypid, a.atttypmod),
                 'base_type', format_type(CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE a.atttypid END, NULL),
                 'category', bt.typcategory,
                 'not_null', a.attnotnull) ORDER BY a.attnum)
          FROM pg_attribute a
          JOIN pg_type ty ON ty.oid = a.atttypid
          JOIN pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE a.atttypid END
         WHERE a.attrelid = to_regclass(quote_ident(t.table_schema) || '.' || quote_ident(t.table_name))
           AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS columns,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'columns', (SELECT jsonb_agg(a.attname ORDER BY k.i) FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),
                 'references', r.table_name,
                 'ref_columns', (SELECT jsonb_agg(a.attname ORDER BY k.i) FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                                   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n))
                 ORDER BY c.conname), '[]'::jsonb)
          FROM pg_constraint c
          JOIN syncline.tables r
            ON to_regclass(quote_ident(r.table_schema) || '.' || quote_ident(r.table_name)) = c.confrelid
         WHERE c.contype = 'f'
           AND c.conrelid = to_regclass(quote_ident(t.table_schema) || '.' || quote_ident(t.table_name))) AS foreign_keys
  FROM syncline.tables t;

-- What holds pulls back: the oldest transactions that hold an xid.
CREATE VIEW syncline.pull_horizon AS
SELECT a.pid, a.usename, a.application_name, a.state, a.xact_start, a.backend_xid,
       now() - a.xact_start AS held_for
  FROM pg_stat_activity a
 WHERE a.backend_xid IS NOT NULL
 ORDER BY age(a.backend_xid) DESC;

-- A device's own refused changes, after the last one it has (its node id
-- must be bound to the calling role; a superuser may read any). The caller
-- is the role in effect before this function's SECURITY DEFINER: the one
-- SET ROLE chose, else the session's.
CREATE FUNCTION syncline.conflicts_for(node uuid, after bigint DEFAULT 0)
RETURNS SETOF syncline.conflicts LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH caller AS (
    SELECT CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END AS name
  )
  SELECT c.* FROM syncline.conflicts c, caller
   WHERE c.node_id = node::text AND c.id > after
     AND EXISTS (SELECT 1 FROM syncline.devices d WHERE d.node_id = node::text
                  AND (d.role_name = caller.name
                       OR (SELECT rolsuper FROM pg_roles WHERE rolname = caller.name)))
   ORDER BY c.id
$$;

-- Marks entries done (they stay until pruned).
CREATE FUNCTION syncline.resolve_conflicts(ids bigint[])
RETURNS bigint LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
  WITH done AS (UPDATE syncline.conflicts SET resolved_at = now() WHERE id = ANY (ids) AND resolved_at IS NULL
                RETURNING 1)
  SELECT count(*) FROM done
$$;
REVOKE EXECUTE ON FUNCTION syncline.resolve_conflicts(bigint[]) FROM PUBLIC;

-- Drops entries older than the retention (default: resolved ones after 30
-- days, any after 90), returning how many went.
CREATE FUNCTION syncline.prune_conflicts(resolved_for interval DEFAULT '30 days', kept_for interval DEFAULT '90 days')
RETURNS bigint LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
  WITH gone AS (DELETE FROM syncline.conflicts
                 WHERE (resolved_at IS NOT NULL AND resolved_at < now() - resolved_for) OR at < now() - kept_for
                RETURNING 1)
  SELECT count(*) FROM gone
$$;
REVOKE EXECUTE ON FUNCTION syncline.prune_conflicts(interval, interval) FROM PUBLIC;

GRANT USAGE ON SCHEMA syncline TO PUBLIC;
GRANT SELECT ON syncline.tracked_tables, syncline.pull_horizon TO PUBLIC;
