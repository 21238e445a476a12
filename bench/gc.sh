# shellcheck shell=bash disable=SC2154  # rows, results, table_ddl, rows_sql...: set by the caller
# The PostgreSQL half of the metadata benchmark after a delete-heavy
# workload (bench/run.sh, section gc; the SQLite half is bench/sqlite_gc.cc):
# sourced by bench/run.sh after bench/pg_workloads.sh (psql_q, table_ddl,
# rows_sql).
#
# A tracked table of $rows rows, 90 % of them deleted (syncline.rows then
# holds nine tombstones for every live row); the bytes of syncline.rows, the
# one relation with a row per tracked row and per tombstone
# (pg_total_relation_size: heap, TOAST, its four indexes, free space and
# visibility maps), and of the table itself (heap, TOAST, primary key), per
# live row, before and after syncline.gc collects every tombstone. Twice: with
# a plain VACUUM of both before each measurement (the space freed stays in
# the files for reuse, but for empty pages at the heap's end, and indexes
# never shrink), and with VACUUM FULL (compacted: what the rows that remain
# take). Sizes are deterministic, so each is measured once.

# gc_sizes_emit DB NAME [COLLECTED]: one result line, metadata and table
# bytes per live row of DB as it is now.
gc_sizes_emit() {
  local db="$1" name="$2" collected="${3:-}" meta heap indexes data live meta_rows tombstones per_meta per_data detail
  IFS='|' read -r meta heap indexes data live meta_rows tombstones <<<"$(psql_q -d "$db" -c "
    SELECT pg_total_relation_size('syncline.rows'), pg_table_size('syncline.rows'), pg_indexes_size('syncline.rows'),
           pg_total_relation_size('items'), (SELECT count(*) FROM items), (SELECT count(*) FROM syncline.rows),
           (SELECT count(*) FROM syncline.rows WHERE deleted)")"
  [ -n "$tombstones" ] || { echo "bench gc: could not measure $db" >&2; exit 1; }
  per_meta="$(awk -v b="$meta" -v n="$live" 'BEGIN {printf "%.3f", b / n}')"
  per_data="$(awk -v b="$data" -v n="$live" 'BEGIN {printf "%.3f", b / n}')"
  detail="\"metadata_bytes\":$meta,\"metadata_table_bytes\":$heap,\"metadata_index_bytes\":$indexes,\"data_bytes\":$data,\"live_rows\":$live,\"metadata_rows\":$meta_rows"
  detail+=",\"tombstones\":$tombstones${collected:+,\"collected\":$collected}"
  echo "{\"name\":\"$name\",\"unit\":\"bytes/row\",\"samples\":[$per_meta],\"baseline_samples\":[$per_data],\"detail\":{$detail}}" \
    >>"$results"
  log "  $name: metadata $meta bytes ($per_meta a live row; indexes $indexes), table $data bytes ($per_data); $live live rows," \
    "$meta_rows metadata rows, $tombstones tombstones"
  gc_live="$live" gc_tombstones="$tombstones"
}

# pg_gc_sizes DB VACUUM: in a new database DB, the workload, measured after
# VACUUM ("VACUUM" or "VACUUM FULL") before and after syncline.gc; emits
# gc.pg_before and gc.pg_after (with _compacted for VACUUM FULL). Stops the
# bench if the collection does not take every tombstone.
pg_gc_sizes() {
  local db="$1" vacuum="$2" suffix="" live=$((rows / 10)) collected result left
  [ "$vacuum" = VACUUM ] || suffix=_compacted
  createdb "$db"
  # n runs from 1 to $rows: every tenth row stays.
  psql_q -d "$db" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION syncline;
CREATE TABLE items $table_ddl;
SELECT syncline.track('items');
INSERT INTO items $(rows_sql "$rows");
DELETE FROM items WHERE n % 10 <> 0;
SQL
  psql_q -d "$db" -c "$vacuum items" -c "$vacuum syncline.rows"
  gc_sizes_emit "$db" "gc.pg_before$suffix"
  if [ "$gc_live" != "$live" ] || [ "$gc_tombstones" != $((rows - live)) ]; then
    echo "bench gc: $gc_live live rows and $gc_tombstones tombstones after the delete," \
      "expected $live and $((rows - live))" >&2
    exit 1
  fi
  # min_age 0: the age bound is this call's own snapshot (no earlier run's
  # mark needed); device_window 0: no device holds the horizon (none has
  # pushed or reported here anyway). One call collects every tombstone of a
  # transaction committed before it.
  IFS='|' read -r collected left result <<<"$(psql_q -d "$db" -c "
    SELECT r->>'collected', r->>'tombstones', r::text
      FROM syncline.gc('{\"min_age\": \"0\", \"device_window\": \"0\"}') r")"
  if ! [ "${collected:-0}" -gt 0 ] 2>/dev/null || [ "$collected" != $((rows - live)) ] || [ "$left" != 0 ]; then
    echo "bench gc: syncline.gc did not collect the $((rows - live)) tombstones: $result" >&2
    exit 1
  fi
  psql_q -d "$db" -c "$vacuum items" -c "$vacuum syncline.rows"
  gc_sizes_emit "$db" "gc.pg_after$suffix" "$collected"
  [ "$gc_tombstones" = 0 ] || { echo "bench gc: $gc_tombstones tombstones left after syncline.gc" >&2; exit 1; }
  dropdb "$db"
}
