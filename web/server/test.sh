#!/usr/bin/env bash
# The HTTP handler's tests, against a real PostgreSQL with the extension
# installed: run as `tests/pg/with_cluster.sh web/server/test.sh` from the
# repository root (PGHOST/PGPORT point at the throwaway cluster). The
# SQLite extension the tests use as a client is build/syncline.so
# (SYNCLINE_EXTENSION overrides it, without the .so).
set -euo pipefail
cd "$(dirname "$0")"
export SYNCLINE_EXTENSION="${SYNCLINE_EXTENSION:-$(cd ../.. && pwd)/build/syncline}"
# The locked dependencies, installed again only when the lockfile changed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
exec node --test test/*.test.js
