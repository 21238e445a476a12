# shellcheck shell=bash disable=SC2154  # rows, work, results...: set by the caller
# The PostgreSQL capture workloads, for every contender: sourced by
# bench/run.sh (the main cluster) and bench/logical.sh (a second cluster
# with wal_level=logical). Each workload runs in full for each contender in
# each run, the contenders' order rotating from run to run. The contenders:
#
#   plain     a table with nothing attached (the baseline)
#   syncline  syncline.track (NOTIFY on, the default)
#   quiet     syncline.track(t, '{"notify": false}')
#   column    syncline.track(t, '{"merge": "column"}'): a column-merge table
#   pgq       PgQ (Debian: postgresql-15-pgq3): pgq.logutriga('q') as an
#             AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW trigger
#   audit     what users write by hand: a PL/pgSQL row trigger inserting
#             to_jsonb(NEW) (OLD for a delete), the operation and the table's
#             name into a log table with a bigserial key
#   slot      a logical replication slot with wal2json (Debian:
#             postgresql-15-wal2json) and nothing reading it; needs
#             wal_level=logical
#   consumer  the same slot read by pg_recvlogical (wal2json,
#             format-version=2, into /dev/null) while the workload runs
#
# The caller sets rows, pgbench_seconds, pgbench_runs, work and results and
# defines log; everything here writes to $results through emit.

# A failure inside $(...) (a sample, a slot) must stop the bench too.
shopt -s inherit_errexit
psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# emit NAME UNIT "SYNCLINE SAMPLES" "PLAIN SAMPLES" [PEER="SAMPLES"]...: one
# raw result line; the report computes medians, spreads and ratios.
emit() {
  local name="$1" unit="$2" line peers="" p
  line="{\"name\":\"$name\",\"unit\":\"$unit\",\"samples\":[$(echo $3 | tr ' ' ',')],"
  line+="\"baseline_samples\":[$(echo $4 | tr ' ' ',')]"
  shift 4
  for p in "$@"; do
    peers+="${peers:+,}\"${p%%=*}\":[$(echo ${p#*=} | tr ' ' ',')]"
  done
  [ -z "$peers" ] || line+=",\"peers\":{$peers}"
  echo "$line}" >>"$results"
}

table_ddl="(id uuid PRIMARY KEY, n integer, s text, r double precision, b bytea)"
# The same rows the SQLite side generates, in shape: a uuid key, an integer,
# ~40 characters of text, a real, a 32-byte blob.
rows_sql() {  # rows_sql COUNT
  echo "SELECT md5(i::text)::uuid, i, 'text value for row ' || i || ', lorem ipsum', i * 0.5 + 0.25,
        decode(md5(i::text) || md5((-i)::text), 'hex') FROM generate_series(1, $1) i"
}

# What every contender needs in a database: syncline, PgQ and its queue,
# the audit log and its trigger function.
contenders_setup_sql() {
  cat <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION syncline;
CREATE EXTENSION pgq;
SELECT pgq.create_queue('q');
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  table_name text NOT NULL,
  op text NOT NULL,
  row_data jsonb NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO audit_log (table_name, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(OLD));
  ELSE
    INSERT INTO audit_log (table_name, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
  END IF;
  RETURN NULL;
END
$$;
SQL
}

capture_sql() {  # capture_sql KIND TABLE: attaches KIND's capture to TABLE
  case "$1" in
    syncline) echo "SELECT syncline.track('$2');" ;;
    quiet) echo "SELECT syncline.track('$2', '{\"notify\": false}');" ;;
    column) echo "SELECT syncline.track('$2', '{\"merge\": \"column\"}');" ;;
    pgq) echo "CREATE TRIGGER pgq_capture AFTER INSERT OR UPDATE OR DELETE ON $2
               FOR EACH ROW EXECUTE FUNCTION pgq.logutriga('q');" ;;
    audit) echo "CREATE TRIGGER audit_capture AFTER INSERT OR UPDATE OR DELETE ON $2
                 FOR EACH ROW EXECUTE FUNCTION audit_row();" ;;
  esac
}

log_table() {  # log_table DB KIND: the table KIND writes its changes to, if any
  case "$2" in
    syncline | quiet | column) echo syncline.rows ;;
    pgq) psql_q -d "$1" -c "SELECT queue_data_pfx || '_' || queue_cur_table FROM pgq.queue WHERE queue_name = 'q'" ;;
    audit) echo audit_log ;;
  esac
}

# The logical decoding contenders: slot_open creates the slot (and starts
# the consumer), slot_drain waits until the consumer has confirmed
# everything written so far (untimed), slot_close stops it and drops the
# slot, so that no sample leaves WAL retained for the next.
consumer_pid=""
slot_open() {  # slot_open DB KIND
  [ "$2" = slot ] || [ "$2" = consumer ] || return 0
  psql_q -d "$1" -c "SELECT pg_create_logical_replication_slot('bench', 'wal2json')" >/dev/null
  if [ "$2" = consumer ]; then
    # -F 0: report what it has written as flushed at once (the default waits
    # for a 10 s fsync interval); -s 1: send that every second.
    "$(pg_config --bindir)/pg_recvlogical" -d "$1" --slot bench --start --no-loop -f /dev/null -F 0 -s 1 \
      -o format-version=2 >/dev/null 2>"$work/recvlogical.err" &
    consumer_pid=$!
  fi
}
slot_drain() {  # slot_drain DB KIND
  [ "$2" = consumer ] || return 0
  local target i caught_up
  target="$(psql_q -d "$1" -c "SELECT pg_current_wal_lsn()")"
  for ((i = 0; i < 1200; i++)); do
    caught_up="$(psql_q -d "$1" -c "SELECT confirmed_flush_lsn >= '$target' FROM pg_replication_slots
                                      WHERE slot_name = 'bench'")"
    [ "$caught_up" != t ] || return 0
    if [ "$caught_up" != f ] || ! kill -0 "$consumer_pid" 2>/dev/null; then
      echo "bench: the slot or pg_recvlogical is gone" >&2
      cat "$work/recvlogical.err" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "pg_recvlogical did not catch up in 120 s" >&2
  return 1
}
slot_close() {  # slot_close DB KIND
  [ "$2" = slot ] || [ "$2" = consumer ] || return 0
  if [ "$2" = consumer ]; then
    slot_drain "$1" "$2"
    kill "$consumer_pid"
    wait "$consumer_pid" || true
    consumer_pid=""
    local i
    for ((i = 0; i < 100; i++)); do  # until its WAL sender has let go of the slot
      [ "$(psql_q -d "$1" -c "SELECT active FROM pg_replication_slots WHERE slot_name = 'bench'")" = t ] || break
      sleep 0.1
    done
  fi
  psql_q -d "$1" -c "SELECT pg_drop_replication_slot('bench')" >/dev/null
}

timed_ms() {  # timed_ms DB STATEMENT: the statement's time in ms (psql \timing)
  printf '\\timing on\n%s;\n' "$2" | psql_q -d "$1" | awk '/^Time:/ {print $2}'
}

# bulk_sample DB KIND: a new table with KIND's capture (and a new, empty
# log), then the timed INSERT ... SELECT of $rows rows and UPDATE of every
# row; prints "insert_ms update_ms".
bulk_sample() {
  local db="$1" kind="$2" t="bulk_$2" log ins upd
  psql_q -d "$db" >/dev/null <<SQL
SET client_min_messages = warning;
SELECT syncline.untrack(to_regclass(table_name)) FROM syncline.tracked_tables WHERE table_name = '$t';
DROP TABLE IF EXISTS $t;
CREATE TABLE $t $table_ddl;
$(capture_sql "$kind" "$t")
SQL
  log="$(log_table "$db" "$kind")"
  if [ "$kind" = pgq ] || [ "$kind" = audit ]; then psql_q -d "$db" -c "TRUNCATE $log"; fi
  psql_q -d "$db" -c "VACUUM ANALYZE ${log:-$t}" -c CHECKPOINT
  slot_open "$db" "$kind"
  ins="$(timed_ms "$db" "INSERT INTO $t $(rows_sql "$rows")")"
  slot_drain "$db" "$kind"
  psql_q -d "$db" -c "VACUUM ANALYZE $t" -c "VACUUM ANALYZE ${log:-$t}" -c CHECKPOINT
  upd="$(timed_ms "$db" "UPDATE $t SET n = n + 1")"
  slot_close "$db" "$kind"
  echo "$ins $upd"
}

# bulk_bench DB RUNS KIND...: fills bulk[insert_KIND] and bulk[update_KIND]
# with RUNS samples each, the order of the kinds rotating from run to run.
declare -A bulk=()
bulk_bench() {
  local db="$1" n="$2" run k kind ins upd line
  shift 2
  local kinds=("$@")
  for ((run = 0; run < n; run++)); do
    line=""
    for ((k = 0; k < ${#kinds[@]}; k++)); do
      kind="${kinds[$(((k + run) % ${#kinds[@]}))]}"
      read -r ins upd <<<"$(bulk_sample "$db" "$kind")"
      [ -n "$upd" ] || { echo "bulk $kind: no timing" >&2; return 1; }
      bulk[insert_$kind]+=" $ins" bulk[update_$kind]+=" $upd"
    done
    for kind in "${kinds[@]}"; do line+=" $kind ${bulk[insert_$kind]##* }/${bulk[update_$kind]##* }"; done
    log "  run $((run + 1)) insert/update ms:$line"
  done
}

# pgbench_bench DB KIND...: single-row insert (a new row, gen_random_uuid())
# and update (a random row of $rows by key), 1 and 4 clients, $pgbench_runs
# runs of $pgbench_seconds s; each kind its own tables; fills
# tps[OP_cCLIENTS_KIND] (OP ins or upd).
declare -A tps=()
pgbench_bench() {
  local db="$1" run clients op k kind v line blob
  shift
  local kinds=("$@")
  local pgbench
  pgbench="$(pg_config --bindir)/pgbench"
  {
    for kind in "${kinds[@]}"; do
      echo "CREATE TABLE ins_$kind $table_ddl; CREATE TABLE upd_$kind $table_ddl;"
      echo "INSERT INTO upd_$kind $(rows_sql "$rows");"
      capture_sql "$kind" "ins_$kind"
      capture_sql "$kind" "upd_$kind"
    done
    echo "VACUUM ANALYZE;"
  } | psql_q -d "$db" >/dev/null
  blob="\\x$(printf '%064d' 0 | tr 0 a)"
  for kind in "${kinds[@]}"; do
    echo "INSERT INTO ins_$kind VALUES (gen_random_uuid(), 1, 'text value for a new row, lorem ipsum', 0.75, '$blob');" \
      >"$work/ins_$kind.sql"
    printf '\\set k random(1, %d)\nUPDATE upd_%s SET n = n + 1 WHERE id = md5(:k::text)::uuid;\n' "$rows" "$kind" \
      >"$work/upd_$kind.sql"
  done
  for ((run = 0; run < pgbench_runs; run++)); do
    for clients in 1 4; do
      for op in ins upd; do
        line=""
        for ((k = 0; k < ${#kinds[@]}; k++)); do
          kind="${kinds[$(((k + run) % ${#kinds[@]}))]}"
          psql_q -d "$db" -c CHECKPOINT
          slot_open "$db" "$kind"
          v="$("$pgbench" -n -c "$clients" -j "$clients" -T "$pgbench_seconds" -f "$work/${op}_$kind.sql" "$db" \
            2>"$work/pgbench.err" | awk '/^tps/ {print $3; exit}')" || v=""
          [ -n "$v" ] || { echo "pgbench $op c$clients $kind failed:" >&2; cat "$work/pgbench.err" >&2; return 1; }
          slot_close "$db" "$kind"
          tps[${op}_c${clients}_$kind]+=" $v"
        done
        for kind in "${kinds[@]}"; do line+=" $kind ${tps[${op}_c${clients}_$kind]##* }"; done
        log "  run $((run + 1)) $op c$clients tps:$line"
      done
    done
  done
}
