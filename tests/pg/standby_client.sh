#!/usr/bin/env bash
# The CLI with a read server (docs/client.md, "Read servers"): clone and sync
# pull from a hot standby while writes go to the primary; run inside
# tests/pg/with_standby.sh. TAP output; exits non-zero when a test fails.
#
# Every wait is for a condition, with a bound: replay catching up, replay
# paused, the client's query showing on the standby.
set -euo pipefail
cd "$(dirname "$0")/../.."
cli="${SYNCLINE_CLI:-$PWD/build/bin/syncline}"
export SYNCLINE_EXTENSION="${SYNCLINE_EXTENSION:-$PWD/build/syncline}"
db=t_client
P=(psql -X -At -q -v ON_ERROR_STOP=1 -d "$db")
S=(psql -X -At -q -v ON_ERROR_STOP=1 -h "$SYNCLINE_STANDBY_HOST" -p "$SYNCLINE_STANDBY_PORT" -d "$db")
primary="host=$PGHOST port=$PGPORT dbname=$db user=app"
standby="host=$SYNCLINE_STANDBY_HOST port=$SYNCLINE_STANDBY_PORT dbname=$db user=app"
tmp="$(mktemp -d /tmp/syncline-standby-client-XXXXXX)"
bg_pid=""
cleanup() {
  [ -z "$bg_pid" ] || kill "$bg_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# shellcheck source=tests/pg/tap.sh
source tests/pg/tap.sh
p() { "${P[@]}" "$@"; }
s() { "${S[@]}" "$@"; }
wait_replay() { "$SYNCLINE_WAIT_REPLAY"; }
file="$tmp/device.db"
# The CLI against the primary and the standby; its stderr in $tmp/err.
sync_cli() { "$cli" "$@" --db "$file" --server "$primary" --read-server "$standby" -q 2>"$tmp/err"; }
rows_of_file() { sqlite3 "$file" "SELECT coalesce(group_concat(id || ':' || body, ','), '') FROM (SELECT * FROM items ORDER BY id)"; }
rows_of_primary() { p -c "SELECT coalesce(string_agg(id || ':' || body, ',' ORDER BY id), '') FROM items"; }
# Waits until the standby shows a query of the client's containing $2, in
# state $1 ('active': running; '%': running or the last one run).
wait_for_client_query() {
  wait_for 1 s -c "SELECT count(*) FROM pg_catalog.pg_stat_activity
                   WHERE usename = 'app' AND state LIKE '$1' AND query LIKE '%$2%'"
}

createdb "$db"
p >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION syncline;
CREATE ROLE app LOGIN;
CREATE TABLE items (id int PRIMARY KEY, body text);
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO app;
SELECT syncline.track('items');
INSERT INTO items SELECT g, 'v1' FROM generate_series(1, 100) g;
-- Rows whose reading takes 50 ms each (row-level security runs as the
-- client's role): a pull of them lasts long enough to meet a recovery conflict.
CREATE TABLE slow (id int PRIMARY KEY);
GRANT SELECT ON slow TO app;
CREATE FUNCTION slow_check() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_catalog.pg_sleep(0.05);
  RETURN true;
END $$;
ALTER TABLE slow ENABLE ROW LEVEL SECURITY;
CREATE POLICY slow_read ON slow FOR SELECT USING (slow_check());
SELECT syncline.track('slow');
SQL
wait_replay

echo "# clone and sync from the standby, writes on the primary"
is "$(sync_cli clone >/dev/null && echo ok)" ok "clone with a read server"
is "$(rows_of_file | tr ',' '\n' | wc -l)" 100 "... brings the primary's rows, read on the standby"
is "$(p -c "SELECT count(*) FROM syncline.devices WHERE pull_cursor IS NOT NULL")" 1 \
  "... and the device reports its position to the primary"
p -c "INSERT INTO items SELECT g, 'v1' FROM generate_series(101, 105) g" \
  -c "UPDATE items SET body = 'v2' WHERE id = 1" -c "DELETE FROM items WHERE id = 2"
answer="$(sync_cli sync --json)"
like "$answer" '*"pulled":7*' "a sync right after writes on the primary pulls them from the standby"
is "$(rows_of_file)" "$(rows_of_primary)" "... and the file matches the primary"
sqlite3 -cmd ".load $SYNCLINE_EXTENSION" "$file" "INSERT INTO items VALUES (500, 'from the device')"
like "$(sync_cli sync --json)" '*"pushed":1*' "a local write is pushed"
is "$(p -c "SELECT body FROM items WHERE id = 500")" "from the device" "... to the primary"

echo "# the client waits for the standby to replay what the primary had"
s -c "SELECT pg_catalog.pg_wal_replay_pause()" >/dev/null
wait_for paused s -c "SELECT pg_catalog.pg_get_wal_replay_pause_state()"
p -c "INSERT INTO items VALUES (106, 'while paused')"
sync_cli sync --json >"$tmp/out" &
bg_pid=$!
wait_for_client_query % pg_last_wal_replay_lsn
is "$(rows_of_file | grep -c '106:' || true)" 0 "the client waits while the standby lags"
s -c "SELECT pg_catalog.pg_wal_replay_resume()" >/dev/null
wait "$bg_pid"
bg_pid=""
like "$(cat "$tmp/out")" '*"pulled":1*' "once replay resumes it pulls the new row"
is "$(rows_of_file)" "$(rows_of_primary)" "... and the file matches the primary"

echo "# a cursor the standby has not reached: retried, then reported"
s -c "SELECT pg_catalog.pg_wal_replay_pause()" >/dev/null
wait_for paused s -c "SELECT pg_catalog.pg_get_wal_replay_pause_state()"
p -c "INSERT INTO items VALUES (107, 'ahead')"
"$cli" sync --db "$file" --server "$primary" -q >/dev/null
status=0
sync_cli sync >/dev/null || status=$?
sed -n '1p;$p' "$tmp/err" | cut -c1-250 | sed 's/^/# /'
is "$status" 1 "a sync from a standby behind the file's cursor fails once retries run out"
like "$(cat "$tmp/err")" "*has not replayed up to the cursor yet*retry 5 of 5*has not replayed up to the cursor yet*" \
  "... after five retries, with the server's message"
s -c "SELECT pg_catalog.pg_wal_replay_resume()" >/dev/null
wait_replay
is "$(sync_cli sync >/dev/null && echo ok)" ok "after replay catches up the same sync succeeds"

echo "# a pull a recovery conflict cancels is tried again"
s -c "ALTER SYSTEM SET max_standby_streaming_delay = '10ms'" -c "SELECT pg_catalog.pg_reload_conf()" >/dev/null
wait_for 10ms s -c "SHOW max_standby_streaming_delay"
p -c "INSERT INTO slow SELECT generate_series(1, 40)"
sync_cli sync --json >"$tmp/out" &
bg_pid=$!
wait_for_client_query active pull_since
# Replaying this lock waits for the standby's readers of the table, then
# cancels them.
p -c "BEGIN" -c "LOCK TABLE slow IN ACCESS EXCLUSIVE MODE" -c "COMMIT"
status=0
wait "$bg_pid" || status=$?
bg_pid=""
head -n 1 "$tmp/err" | cut -c1-250 | sed 's/^/# /'
is "$status" 0 "the sync succeeds"
like "$(cat "$tmp/err")" "*conflict with recovery*retry 1 of 5*" "... after a pull cancelled by a recovery conflict"
is "$(sqlite3 "$file" "SELECT count(*) FROM slow")" 40 "... and the file has the rows"

echo "# sync --watch: LISTEN on the primary, pulls from the standby"
"$cli" sync --watch --db "$file" --server "$primary" --read-server "$standby" -q >/dev/null 2>"$tmp/watch.err" &
bg_pid=$!
wait_for 1 p -c "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE usename = 'app' AND query = 'LISTEN syncline'"
p -c "INSERT INTO items VALUES (108, 'notified')"
wait_for 1 sqlite3 "$file" "SELECT count(*) FROM items WHERE id = 108"
is "$(rows_of_file)" "$(rows_of_primary)" "a change on the primary reaches the watching file"
kill -TERM "$bg_pid"
status=0
wait "$bg_pid" || status=$?
bg_pid=""
is "$status" 0 "... which stops cleanly"

echo "# a read server that is not a replica of the server"
createdb other
psql -X -q -d other -c "CREATE EXTENSION syncline" -c "GRANT ALL ON SCHEMA public TO app" >/dev/null
status=0
"$cli" sync --db "$file" --server "$primary" --read-server "host=$PGHOST port=$PGPORT dbname=other user=app" -q \
  2>"$tmp/err" || status=$?
is "$status" 1 "is refused"
like "$(cat "$tmp/err")" "*the read server is syncline node *: it is not a replica of the server*" "... saying why"

finish
