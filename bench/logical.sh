#!/usr/bin/env bash
# The logical decoding peer (wal2json), in a cluster of its own: bench/run.sh
# runs this inside a second tests/pg/with_cluster.sh, which this switches to
# wal_level=logical (ALTER SYSTEM, then a restart through $SYNCLINE_PG_CTL).
# wal_level=logical writes more WAL for every table, so plain and syncline
# are measured again here, interleaved with the peer, and the peer's ratios
# are to this cluster's plain. Same workloads as the main cluster (bulk and
# pgbench, bench/pg_workloads.sh); the slot without a consumer and the slot
# read by pg_recvlogical are two contenders. Result lines go to
# $BENCH_RESULTS, the cluster's settings to $BENCH_FACTS.
set -euo pipefail
: "${SYNCLINE_PG_CTL:?run inside tests/pg/with_cluster.sh}"
: "${BENCH_RESULTS:?set by bench/run.sh}" "${BENCH_WORK:?set by bench/run.sh}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rows="${BENCH_ROWS:-100000}"
runs="${BENCH_RUNS:-5}"
pgbench_runs="${BENCH_PGBENCH_RUNS:-5}"
pgbench_seconds="${BENCH_PGBENCH_SECONDS:-3}"
results="$BENCH_RESULTS" work="$BENCH_WORK"
started="${BENCH_STARTED:-$(date +%s)}"
log() { echo "[$(date +%T) +$(($(date +%s) - started))s] $*" >&2; }
. "$root/bench/pg_workloads.sh"

# This PostgreSQL only loads output plugins named in output_plugin_libraries
# (pgoutput and test_decoding by default).
psql_q -c "ALTER SYSTEM SET wal_level = logical"
if [ -n "$(psql_q -c "SELECT 1 FROM pg_settings WHERE name = 'output_plugin_libraries'")" ]; then
  psql_q -c "ALTER SYSTEM SET output_plugin_libraries = pgoutput, test_decoding, wal2json"
fi
eval "$SYNCLINE_PG_CTL restart -m fast -w" >/dev/null
[ "$(psql_q -c 'SHOW wal_level')" = logical ] || { echo "bench/logical.sh: wal_level is not logical" >&2; exit 1; }
if [ -n "${BENCH_FACTS:-}" ]; then
  echo "fsync=$(psql_q -c 'SHOW fsync'), synchronous_commit=$(psql_q -c 'SHOW synchronous_commit')," \
    "shared_buffers=$(psql_q -c 'SHOW shared_buffers'), wal_level=$(psql_q -c 'SHOW wal_level')" >"$BENCH_FACTS"
fi

log "  logical: bulk insert and update of $rows rows ($runs runs)"
createdb bench_logical
contenders_setup_sql | psql_q -d bench_logical >/dev/null
bulk_bench bench_logical "$runs" plain syncline slot consumer
for op in insert update; do
  emit "pg.logical.bulk_$op" ms "${bulk[${op}_syncline]}" "${bulk[${op}_plain]}" \
    wal2json_slot="${bulk[${op}_slot]}" wal2json_consumer="${bulk[${op}_consumer]}"
done
dropdb bench_logical

log "  logical: pgbench single-row insert/update, 1 and 4 clients, $pgbench_runs runs of ${pgbench_seconds}s"
createdb bench_logical
contenders_setup_sql | psql_q -d bench_logical >/dev/null
pgbench_bench bench_logical plain quiet slot consumer
for clients in 1 4; do
  for op in ins upd; do
    word=insert
    [ $op = upd ] && word=update
    emit "pg.logical.pgbench_${word}_c${clients}" tps "${tps[${op}_c${clients}_quiet]}" "${tps[${op}_c${clients}_plain]}" \
      wal2json_slot="${tps[${op}_c${clients}_slot]}" wal2json_consumer="${tps[${op}_c${clients}_consumer]}"
  done
done
dropdb bench_logical
