#!/usr/bin/env bash
# `make bench`: every syncline benchmark against its plain baseline and,
# for capture, against its peers (PgQ, a hand-written audit trigger, logical
# decoding with wal2json, SQLite's session extension), medians of several
# interleaved runs; writes bench/results.json and docs/benchmarks.md. Run
# inside tests/pg/with_cluster.sh after `make all pg-install`:
#
#   tests/pg/with_cluster.sh bench/run.sh
#
# The peers need the Debian packages postgresql-15-pgq3 and
# postgresql-15-wal2json (and libsqlite3 built with SQLITE_ENABLE_SESSION,
# as Debian's is); the instruction counts need valgrind.
#
# Knobs (environment): BENCH_ROWS (100000), BENCH_CLONE_ROWS (1000000),
# BENCH_RUNS (5, the fast metrics), BENCH_SLOW_RUNS (3: the SQLite insert in
# 1,000 transactions, SQLite and PostgreSQL apply, clone), BENCH_PGBENCH_RUNS
# (5), BENCH_PGBENCH_SECONDS (3), BENCH_CG_STATEMENTS (1000, the statements
# a callgrind run counts), BENCH_ONLY (a space-separated subset of: sqlite
# wasm pg-capture pg-column pgbench instructions logical pg-sync gc clone;
# pg-column a column-merge table against row mode; logical is the
# second cluster, wal_level=logical, bulk and pgbench; gc the metadata bytes
# per live row after deleting 90 % of BENCH_ROWS, before and after garbage
# collection, both engines), SYNCLINE_BENCH_EXT /
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
pgbench_runs="${BENCH_PGBENCH_RUNS:-5}"
cg_statements="${BENCH_CG_STATEMENTS:-1000}"
only="${BENCH_ONLY:-sqlite wasm pg-capture pg-column pgbench instructions logical pg-sync gc clone}"
ext="${SYNCLINE_BENCH_EXT:-$root/build/syncline.so}"
cli="${SYNCLINE_BENCH_CLI:-$root/build/bin/syncline}"
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
# psql_q, emit, table_ddl, rows_sql and the capture workloads:
. "$root/bench/pg_workloads.sh"
. "$root/bench/instructions.sh"
. "$root/bench/gc.sh"

# ------------------------------------------------------------------ SQLite
if wants sqlite; then
  log "SQLite: capture overhead, storage, pull ($runs runs), insert in 1,000 transactions, apply ($slow_runs runs) of $rows rows"
  "$bench" sqlite --ext "$ext" --dir "$work" --rows "$rows" --runs "$runs" --slow-runs "$slow_runs" >>"$results"
  log "SQLite: column-merge table against row mode, one-column update of $rows rows and metadata ($runs runs)"
  "$bench" sqlite-column --ext "$ext" --dir "$work" --rows "$rows" --runs "$runs" >>"$results"
fi

# ------------------------------------------------------------ WebAssembly
if wants wasm; then
  log "SQLite as WebAssembly in Node: insert, update, pull, apply of $rows rows ($runs runs), in memory"
  node bench/wasm.mjs --rows "$rows" --runs "$runs" >>"$results"
fi

# ------------------------------------------------------ PostgreSQL capture
# syncline against its peers (bench/pg_workloads.sh), all under this
# cluster's wal_level (replica, the default); the logical decoding peers
# run in their own cluster (the logical section).
if wants pg-capture; then
  log "PostgreSQL: bulk insert and update of $rows rows ($runs runs): plain, syncline, pgq, audit"
  createdb bench_capture
  contenders_setup_sql | psql_q -d bench_capture >/dev/null
  bulk_bench bench_capture "$runs" plain syncline pgq audit
  for op in insert update; do
    emit "pg.bulk_$op" ms "${bulk[${op}_syncline]}" "${bulk[${op}_plain]}" \
      pgq="${bulk[${op}_pgq]}" audit="${bulk[${op}_audit]}"
  done
  dropdb bench_capture
fi

# ------------------------------------------------- PostgreSQL column merge
# A column-merge table against the same table in row mode (docs/column-merge.md):
# the bulk UPDATE above changes one column; then each table's metadata per row.
if wants pg-column; then
  log "PostgreSQL: column-merge table against row mode, bulk insert and one-column update of $rows rows ($runs runs)"
  createdb bench_column
  contenders_setup_sql | psql_q -d bench_column >/dev/null
  bulk=()
  bulk_bench bench_column "$runs" syncline column
  emit pg.column_merge_update ms "${bulk[update_column]}" "${bulk[update_syncline]}"
  metadata_bytes() {  # after the last run's update
    psql_q -d bench_column -c "SELECT round(avg(pg_column_size(r.*)), 1) FROM syncline.rows r
                                 JOIN syncline.tables t USING (tid) WHERE t.table_name = 'bulk_$1'"
  }
  emit pg.column_merge_metadata bytes/row "$(metadata_bytes column)" "$(metadata_bytes syncline)"
  dropdb bench_column
fi

# ------------------------------------------------------------------ pgbench
if wants pgbench; then
  log "PostgreSQL: pgbench single-row insert/update, 1 and 4 clients, $pgbench_runs runs of ${pgbench_seconds}s:" \
    "plain, syncline NOTIFY off (quiet) and on, pgq, audit"
  createdb bench_pgbench
  contenders_setup_sql | psql_q -d bench_pgbench >/dev/null
  pgbench_bench bench_pgbench plain quiet syncline pgq audit
  for clients in 1 4; do
    for op in ins upd; do
      word=insert
      [ $op = upd ] && word=update
      peers=(pgq="${tps[${op}_c${clients}_pgq]}" audit="${tps[${op}_c${clients}_audit]}")
      emit "pg.pgbench_${word}_c${clients}_notify_off" tps "${tps[${op}_c${clients}_quiet]}" \
        "${tps[${op}_c${clients}_plain]}" "${peers[@]}"
      emit "pg.pgbench_${word}_c${clients}_notify_on" tps "${tps[${op}_c${clients}_syncline]}" \
        "${tps[${op}_c${clients}_plain]}" "${peers[@]}"
    done
  done
  dropdb bench_pgbench
fi

# ------------------------------------------------------------ instructions
# The same single-row statements as pgbench, counted in instructions
# (bench/instructions.sh): repeatable where the timings above are noisy.
if wants instructions; then
  if command -v valgrind >/dev/null; then
    log "PostgreSQL: instructions a single-row statement, callgrind, $cg_statements statements: plain, syncline, pgq, audit"
    instruction_counts "$cg_statements"
  else
    log "PostgreSQL: instructions skipped (valgrind is not installed)"
  fi
fi

# ------------------------------------------- logical decoding, own cluster
# wal_level=logical writes more WAL for everyone, so its peers run in a
# second throwaway cluster with plain and syncline measured again there.
logical_facts="$work/logical_facts"
if wants logical; then
  log "PostgreSQL, a second cluster with wal_level=logical: plain, syncline, wal2json slot, slot + pg_recvlogical"
  mkdir -p "$work/logical"
  BENCH_ROWS="$rows" BENCH_RUNS="$runs" BENCH_PGBENCH_RUNS="$pgbench_runs" BENCH_PGBENCH_SECONDS="$pgbench_seconds" \
    BENCH_RESULTS="$results" BENCH_WORK="$work/logical" BENCH_FACTS="$logical_facts" BENCH_STARTED="$started" \
    tests/pg/with_cluster.sh bench/logical.sh
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

# ------------------------------------------ metadata, garbage collection
# Sizes after deleting 90 % of the rows, before and after collecting the
# tombstones (bench/sqlite_gc.cc, bench/gc.sh): deterministic, one run each.
if wants gc; then
  log "Metadata per live row: $rows rows, 90 % deleted, before and after garbage collection," \
    "in place and compacted: SQLite, PostgreSQL"
  "$bench" sqlite-gc --ext "$ext" --dir "$work" --rows "$rows" >>"$results"
  pg_gc_sizes bench_gc VACUUM
  pg_gc_sizes bench_gc_full "VACUUM FULL"
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
logical_fact=()
[ ! -s "$logical_facts" ] || logical_fact=(--fact "logical_settings=$(cat "$logical_facts")")
python3 "$root/bench/report.py" --results "$results" --json "$root/bench/results.json" \
  --markdown "$root/docs/benchmarks.md" \
  --fact "nproc=$(nproc)" \
  --fact "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
  --fact "memory=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)" \
  --fact "kernel=$(uname -sr)" \
  --fact "sqlite=$("$bench" version)" \
  --fact "postgresql=$(psql_q -c 'SHOW server_version')" \
  --fact "pg_settings=fsync=$(psql_q -c 'SHOW fsync'), synchronous_commit=$(psql_q -c 'SHOW synchronous_commit'), shared_buffers=$(psql_q -c 'SHOW shared_buffers'), wal_level=$(psql_q -c 'SHOW wal_level')" \
  "${logical_fact[@]}" \
  --fact "pgq=$(dpkg-query -W -f '${Version}' postgresql-15-pgq3 2>/dev/null || echo '?')" \
  --fact "wal2json=$(dpkg-query -W -f '${Version}' postgresql-15-wal2json 2>/dev/null || echo '?')" \
  --fact "gxx=$(g++ --version | head -1)" \
  --fact "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
  --fact "load=$load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end" \
  --fact "runtime=$elapsed" \
  --fact "rows=$rows" --fact "clone_rows=$clone_rows" --fact "runs=$runs" --fact "slow_runs=$slow_runs" \
  --fact "pgbench_runs=$pgbench_runs" --fact "pgbench_seconds=$pgbench_seconds"
log "done in ${elapsed}s: bench/results.json, docs/benchmarks.md"
