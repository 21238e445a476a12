#!/usr/bin/env bash
# Single-row insert throughput with pgbench: a plain table, a tracked table
# without NOTIFY and a tracked table with NOTIFY (the default), CLIENTS
# clients, RUNS runs of SECONDS each, median TPS and the ratio to plain.
# Run inside tests/pg/with_cluster.sh (after make pg-install).
set -euo pipefail
clients="${CLIENTS:-4}" runs="${RUNS:-3}" seconds="${SECONDS_PER_RUN:-8}"
pgbench="$(pg_config --bindir)/pgbench"
createdb bench
psql -q -d bench -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION syncline;
CREATE TABLE plain (id uuid PRIMARY KEY, n int, s text, r float8, b bytea);
CREATE TABLE quiet (LIKE plain INCLUDING ALL);
CREATE TABLE loud (LIKE plain INCLUDING ALL);
SELECT syncline.track('quiet', '{"notify": false}');
SELECT syncline.track('loud');
SQL
script="$(mktemp)"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A tps
for table in plain quiet loud; do
  echo "INSERT INTO $table VALUES (gen_random_uuid(), 1, 'text', 0.5, '\\x00ff');" >"$script"
  results=()
  for ((run = 0; run < runs; run++)); do
    results+=("$("$pgbench" -n -c "$clients" -j "$clients" -T "$seconds" -f "$script" bench 2>/dev/null |
      awk '/^tps/ {print $3; exit}')")
  done
  tps[$table]="$(printf '%s\n' "${results[@]}" | median)"
  echo "$table: runs ${results[*]} -> median ${tps[$table]} tps"
done
awk -v p="${tps[plain]}" -v q="${tps[quiet]}" -v l="${tps[loud]}" 'BEGIN {
  printf "tracked, notify off: %.2fx plain TPS\ntracked, notify on:  %.2fx plain TPS\n", q / p, l / p }'
rm -f "$script"
