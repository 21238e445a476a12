-- syncline 0.1 -> 0.2: tracking follows schema changes (docs/postgres.md,
-- "Schema changes"). Not released yet: later changes of 0.2 go here too.
\echo Use "ALTER EXTENSION syncline UPDATE TO '0.2'" to load this file. \quit

-- A tracked table is keyed by its relation: a regclass survives renames,
-- pg_dump and restore (it is dumped as a name) and pg_upgrade. The names stay
-- beside it because batches name tables unqualified; the event triggers
-- below keep them current. `columns` is the shape the devices were last told
-- of: attnum, name and type of every synced column.
ALTER TABLE syncline.tables ADD COLUMN relid regclass, ADD COLUMN columns jsonb;

-- Column-level merge (docs/column-merge.md): a table merges rows as one
-- version or each column by its own stamp. A row of a column-merge table
-- keeps the stamps of its columns in `cols`, relative to the row's version
-- (bytes, docs/protocol.md "Column-level merge"); NULL: every column is at
-- the row's version (always so in a row-merge table).
ALTER TABLE syncline.tables ADD COLUMN merge text NOT NULL DEFAULT 'row' CHECK (merge IN ('row', 'column'));
ALTER TABLE syncline.rows ADD COLUMN cols bytea;
-- A row's column stamps after column `from` was renamed `to`, or dropped
-- (`to` NULL): follow_table keeps them with their columns.
CREATE FUNCTION syncline.column_stamps_renamed(cols bytea, "from" text, "to" text)
RETURNS bytea LANGUAGE c IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'syncline_column_stamps_renamed';

-- Every schema change of a tracked table, numbered: devices follow the
-- server's schema version (docs/protocol.md, "Schema changes"), and changes
-- from devices behind it are read through these (renamed and dropped columns).
CREATE TABLE syncline.schema_log (
  version bigint PRIMARY KEY,
  tid integer NOT NULL,
  -- track, untrack, drop_table, rename_table, add_column, drop_column,
  -- rename_column, alter_type, merge (the table's merge mode changed)
  event text NOT NULL,
  table_name text NOT NULL,  -- the table's name after the event
  from_name text,            -- renames: the old name
  to_name text,              -- renames: the new name
  column_name text,          -- add_column, drop_column, alter_type
  at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX schema_log_tid ON syncline.schema_log (tid, version);
SELECT pg_catalog.pg_extension_config_dump('syncline.schema_log', '');
INSERT INTO syncline.meta VALUES ('schema_version', '0');

-- pg_dump keeps syncline.meta, and a restore runs CREATE EXTENSION first,
-- whose own rows (a new node id) the dumped ones then met as duplicate
-- keys: the restore failed, or, going on past errors, took a new node id.
-- A dumped row now replaces the one of the same key (docs/postgres.md,
-- "Backups and copies").
CREATE FUNCTION syncline.meta_restored()
RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE syncline.meta SET value = NEW.value WHERE key = NEW.key;
  IF FOUND THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER meta_restored BEFORE INSERT ON syncline.meta
  FOR EACH ROW EXECUTE FUNCTION syncline.meta_restored();

-- The default of a column as a value in the changeset encoding, when it is a
-- constant (NULL otherwise, and for no default: JSON null).
CREATE FUNCTION syncline.column_default(rel regclass, attnum smallint)
RETURNS jsonb LANGUAGE c STABLE STRICT
SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET TimeZone = 'UTC' SET extra_float_digits = 3 SET lc_monetary = 'C'
AS 'MODULE_PATHNAME', 'syncline_column_default';

-- The synced columns of a relation (generated ones are not synced).
CREATE FUNCTION syncline.table_columns(rel regclass)
RETURNS jsonb LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('attnum', a.attnum, 'name', a.attname,
                                               'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum), '[]')
    FROM pg_attribute a
   WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
$$;

-- Numbers a schema change and logs it. Watching devices hear of it on the
-- channel capture notifies (docs/postgres.md, "NOTIFY"), although no row
-- changed.
CREATE FUNCTION syncline.log_schema(p_tid integer, p_event text, p_table text, p_from text DEFAULT NULL,
                                    p_to text DEFAULT NULL, p_column text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v bigint;
BEGIN
  UPDATE syncline.meta SET value = (value::bigint + 1)::text WHERE key = 'schema_version'
  RETURNING value::bigint INTO v;
  INSERT INTO syncline.schema_log (version, tid, event, table_name, from_name, to_name, column_name)
  VALUES (v, p_tid, p_event, p_table, p_from, p_to, p_column);
  PERFORM pg_notify('syncline', jsonb_build_object('schema', v)::text);
  RETURN v;
END
$$;

-- Every live row of a table as a new local version at the least stamp above
-- its own: after a change that gave existing rows values no device can work
-- out (a column added with a default that is not a constant, a type
-- change), devices pull the rows again. An edit made on a device since its
-- last pull has a later stamp and still wins (and the server fills in what
-- that device lacked).
CREATE FUNCTION syncline.reversion_rows(p_tid integer)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n bigint;
BEGIN
  UPDATE syncline.rows
     SET clock = CASE WHEN clock < 9223372036854775807 THEN clock + 1 ELSE clock END,
         hlc = CASE WHEN hlc < 9223372036854775807 THEN hlc + 1 ELSE hlc END,
         node = 0, xid = pg_current_xact_id(), seq = nextval('syncline.rows_seq'), cols = NULL
   WHERE tid = p_tid AND NOT deleted;
  GET DIAGNOSTICS n = ROW_COUNT;
  UPDATE syncline.meta
     SET value = greatest(value::bigint, (SELECT coalesce(max(hlc), 0) FROM syncline.rows WHERE tid = p_tid))::text
   WHERE key = 'hlc';
  RETURN n;
END
$$;

-- Brings a tracked table's row in syncline.tables up to its relation after
-- DDL, logging each change. Refuses (and so rolls back) a change that would
-- break sync: a primary key that changes, a scope column dropped, a name
-- another tracked table has.
CREATE FUNCTION syncline.follow_table(p_tid integer)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t syncline.tables;
  rel_name text;
  rel_schema text;
  now_columns jsonb;
  old_col jsonb;
  new_col jsonb;
  key text[];
  reversion boolean := false;
BEGIN
  SELECT * INTO t FROM syncline.tables WHERE tid = p_tid FOR UPDATE;
  SELECT c.relname, n.nspname INTO rel_name, rel_schema
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = t.relid::oid;
  IF rel_name IS NULL THEN
    RETURN;  -- dropped in the same command: sql_drop handles it
  END IF;
  IF rel_name <> t.table_name THEN
    IF EXISTS (SELECT 1 FROM syncline.tables WHERE table_name = rel_name AND tid <> p_tid) THEN
      RAISE EXCEPTION 'a table named "%" is already tracked', rel_name
        USING ERRCODE = 'duplicate_table',
              DETAIL = 'Batches name tables unqualified, so tracked tables need names unique across schemas.';
    END IF;
    PERFORM syncline.log_schema(p_tid, 'rename_table', rel_name, t.table_name, rel_name);
  END IF;

  now_columns := syncline.table_columns(t.relid);
  FOR old_col IN SELECT * FROM jsonb_array_elements(t.columns) LOOP
    SELECT c INTO new_col FROM jsonb_array_elements(now_columns) c WHERE c->'attnum' = old_col->'attnum';
    IF new_col IS NULL THEN
      IF old_col->>'name' = t.scope_column THEN
        RAISE EXCEPTION 'column "%" is the scope of tracked table "%"', old_col->>'name', rel_name
          USING ERRCODE = 'dependent_objects_still_exist',
                HINT = 'Call syncline.untrack first, or keep the column.';
      END IF;
      PERFORM syncline.log_schema(p_tid, 'drop_column', rel_name, p_column => old_col->>'name');
      IF t.merge = 'column' THEN
        UPDATE syncline.rows SET cols = syncline.column_stamps_renamed(cols, old_col->>'name', NULL)
         WHERE tid = p_tid AND cols IS NOT NULL;
      END IF;
      CONTINUE;
    END IF;
    IF new_col->>'name' <> old_col->>'name' THEN
      PERFORM syncline.log_schema(p_tid, 'rename_column', rel_name, old_col->>'name', new_col->>'name');
      IF t.merge = 'column' THEN
        UPDATE syncline.rows SET cols = syncline.column_stamps_renamed(cols, old_col->>'name', new_col->>'name')
         WHERE tid = p_tid AND cols IS NOT NULL;
      END IF;
      t.pk_columns := array_replace(t.pk_columns, old_col->>'name', new_col->>'name');
      IF t.scope_column = old_col->>'name' THEN
        t.scope_column := new_col->>'name';
      END IF;
    END IF;
    IF new_col->>'type' <> old_col->>'type' THEN
      PERFORM syncline.log_schema(p_tid, 'alter_type', rel_name, p_column => new_col->>'name');
      reversion := true;
    END IF;
  END LOOP;
  FOR new_col IN SELECT c FROM jsonb_array_elements(now_columns) c
             WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(t.columns) o WHERE o->'attnum' = c->'attnum') LOOP
    PERFORM syncline.log_schema(p_tid, 'add_column', rel_name, p_column => new_col->>'name');
    IF syncline.column_default(t.relid, (new_col->>'attnum')::smallint) IS NULL THEN
      reversion := true;
    END IF;
  END LOOP;

  SELECT array_agg(a.attname::text ORDER BY k.i) INTO key
    FROM pg_index x
    CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, i)
    JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
   WHERE x.indrelid = t.relid::oid AND x.indisprimary;
  IF key IS DISTINCT FROM t.pk_columns THEN
    RAISE EXCEPTION 'the primary key of tracked table "%" cannot change', rel_name
      USING ERRCODE = 'feature_not_supported',
            DETAIL = format('syncline identifies its rows by (%s).', array_to_string(t.pk_columns, ', ')),
            HINT = 'Call syncline.untrack first, change the key, then syncline.track the table again; devices then '
                   'get its rows anew.';
  END IF;

  UPDATE syncline.tables
     SET table_schema = rel_schema, table_name = rel_name, pk_columns = t.pk_columns,
         scope_column = t.scope_column, columns = now_columns
   WHERE tid = p_tid;
  IF reversion THEN
    PERFORM syncline.reversion_rows(p_tid);
  END IF;
END
$$;

-- track() and untrack() write syncline.tables; these log what they did. A
-- restore brings rows with their columns already set, and logs nothing.
CREATE FUNCTION syncline.tables_tracked()
RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.columns IS NULL THEN
      UPDATE syncline.tables
         SET relid = to_regclass(quote_ident(NEW.table_schema) || '.' || quote_ident(NEW.table_name)),
             columns = syncline.table_columns(to_regclass(quote_ident(NEW.table_schema) || '.' ||
                                                          quote_ident(NEW.table_name)))
       WHERE tid = NEW.tid;
      PERFORM syncline.log_schema(NEW.tid, 'track', NEW.table_name);
    END IF;
  ELSE
    PERFORM syncline.log_schema(OLD.tid,
                                CASE WHEN EXISTS (SELECT 1 FROM pg_class WHERE oid = OLD.relid::oid)
                                     THEN 'untrack' ELSE 'drop_table' END,
                                OLD.table_name);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER tables_tracked AFTER INSERT OR DELETE ON syncline.tables
  FOR EACH ROW EXECUTE FUNCTION syncline.tables_tracked();

-- A tracked partitioned table after DDL on it or on one of its partitions
-- (docs/postgres.md, "Partitioned tables"): capture triggers and metadata
-- for partitions created or attached, none for partitions detached, and
-- tombstones for rows that left the table (with p_reconcile, or when a
-- partition was detached). Does nothing for other tables.
CREATE FUNCTION syncline.follow_partitions(p_tid integer, p_reconcile boolean)
RETURNS void LANGUAGE c STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'syncline_follow_partitions';
-- For the event triggers (which run as the extension's owner) only.
REVOKE EXECUTE ON FUNCTION syncline.follow_partitions(integer, boolean) FROM PUBLIC;

-- DDL on a tracked table: ALTER TABLE (columns, renames, SET SCHEMA), and
-- on a tracked partitioned table's partitions (CREATE TABLE ... PARTITION
-- OF, ATTACH and DETACH PARTITION). SECURITY DEFINER: the metadata belongs
-- to the extension's owner, the DDL to whoever owns the table.
CREATE FUNCTION syncline.ddl_command_end()
RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  changed integer;
BEGIN
  FOR changed IN
    SELECT DISTINCT s.tid FROM pg_event_trigger_ddl_commands() c
      JOIN syncline.tables s ON s.relid::oid = c.objid
     WHERE c.classid = 'pg_class'::regclass
  LOOP
    PERFORM syncline.follow_table(changed);
  END LOOP;
  FOR changed IN
    SELECT DISTINCT s.tid FROM pg_event_trigger_ddl_commands() c
      JOIN syncline.tables s ON s.relid::oid = pg_partition_root(c.objid::regclass)::oid
     WHERE c.classid = 'pg_class'::regclass
  LOOP
    PERFORM syncline.follow_partitions(changed, false);
  END LOOP;
END
$$;

-- DROP TABLE (or DROP SCHEMA ... CASCADE) of a tracked table: its metadata
-- goes and the drop is logged; devices stop syncing the table and keep
-- their copies (docs/postgres.md, "Schema changes").
CREATE FUNCTION syncline.sql_drop()
RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  gone integer;
  -- A partition of a tracked table (its capture triggers go with it, and it
  -- is not tracked itself): its rows left the table.
  partition_dropped boolean := EXISTS (
    SELECT 1 FROM pg_event_trigger_dropped_objects() d
     WHERE d.object_type = 'trigger' AND d.address_names[3] = 'syncline_capture_insert'
       AND NOT EXISTS (SELECT 1 FROM syncline.tables s
                        WHERE s.table_schema = d.address_names[1] AND s.table_name = d.address_names[2]));
BEGIN
  FOR gone IN
    SELECT s.tid FROM pg_event_trigger_dropped_objects() d
      JOIN syncline.tables s ON s.relid::oid = d.objid
     WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
  LOOP
    DELETE FROM syncline.rows WHERE tid = gone;
    DELETE FROM syncline.tables WHERE tid = gone;
  END LOOP;
  IF partition_dropped THEN
    FOR gone IN
      SELECT s.tid FROM syncline.tables s JOIN pg_class c ON c.oid = s.relid::oid WHERE c.relkind = 'p'
    LOOP
      PERFORM syncline.follow_partitions(gone, true);
    END LOOP;
  END IF;
END
$$;

CREATE EVENT TRIGGER syncline_ddl_command_end ON ddl_command_end WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE')
  EXECUTE FUNCTION syncline.ddl_command_end();
CREATE EVENT TRIGGER syncline_sql_drop ON sql_drop
  EXECUTE FUNCTION syncline.sql_drop();

-- The tables tracked under 0.1: keyed and logged. One whose relation is gone
-- (dropped under 0.1, which broke every full pull) is dropped from tracking.
UPDATE syncline.tables
   SET relid = to_regclass(quote_ident(table_schema) || '.' || quote_ident(table_name));
DELETE FROM syncline.rows WHERE tid IN (SELECT tid FROM syncline.tables WHERE relid IS NULL);
DELETE FROM syncline.tables WHERE relid IS NULL;
UPDATE syncline.tables SET columns = syncline.table_columns(relid);
SELECT syncline.log_schema(tid, 'track', table_name) FROM syncline.tables ORDER BY tid;

-- What a client needs to build its schema: every tracked table with its
-- columns (and their defaults), types, primary key and scope column.
CREATE OR REPLACE VIEW syncline.tracked_tables AS
SELECT t.table_schema, t.table_name, t.pk_columns AS primary_key, t.scope_column, t.notify, t.authorize,
       (SELECT jsonb_agg(jsonb_build_object(
                 'name', a.attname,
                 'type', format_type(a.atttypid, a.atttypmod),
                 'base_type', format_type(CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE a.atttypid END, NULL),
                 'category', bt.typcategory,
                 'not_null', a.attnotnull)
               || CASE WHEN NOT a.atthasdef THEN '{}'::jsonb
                       WHEN syncline.column_default(a.attrelid, a.attnum) IS NOT NULL
                       THEN jsonb_build_object('default', syncline.column_default(a.attrelid, a.attnum))
                       ELSE jsonb_build_object('default_expression', pg_get_expr(d.adbin, d.adrelid)) END
               ORDER BY a.attnum)
          FROM pg_attribute a
          JOIN pg_type ty ON ty.oid = a.atttypid
          JOIN pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE a.atttypid END
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = t.relid::oid
           AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS columns,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'columns', (SELECT jsonb_agg(a.attname ORDER BY k.i) FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),
                 'references', r.table_name,
                 'ref_columns', (SELECT jsonb_agg(a.attname ORDER BY k.i) FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                                   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n))
                 ORDER BY c.conname), '[]'::jsonb)
          FROM pg_constraint c
          JOIN syncline.tables r ON r.relid::oid = c.confrelid
         WHERE c.contype = 'f' AND c.conrelid = t.relid::oid) AS foreign_keys,
       t.merge
  FROM syncline.tables t;

-- The schema document pages carry to a reader behind the server's schema
-- version (docs/protocol.md, "Schema changes"): every tracked table, and the
-- changes after the reader's version (none for a reader that has nothing).
CREATE FUNCTION syncline.schema_document(since bigint)
RETURNS text LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET TimeZone = 'UTC' SET extra_float_digits = 3 SET lc_monetary = 'C'
AS $$
  SELECT jsonb_build_object(
    'version', (SELECT value::bigint FROM syncline.meta WHERE key = 'schema_version'),
    'tables', coalesce((SELECT jsonb_agg(jsonb_build_object('name', table_name, 'primary_key', to_jsonb(primary_key),
                                                            'columns', columns, 'foreign_keys', foreign_keys,
                                                            'merge', merge)
                                         ORDER BY table_name)
                          FROM syncline.tracked_tables), '[]'),
    'changes', coalesce((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                  'version', version, 'event', event, 'table', table_name,
                                  'from', from_name, 'to', to_name, 'column', column_name)) ORDER BY version)
                           FROM syncline.schema_log WHERE version > since AND since > 0), '[]'))::text
$$;

-- The server's schema version, for apps and `syncline status`.
CREATE FUNCTION syncline.schema_version()
RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT value::bigint FROM syncline.meta WHERE key = 'schema_version' $$;

-- Garbage collection (docs/postgres.md, "Garbage collection").
--
-- Devices report where their pulls have reached (syncline.device_seen),
-- outside pull_since, which must not take a transaction id. A device that
-- has not reported is known by its pushes alone and holds the horizon at the
-- beginning while it is active.
ALTER TABLE syncline.devices
  ALTER COLUMN last_push DROP NOT NULL,
  ADD COLUMN scope jsonb,
  ADD COLUMN pull_cursor text,
  ADD COLUMN pull_xid xid8,
  ADD COLUMN pull_seq bigint,
  ADD COLUMN last_seen timestamptz NOT NULL DEFAULT pg_catalog.now();

-- A push is activity too (apply_push sets last_push): a device that pushes
-- but reports no position, an older client, holds the horizon while it
-- pushes. A trigger rather than apply_push's own statement, which also
-- serves databases still on the 0.1 tables.
CREATE FUNCTION syncline.device_pushed() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  NEW.last_seen := now();
  RETURN NEW;
END
$$;
CREATE TRIGGER device_pushed BEFORE UPDATE OF last_push ON syncline.devices
  FOR EACH ROW EXECUTE FUNCTION syncline.device_pushed();

-- Where the server's versions stood at each collection: what an age
-- ("tombstones older than 7 days") means in positions.
CREATE TABLE syncline.gc_marks (
  at timestamptz PRIMARY KEY,
  xid xid8 NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('syncline.gc_marks', '');
-- gc_bound: the position below which collection has been allowed;
-- gc_horizon: the greatest version collected; gc_watermark: the greatest
-- stamp collected. Each only moves forward.
INSERT INTO syncline.meta VALUES ('gc_bound', '0.0'), ('gc_horizon', '0.0'), ('gc_watermark', '0');

-- Records a device's pull position (its cursor from this server) and scope,
-- binding the node id to the calling role as its first push does. Returns
-- this server's collection state: "bound", the position below which
-- collection has been allowed, and "position", one above everything
-- committed before this call. A device collects its own tombstones once a
-- later "bound" has passed the "position" it was told (docs/client.md,
-- "Garbage collection").
CREATE FUNCTION syncline.device_seen(node uuid, cursor text, scope jsonb DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  caller text := CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END;
  position text := split_part(cursor, ':', 3);
  bound_to text;
BEGIN
  IF node IS NULL THEN
    RAISE EXCEPTION 'syncline.device_seen: node must not be null' USING ERRCODE = '22023';
  END IF;
  IF pg_is_in_recovery() THEN
    RAISE EXCEPTION 'syncline.device_seen: this server is a hot standby, which is read-only; report to the primary'
      USING ERRCODE = '25006';
  END IF;
  IF cursor IS NOT NULL AND (split_part(cursor, ':', 1) <> (SELECT value FROM syncline.meta WHERE key = 'node_id')
                             OR position !~ '^[0-9]{1,20}\.[0-9]{1,19}(\.[0-9]{1,10}\.[0-9]{1,20}(\.[0-9]{1,20}\.[0-9]{1,19})?)?$') THEN
    RAISE EXCEPTION 'syncline.device_seen: cursor "%" was not issued by this server', cursor
      USING ERRCODE = '22023', HINT = 'Report the cursor of this server''s last page the device applied.';
  END IF;
  INSERT INTO syncline.devices AS d (node_id, role_name, last_push, scope, pull_cursor, pull_xid, pull_seq)
  VALUES (node::text, caller, NULL, device_seen.scope, cursor, split_part(position, '.', 1)::xid8,
          nullif(split_part(position, '.', 2), '')::bigint)
  ON CONFLICT (node_id) DO UPDATE
    SET scope = excluded.scope, pull_cursor = excluded.pull_cursor, pull_xid = excluded.pull_xid,
        pull_seq = excluded.pull_seq, last_seen = now()
  RETURNING d.role_name INTO bound_to;
  IF bound_to <> caller AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = caller) THEN
    RAISE EXCEPTION 'syncline.device_seen: node % is bound to role "%", not "%"', node, bound_to, caller
      USING ERRCODE = '42501',
            HINT = 'Each device needs a node id of its own; an administrator can rebind one by deleting its row '
                   'from syncline.devices.';
  END IF;
  RETURN jsonb_build_object('bound', (SELECT value FROM syncline.meta WHERE key = 'gc_bound'),
                            'position', pg_current_xact_id()::text || '.0');
END
$$;

-- Drops tombstones every device that matters has pulled (docs/postgres.md,
-- "Garbage collection"). Options:
--   "min_age"        tombstones younger than this stay (an interval, default
--                    '7 days'; measured by the marks of earlier runs);
--   "device_window"  devices seen within it hold the horizon at their pull
--                    position (an interval, default '30 days');
--   "max_tombstones" at most this many tombstones stay, whatever holds
--                    them (devices behind then resync);
--   "dry_run"        reports without collecting.
-- Pulls with a cursor below the greatest version collected get SQLSTATE
-- SL001 ("resync"); pushes of unknown rows stamped at or below the greatest
-- stamp collected are refused (the watermark).
CREATE FUNCTION syncline.gc(options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  unknown text;
  min_age interval;
  device_window interval;
  max_tombstones bigint;
  dry_run boolean;
  now_xid xid8 := pg_snapshot_xmin(pg_current_snapshot());
  bound_xid xid8;
  bound_seq bigint := 0;
  other_xid xid8;
  other_seq bigint;
  holders jsonb;
  collected bigint := 0;
  top_xid xid8;
  top_seq bigint;
  top_hlc bigint;
BEGIN
  IF pg_is_in_recovery() THEN
    RAISE EXCEPTION 'syncline.gc: this server is a hot standby, which is read-only; collect on the primary'
      USING ERRCODE = '25006';
  END IF;
  options := coalesce(options, '{}');  -- gc(NULL): the defaults
  SELECT string_agg(k, ', ') INTO unknown FROM jsonb_object_keys(options) k
   WHERE k NOT IN ('min_age', 'device_window', 'max_tombstones', 'dry_run');
  IF unknown IS NOT NULL THEN
    RAISE EXCEPTION 'syncline.gc: unknown option(s) % (known: min_age, device_window, max_tombstones, dry_run)', unknown
      USING ERRCODE = '22023';
  END IF;
  BEGIN
    min_age := coalesce(options->>'min_age', '7 days')::interval;
    device_window := coalesce(options->>'device_window', '30 days')::interval;
    max_tombstones := (options->>'max_tombstones')::bigint;
    dry_run := coalesce((options->>'dry_run')::boolean, false);
  EXCEPTION WHEN data_exception OR invalid_text_representation OR invalid_datetime_format THEN
    RAISE EXCEPTION 'syncline.gc: bad option value in %: %', options, SQLERRM USING ERRCODE = '22023';
  END;
  IF max_tombstones < 0 OR min_age < '0' OR device_window < '0' THEN
    RAISE EXCEPTION 'syncline.gc: options must not be negative: %', options USING ERRCODE = '22023';
  END IF;
  -- One collection at a time; pushes and pulls go on.
  LOCK TABLE syncline.gc_marks IN SHARE ROW EXCLUSIVE MODE;
  IF NOT dry_run THEN
    INSERT INTO syncline.gc_marks VALUES (now(), now_xid) ON CONFLICT (at) DO NOTHING;
  END IF;

  -- The age bound: where versions stood min_age ago (nothing before the
  -- first run that old).
  IF min_age = '0' THEN
    bound_xid := now_xid;
  ELSE
    SELECT m.xid INTO bound_xid FROM syncline.gc_marks m WHERE m.at <= now() - min_age ORDER BY m.at DESC LIMIT 1;
    bound_xid := least(coalesce(bound_xid, '0'::xid8), now_xid);
  END IF;

  -- The device bound: the least pull position of the devices seen within
  -- the window; one that never reported a position holds everything.
  SELECT coalesce(d.pull_xid, '0'::xid8), coalesce(d.pull_seq + 1, 0) INTO other_xid, other_seq
    FROM syncline.devices d WHERE d.last_seen >= now() - device_window
   ORDER BY d.pull_xid NULLS FIRST, d.pull_seq LIMIT 1;
  IF FOUND AND (other_xid, other_seq) < (bound_xid, bound_seq) THEN
    SELECT jsonb_agg(jsonb_build_object('node_id', d.node_id, 'pull_cursor', d.pull_cursor, 'last_seen', d.last_seen)
                     ORDER BY d.pull_xid NULLS FIRST, d.pull_seq)
      INTO holders
      FROM syncline.devices d
     WHERE d.last_seen >= now() - device_window
       AND (coalesce(d.pull_xid, '0'::xid8), coalesce(d.pull_seq + 1, 0)) < (bound_xid, bound_seq);
    bound_xid := other_xid;
    bound_seq := other_seq;
  END IF;

  -- The cap: the newest tombstone beyond it goes, with every older one.
  IF max_tombstones IS NOT NULL THEN
    SELECT r.xid, r.seq + 1 INTO other_xid, other_seq FROM syncline.rows r
     WHERE r.deleted AND r.xid < now_xid ORDER BY r.xid DESC, r.seq DESC OFFSET max_tombstones LIMIT 1;
    IF FOUND AND (other_xid, other_seq) > (bound_xid, bound_seq) THEN
      bound_xid := other_xid;
      bound_seq := other_seq;
    END IF;
  END IF;

  IF dry_run THEN
    SELECT count(*) INTO collected FROM syncline.rows r WHERE r.deleted AND (r.xid, r.seq) < (bound_xid, bound_seq);
  ELSE
    WITH gone AS (
           DELETE FROM syncline.rows r WHERE r.deleted AND (r.xid, r.seq) < (bound_xid, bound_seq)
           RETURNING r.xid, r.seq, r.hlc),
         totals AS (SELECT count(*) AS n, max(g.hlc) AS hlc FROM gone g),
         top AS (SELECT g.xid, g.seq FROM gone g ORDER BY g.xid DESC, g.seq DESC LIMIT 1)
    SELECT totals.n, totals.hlc, top.xid, top.seq INTO collected, top_hlc, top_xid, top_seq
      FROM totals LEFT JOIN top ON true;
    -- The state only moves forward: a run with a smaller bound after one
    -- with a greater bound collects nothing new.
    UPDATE syncline.meta SET value = bound_xid::text || '.' || bound_seq::text
     WHERE key = 'gc_bound'
       AND (split_part(value, '.', 1)::xid8, split_part(value, '.', 2)::bigint) < (bound_xid, bound_seq);
    IF collected > 0 THEN
      -- The greatest version collected: a cursor below it may have missed a
      -- delete; the greatest stamp: the watermark for pushes.
      UPDATE syncline.meta SET value = top_xid::text || '.' || top_seq::text
       WHERE key = 'gc_horizon'
         AND (split_part(value, '.', 1)::xid8, split_part(value, '.', 2)::bigint) < (top_xid, top_seq);
      UPDATE syncline.meta SET value = top_hlc::text WHERE key = 'gc_watermark' AND value::bigint < top_hlc;
    END IF;
    -- Marks older than the one the age bound used are of no more use.
    DELETE FROM syncline.gc_marks m
     WHERE m.at < (SELECT max(k.at) FROM syncline.gc_marks k WHERE k.at <= now() - min_age);
  END IF;
  RETURN jsonb_build_object(
    'collected', collected,
    'tombstones', (SELECT count(*) FROM syncline.rows r WHERE r.deleted),
    'bound', bound_xid::text || '.' || bound_seq::text,
    'horizon', (SELECT value FROM syncline.meta WHERE key = 'gc_horizon'),
    'watermark', (SELECT value::bigint FROM syncline.meta WHERE key = 'gc_watermark'),
    'held_by', coalesce(holders, '[]'),
    'dry_run', dry_run);
END
$$;
REVOKE EXECUTE ON FUNCTION syncline.gc(jsonb) FROM PUBLIC;
