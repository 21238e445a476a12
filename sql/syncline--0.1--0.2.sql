-- syncline 0.1 -> 0.2: tracking follows schema changes (docs/postgres.md,
-- "Schema changes"). Not released yet: later changes of 0.2 go here too.
\echo Use "ALTER EXTENSION syncline UPDATE TO '0.2'" to load this file. \quit

-- A tracked table is keyed by its relation: a regclass survives renames,
-- pg_dump and restore (it is dumped as a name) and pg_upgrade. The names stay
-- beside it because batches name tables unqualified; the event triggers
-- below keep them current. `columns` is the shape the devices were last told
-- of: attnum, name and type of every synced column.
ALTER TABLE syncline.tables ADD COLUMN relid regclass, ADD COLUMN columns jsonb;

-- Every schema change of a tracked table, numbered: devices follow the
-- server's schema version (docs/protocol.md, "Schema changes"), and changes
-- from devices behind it are read through these (renamed and dropped columns).
CREATE TABLE syncline.schema_log (
  version bigint PRIMARY KEY,
  tid integer NOT NULL,
  -- track, untrack, drop_table, rename_table, add_column, drop_column,
  -- rename_column, alter_type
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
         node = 0, xid = pg_current_xact_id(), seq = nextval('syncline.rows_seq')
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
      CONTINUE;
    END IF;
    IF new_col->>'name' <> old_col->>'name' THEN
      PERFORM syncline.log_schema(p_tid, 'rename_column', rel_name, old_col->>'name', new_col->>'name');
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
         WHERE c.contype = 'f' AND c.conrelid = t.relid::oid) AS foreign_keys
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
                                                            'columns', columns, 'foreign_keys', foreign_keys)
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
