#!/usr/bin/env bash
# `make bench`: every syncline benchmark against its plain baseline, medians
# of several interleaved runs; writes bench/results.json and
# docs/benchmarks.md. Run inside tests/pg/with_cluster.sh after `make all
# pg-install`:
#
#   tests/pg/with_cluster.sh bench/run.sh
#
# Knobs (environment): BENCH_ROWS (100000), BENCH_CLONE_ROWS (1000000),
# BENCH_RUNS (5, the fast metrics), BENCH_SLOW_RUNS (3: the SQLite insert in
# 1,000 transactions, SQLite and PostgreSQL apply, pgbench, clone),
# BENCH_PGBENCH_SECONDS (3), BENCH_ONLY (a space-separated
# subset of: sqlite pg-capture pgbench pg-sync clone), SYNCLINE_BENCH_EXT /
# SYNCLINE_BENCH_CLI (the built extension and CLI; default build/).
set -euo pipefail
: "${PGHOST:?run inside tests/pg/with_cluster.sh (PGHOST is not set)}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rows="${BENCH_ROWS:-100000}"
clone_rows="${BENCH_CLONE_ROWS:-1000000}"
runs="${BENCH_RUNS:-5}"
slow_runs="${BENCH_SLOW_RUNS:-3}"
pgbench_seconds="${BENCH_PGBENCH_SECONDS:-3}"
only="${BENCH_ONLY:-sqlite pg-capture pgbench pg-sync clone}"
ext="${SYNCLINE_BENCH_EXT:-$root/build/syncline.so}"
cli="${SYNCLINE_BENCH_CLI:-$root/build/bin/syncline}"
pgbench="$(pg_config --bindir)/pgbench"
bench="$root/bench/build/sqlite_bench"
for f in "$ext" "$cli"; do
  [ -e "$f" ] || { echo "bench/run.sh: $f is missing; run make all pg-install first" >&2; exit 1; }
done
make -s -C bench >&2

work="$(mktemp -d /tmp/syncline-bench-XXXXXX)"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
: >"$results"
started="$(date +%s)"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
log() { echo "[$(date +%T) +$(($(date +%s) - started))s] $*" >&2; }
wants() { [[ " $only " == *" $1 "* ]]; }
psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# emit NAME UNIT "SAMPLES" "BASELINE SAMPLES": one raw result line; the
# report computes medians and ratios.
emit() {
  local name="$1" unit="$2" s b
  s="$(echo $3 | tr ' ' ',')" b="$(echo $4 | tr ' ' ',')"
  echo "{\"name\":\"$name\",\"unit\":\"$unit\",\"samples\":[$s],\"baseline_samples\":[$b]}" >>"$results"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

table_ddl="(id uuid PRIMARY KEY, n integer, s text, r double precision, b bytea)"
# The same rows the SQLite side generates, in shape: a uuid key, an integer,
# ~40 characters of text, a real, a 32-byte blob.
rows_sql() {  # rows_sql COUNT
  echo "SELECT md5(i::text)::uuid, i, 'text value for row ' || i || ', lorem ipsum', i * 0.5 + 0.25,
        decode(md5(i::text) || md5((-i)::text), 'hex') FROM generate_series(1, $1) i"
}

# ------------------------------------------------------------------ SQLite
if wants sqlite; then
  log "SQLite: capture overhead, storage, pull ($runs runs), insert in 1,000 transactions, apply ($slow_runs runs) of $rows rows"
  "$bench" sqlite --ext "$ext" --dir "$work" --rows "$rows" --runs "$runs" --slow-runs "$slow_runs" >>"$results"
fi

# ------------------------------------------------------ PostgreSQL capture
if wants pg-capture; then
  log "PostgreSQL: bulk insert and update of $rows rows ($runs runs)"
  createdb bench_capture
  psql_q -d bench_capture -c "CREATE EXTENSION syncline"
  declare -A bulk=()
  for ((run = 0; run < runs; run++)); do
    order=(plain tracked)
    ((run % 2)) && order=(tracked plain)
    for kind in "${order[@]}"; do
      track=""
      [ "$kind" = tracked ] && track="SELECT syncline.track('bulk_tracked');"
      times="$(psql_q -d bench_capture <<SQL | awk '/^Time:/ {print $2}'
SET client_min_messages = warning;
SELECT syncline.untrack(to_regclass(table_name)) FROM syncline.tracked_tables WHERE table_name = 'bulk_tracked';
DROP TABLE IF EXISTS bulk_$kind;
CREATE TABLE bulk_$kind $table_ddl;
$track
VACUUM ANALYZE syncline.rows;
CHECKPOINT;
\\timing on
INSERT INTO bulk_$kind $(rows_sql "$rows");
\\timing off
VACUUM ANALYZE bulk_$kind;
VACUUM ANALYZE syncline.rows;
CHECKPOINT;
\\timing on
UPDATE bulk_$kind SET n = n + 1;
\\timing off
SQL
)"
      read -r ins upd <<<"$(echo $times)"
      bulk[insert_$kind]+=" $ins" bulk[update_$kind]+=" $upd"
    done
    log "  run $((run + 1)): insert ${bulk[insert_tracked]##* } / ${bulk[insert_plain]##* } ms, update ${bulk[update_tracked]##* } / ${bulk[update_plain]##* } ms (tracked / plain)"
  done
  emit pg.bulk_insert ms "${bulk[insert_tracked]}" "${bulk[insert_plain]}"
  emit pg.bulk_update ms "${bulk[update_tracked]}" "${bulk[update_plain]}"
  psql_q -d bench_capture -c "SELECT syncline.untrack('bulk_tracked')" >/dev/null
  dropdb bench_capture
fi

# ------------------------------------------------------------------ pgbench
if wants pgbench; then
  log "PostgreSQL: pgbench single-row insert/update, 1 and 4 clients, $slow_runs runs of ${pgbench_seconds}s"
  createdb bench_pgbench
  {
    echo "SET client_min_messages = warning; CREATE EXTENSION syncline;"
    for t in plain quiet loud; do
      echo "CREATE TABLE ins_$t $table_ddl; CREATE TABLE upd_$t $table_ddl;"
      echo "INSERT INTO upd_$t $(rows_sql "$rows");"
    done
    for op in ins upd; do
      echo "SELECT syncline.track('${op}_quiet', '{\"notify\": false}'); SELECT syncline.track('${op}_loud');"
    done
    echo "VACUUM ANALYZE;"
  } | psql_q -d bench_pgbench >/dev/null
  blob="\\x$(printf '%064d' 0 | tr 0 a)"
  for t in plain quiet loud; do
    echo "INSERT INTO ins_$t VALUES (gen_random_uuid(), 1, 'text value for a new row, lorem ipsum', 0.75, '$blob');" \
      >"$work/ins_$t.sql"
    printf '\\set k random(1, %d)\nUPDATE upd_%s SET n = n + 1 WHERE id = md5(:k::text)::uuid;\n' "$rows" "$t" \
      >"$work/upd_$t.sql"
  done
  declare -A tps=()
  tables=(plain quiet loud)
  for ((run = 0; run < slow_runs; run++)); do
    for clients in 1 4; do
      for op in ins upd; do
        for ((k = 0; k < 3; k++)); do
          t="${tables[$(((k + run) % 3))]}"  # rotate the order from run to run
          psql_q -d bench_pgbench -c CHECKPOINT
          v="$("$pgbench" -n -c "$clients" -j "$clients" -T "$pgbench_seconds" -f "$work/${op}_$t.sql" bench_pgbench \
            2>"$work/pgbench.err" | awk '/^tps/ {print $3; exit}')"
          [ -n "$v" ] || { cat "$work/pgbench.err" >&2; exit 1; }
          tps[${op}_c${clients}_$t]+=" $v"
        done
        log "  run $((run + 1)) $op c$clients: plain ${tps[${op}_c${clients}_plain]##* } quiet ${tps[${op}_c${clients}_quiet]##* } loud ${tps[${op}_c${clients}_loud]##* } tps"
      done
    done
  done
  for clients in 1 4; do
    for op in ins upd; do
      word=insert
      [ $op = upd ] && word=update
      emit "pg.pgbench_${word}_c${clients}_notify_off" tps "${tps[${op}_c${clients}_quiet]}" "${tps[${op}_c${clients}_plain]}"
      emit "pg.pgbench_${word}_c${clients}_notify_on" tps "${tps[${op}_c${clients}_loud]}" "${tps[${op}_c${clients}_plain]}"
    done
  done
  dropdb bench_pgbench
fi

# --------------------------------------------------- PostgreSQL pull, apply
if wants pg-sync; then
  log "PostgreSQL: pull ($runs runs) and apply ($slow_runs runs) of $rows rows"
  createdb bench_pull
  createdb bench_apply
  "$bench" pg --ext "$ext" --dir "$work" --rows "$rows" --runs "$runs" --apply-runs "$slow_runs" \
    --pull-db "dbname=bench_pull" --apply-db "dbname=bench_apply" >>"$results"
  dropdb bench_pull
  dropdb bench_apply
fi

# -------------------------------------------------------------- end to end
# clone into an empty file, against \copy to a file plus a plain SQLite bulk
# load of it; wall time and peak RSS from /usr/bin/time.
clone_db() {  # clone_db DATABASE COUNT
  createdb "$1"
  psql_q -d "$1" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION syncline;
CREATE TABLE items $table_ddl;
SELECT syncline.track('items');
INSERT INTO items $(rows_sql "$2");
VACUUM ANALYZE items;
VACUUM ANALYZE syncline.rows;
CHECKPOINT;
SQL
}
measure() {  # measure OUT COMMAND...: appends "seconds KiB" to OUT.tmp
  local out="$1"
  shift
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >/dev/null 2>"$work/cmd.err" ||
    { cat "$work/cmd.err" "$work/time.txt" >&2; return 1; }
  cat "$work/time.txt" >>"$out.tmp"
}
count_rows() { sqlite3 "$1" "SELECT count(*) FROM items"; }
clone_bench() {  # clone_bench DATABASE COUNT LABEL RUNS
  local db="$1" count="$2" label="$3" n="$4" c_time="" c_rss="" b_time="" b_rss="" run
  for ((run = 0; run < n; run++)); do
    for step in $( ((run % 2)) && echo "base clone" || echo "clone base"); do
      rm -f "$work"/clone.db* "$work"/base.db* "$work/items.copy" "$work"/*.tmp
      if [ $step = clone ]; then
        measure "$work/c" "$cli" clone --server "dbname=$db" --db "$work/clone.db" --extension "$ext" -q
        [ "$(count_rows "$work/clone.db")" = "$count" ] || { echo "clone: wrong row count" >&2; exit 1; }
        read -r t m <"$work/c.tmp"
        c_time+=" $t" c_rss+=" $(awk -v k="$m" 'BEGIN {printf "%.1f", k / 1024}')"
      else
        measure "$work/b" psql -X -q -d "$db" -c "\\copy (SELECT id, n, s, r, b FROM items) TO '$work/items.copy'"
        measure "$work/b" "$bench" load-copy --file "$work/items.copy" --db "$work/base.db"
        [ "$(count_rows "$work/base.db")" = "$count" ] || { echo "baseline: wrong row count" >&2; exit 1; }
        b_time+=" $(awk '{s += $1} END {printf "%.2f", s}' "$work/b.tmp")"
        b_rss+=" $(awk '$2 > m {m = $2} END {printf "%.1f", m / 1024}' "$work/b.tmp")"
      fi
    done
    log "  $label run $((run + 1)): clone ${c_time##* } s, ${c_rss##* } MiB; baseline ${b_time##* } s, ${b_rss##* } MiB"
  done
  rates() { for t in $1; do awk -v t="$t" -v c="$count" 'BEGIN {printf "%.0f ", c / t}'; done; }
  emit "e2e.clone_${label}_time" s "$c_time" "$b_time"
  emit "e2e.clone_${label}_rate" rows/s "$(rates "$c_time")" "$(rates "$b_time")"
  emit "e2e.clone_${label}_peak_rss" MiB "$c_rss" "$b_rss"
}
if wants clone; then
  log "End to end: building the $clone_rows-row and $rows-row server tables"
  clone_db bench_clone_big "$clone_rows"
  clone_db bench_clone_small "$rows"
  big_label="$((clone_rows / 1000))k" small_label="$((rows / 1000))k"
  [ "$clone_rows" = 1000000 ] && big_label=1m
  log "End to end: clone of $rows rows ($slow_runs runs)"
  clone_bench bench_clone_small "$rows" "$small_label" "$slow_runs"
  log "End to end: clone of $clone_rows rows ($slow_runs runs)"
  clone_bench bench_clone_big "$clone_rows" "$big_label" "$slow_runs"
  dropdb bench_clone_big
  dropdb bench_clone_small
fi

# ------------------------------------------------------------------- report
elapsed=$(($(date +%s) - started))
python3 "$root/bench/report.py" --results "$results" --json "$root/bench/results.json" \
  --markdown "$root/docs/benchmarks.md" \
  --fact "nproc=$(nproc)" \
  --fact "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
  --fact "memory=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)" \
  --fact "kernel=$(uname -sr)" \
  --fact "sqlite=$("$bench" version)" \
  --fact "postgresql=$(psql_q -c 'SHOW server_version')" \
  --fact "pg_settings=fsync=$(psql_q -c 'SHOW fsync'), synchronous_commit=$(psql_q -c 'SHOW synchronous_commit'), shared_buffers=$(psql_q -c 'SHOW shared_buffers')" \
  --fact "gxx=$(g++ --version | head -1)" \
  --fact "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
  --fact "load=$load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end" \
  --fact "runtime=$elapsed" \
  --fact "rows=$rows" --fact "clone_rows=$clone_rows" --fact "runs=$runs" --fact "slow_runs=$slow_runs" \
  --fact "pgbench_seconds=$pgbench_seconds"
log "done in ${elapsed}s: bench/results.json, docs/benchmarks.md"
