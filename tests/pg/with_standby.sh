#!/usr/bin/env bash
# Runs a command against a throwaway primary and a hot standby streaming from
# it (pg_basebackup -R), both in one temp dir, each listening only on its own
# Unix socket there; then stops both and removes the dir. As in
# with_cluster.sh, as root the servers belong to the "postgres" user (initdb
# and pg_ctl refuse root).
#
# "$@" gets PGHOST/PGPORT/PGUSER/PGDATABASE (the primary),
# SYNCLINE_STANDBY_HOST/SYNCLINE_STANDBY_PORT, the server logs
# (SYNCLINE_PG_LOG, SYNCLINE_STANDBY_LOG), and SYNCLINE_WAIT_REPLAY: a command
# that returns once the standby has replayed everything the primary had
# written when it was called (it fails after SYNCLINE_REPLAY_TIMEOUT seconds,
# 30 unless set; a paused replay never catches up).
set -euo pipefail
bindir="$(pg_config --bindir)"
dir="$(mktemp -d /tmp/syncline-standby-XXXXXX)"
run_as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  run_as=(runuser -u postgres --)
fi
cleanup() {
  # The standby first: stopped second, it would wait for a primary to come back.
  "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/standby" -m immediate stop >/dev/null 2>&1 || true
  "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/primary" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "with_standby.sh: $1" >&2
  for log in "$dir"/*.log; do
    echo "--- $log" >&2
    tail -n 40 "$log" >&2
  done
  exit 1
}

port=$((20000 + RANDOM % 20000))
standby_port=$((port + 1))
# Settings on the command line, not in postgresql.conf: pg_basebackup copies
# that file, and the standby needs its own port. The standby's max_connections
# may not be below the primary's.
common="-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c max_connections=60"
"${run_as[@]}" "$bindir/initdb" -D "$dir/primary" -U postgres -E UTF8 --locale=C.UTF-8 -A trust \
  >"$dir/initdb.log" 2>&1 || fail "initdb failed"
# initdb -A trust already lets local replication connections in; said here
# so that the set-up does not depend on initdb's template.
echo "local replication all trust" >>"$dir/primary/pg_hba.conf"
"${run_as[@]}" "$bindir/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w \
  -o "$common -p $port -c wal_level=replica -c max_wal_senders=4 -c max_replication_slots=4" start >/dev/null ||
  fail "the primary did not start"

# A physical slot keeps the WAL the standby still needs, however slow it is.
"${run_as[@]}" "$bindir/pg_basebackup" -h "$dir" -p "$port" -U postgres -D "$dir/standby" -R -X stream \
  -C -S syncline_standby >"$dir/basebackup.log" 2>&1 || fail "pg_basebackup failed"
"${run_as[@]}" "$bindir/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w \
  -o "$common -p $standby_port -c hot_standby=on" start >/dev/null || fail "the standby did not start"

# Returns once the standby has replayed up to the primary's WAL write position
# as it is now. Bounded polling: never a fixed sleep.
cat >"$dir/wait_replay" <<EOF
#!/usr/bin/env bash
set -euo pipefail
target="\$(psql -X -At -h '$dir' -p $port -U postgres -d postgres -c 'SELECT pg_catalog.pg_current_wal_lsn()')"
deadline=\$((SECONDS + \${SYNCLINE_REPLAY_TIMEOUT:-30}))
until [ "\$(psql -X -At -h '$dir' -p $standby_port -U postgres -d postgres \\
          -c "SELECT pg_catalog.pg_last_wal_replay_lsn() >= '\$target'::pg_catalog.pg_lsn")" = t ]; do
  if [ \$SECONDS -ge \$deadline ]; then
    echo "wait_replay: the standby has not replayed up to \$target" >&2
    exit 1
  fi
  sleep 0.05
done
EOF
chmod 755 "$dir/wait_replay"

# pg_ctl -w returns once the standby accepts connections; it is in recovery
# from then on (checked, in case the standby.signal went missing).
deadline=$((SECONDS + 30))
until [ "$(psql -X -At -h "$dir" -p "$standby_port" -U postgres -d postgres \
  -c 'SELECT pg_catalog.pg_is_in_recovery()' 2>/dev/null)" = t ]; do
  [ $SECONDS -lt $deadline ] || fail "the standby does not accept connections in recovery"
  sleep 0.05
done
"$dir/wait_replay" || fail "the standby does not catch up"

export PGHOST="$dir" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
export SYNCLINE_STANDBY_HOST="$dir" SYNCLINE_STANDBY_PORT="$standby_port"
export SYNCLINE_PG_LOG="$dir/primary.log" SYNCLINE_STANDBY_LOG="$dir/standby.log"
export SYNCLINE_WAIT_REPLAY="$dir/wait_replay"
"$@"
