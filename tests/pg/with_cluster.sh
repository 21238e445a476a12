#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster: initdb in a temp
# dir, listen only on a Unix socket there, run "$@" with PGHOST/PGPORT/PGUSER
# set, then stop the cluster and remove it. initdb and pg_ctl refuse to run
# as root, so as root the cluster belongs to the "postgres" user.
set -euo pipefail
bindir="$(pg_config --bindir)"
dir="$(mktemp -d /tmp/syncline-pg-XXXXXX)"
run_as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  run_as=(runuser -u postgres --)
fi
cleanup() {
  "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 -A trust >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log"; exit 1; }
port=$((20000 + RANDOM % 20000))
"${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=off -c max_connections=60" start >/dev/null ||
  { cat "$dir/server.log"; exit 1; }
# Tests that stop and restart the server (offline clients) use these:
#   $SYNCLINE_PG_CTL stop -m fast ; $SYNCLINE_PG_CTL start -w
export PGHOST="$dir" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres SYNCLINE_PG_LOG="$dir/server.log"
export SYNCLINE_PG_CTL="${run_as[*]} $bindir/pg_ctl -D $dir/data -l $dir/server.log -o \"-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=off -c max_connections=60\""
"$@"
