#!/usr/bin/env bash
# The PostgreSQL test suite; run inside tests/pg/with_cluster.sh. Each pgTAP
# file gets a fresh database with the extension (pulls only see committed
# work, so the files run in autocommit mode rather than one transaction),
# then the libpq suites run against the same cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0
for file in tests/pg/*.sql; do
  db="t_$(basename "$file" .sql)"
  createdb "$db"
  psql -q -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION syncline; CREATE EXTENSION pgtap;" >/dev/null
done
dbs=()
for file in tests/pg/*.sql; do dbs+=("$file"); done
# pg_prove takes one database: run each file against its own.
for file in "${dbs[@]}"; do
  db="t_$(basename "$file" .sql)"
  pg_prove -d "$db" "$file" || status=1
done
for suite in pg_tests e2e_tests sim_tests; do
  if [ -x "build/$suite" ]; then
    "build/$suite" || status=1
  fi
done
exit $status
