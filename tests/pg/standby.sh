#!/usr/bin/env bash
# Pulls from a hot standby (docs/postgres.md, "Read replicas"); run inside
# tests/pg/with_standby.sh. TAP output; exits non-zero when a test fails.
#
# Every wait is for a condition, with a bound: replay catching up
# ($SYNCLINE_WAIT_REPLAY), replay paused, a session holding its xid.
set -euo pipefail
db=t_standby
P=(psql -X -At -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$db")
S=(psql -X -At -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -h "$SYNCLINE_STANDBY_HOST" -p "$SYNCLINE_STANDBY_PORT"
  -d "$db")
tmp="$(mktemp -d /tmp/syncline-standby-test-XXXXXX)"
a_pid=""
cleanup() {
  exec 3>&-
  [ -z "$a_pid" ] || kill "$a_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=tests/pg/tap.sh
source "$(dirname "$0")/tap.sh"
wait_replay() { "$SYNCLINE_WAIT_REPLAY"; }
# The changes of every page from a cursor (NULL: the start), as one jsonb
# array, with the number of pages and the last cursor. Defined on the
# primary, it reaches the standby by replay.
walk() {
  local node="$1" cursor="$2" lim="$3"
  shift 3
  "$node" -c "SELECT pages || '|' || changes::text || '|' || cursor FROM walk($cursor, $lim)"
}
p() { "${P[@]}" "$@"; }
s() { "${S[@]}" "$@"; }
field() { cut -d'|' -f"$1" <<<"$2"; }
ids() { "${P[@]}" -c "SELECT coalesce(string_agg(c -> 'pk' ->> 'id', ',' ORDER BY o), '') FROM
                        jsonb_array_elements('$1'::jsonb) WITH ORDINALITY AS a(c, o)"; }

createdb "$db"
p >/dev/null <<'SQL'
CREATE EXTENSION syncline;
SET client_min_messages = warning;
CREATE TABLE notes (id int PRIMARY KEY, body text);
SELECT syncline.track('notes');
CREATE TABLE later (id int PRIMARY KEY);
CREATE FUNCTION walk(after text, lim int, OUT pages int, OUT changes jsonb, OUT cursor text) LANGUAGE plpgsql AS $$
DECLARE
  page jsonb;
BEGIN
  pages := 0;
  changes := '[]';
  cursor := after;
  LOOP
    page := syncline.pull_since(cursor, lim)::jsonb;
    pages := pages + 1;
    changes := changes || (page -> 'changes');
    cursor := page ->> 'cursor';
    EXIT WHEN NOT (page ->> 'has_more')::boolean;
  END LOOP;
END $$;
INSERT INTO notes SELECT g, 'v1' FROM generate_series(1, 30) g;
UPDATE notes SET body = 'v2' WHERE id % 6 = 0;
DELETE FROM notes WHERE id % 10 = 0;
SQL
wait_replay

echo "# parity with the primary once replay has caught up"
primary_full="$(walk p NULL 1000)"
standby_full="$(walk s NULL 1000)"
is "$(field 2 "$standby_full")" "$(field 2 "$primary_full")" "a full pull on the standby returns the primary's changes"
is "$(p -c "SELECT jsonb_array_length('$(field 2 "$primary_full")')")" 30 "... every row and tombstone"
standby_paged="$(walk s NULL 7)"
is "$(field 1 "$standby_paged")" 5 "the standby pages with its own cursors"
is "$(field 2 "$standby_paged")" "$(field 2 "$primary_full")" "... and its pages hold the same changes, in order"
c1="$(field 3 "$primary_full")"
is "$(field 2 "$(walk s "'$c1'" 1000)")" "[]" "a cursor the primary issued works on a standby that has caught up"
is "$(field 2 "$(walk p "'$(field 3 "$standby_paged")'" 1000)")" "[]" "a cursor the standby issued works on the primary"

echo "# a standby behind the cursor answers \"not yet\""
s -c "SELECT pg_catalog.pg_wal_replay_pause()" >/dev/null
wait_for paused s -c "SELECT pg_catalog.pg_get_wal_replay_pause_state()"
p -c "INSERT INTO notes SELECT g, 'v1' FROM generate_series(31, 35) g"
after_insert="$(walk p "'$c1'" 1000)"
c2="$(field 3 "$after_insert")"
is "$(ids "$(field 2 "$after_insert")")" "31,32,33,34,35" "the primary delivers the new rows"
c2_version="$(cut -d. -f1,2 <<<"${c2##*:}")"
not_yet="$(error_of s -c "SELECT syncline.pull_since('$c2')")"
echo "# $not_yet"
like "$not_yet" \
  "55000 syncline.pull_since: this replica has not replayed up to the cursor yet (cursor at ${c2_version} (timeline 1, WAL *), replayed up to WAL *); retry, or pull from the primary" \
  "a cursor past the standby's replay: 55000, not yet"
is "$(field 2 "$(walk s "'$c1'" 1000)")" "[]" "... while an older cursor still pulls what the standby has"
bogus="${c1%:*}:999999999.0"
like "$(error_of p -c "SELECT syncline.pull_since('$bogus')")" "22023 *was never issued by this database" \
  "on the primary a cursor past its horizon was never issued"
s -c "SELECT pg_catalog.pg_wal_replay_resume()" >/dev/null
wait_replay
is "$(error_of s -c "SELECT syncline.pull_since('$c2')")" "no error" "after replay resumes and catches up, the cursor works"
is "$(field 2 "$(walk s "'$c1'" 1000)")" "$(field 2 "$after_insert")" "... and the standby delivers the primary's new rows"

echo "# out-of-order commits: the standby holds back what the primary holds back"
mkfifo "$tmp/a.in"
PGAPPNAME=syncline_standby_a psql -X -q -v ON_ERROR_STOP=1 -d "$db" <"$tmp/a.in" >"$tmp/a.out" 2>&1 &
a_pid=$!
exec 3>"$tmp/a.in"
echo "BEGIN; INSERT INTO notes VALUES (1001, 'A');" >&3
a_xid_query="SELECT backend_xid FROM pg_catalog.pg_stat_activity
              WHERE application_name = 'syncline_standby_a' AND state = 'idle in transaction'"
wait_for 1 p -c "SELECT count(*) FROM ($a_xid_query AND backend_xid IS NOT NULL) a"
a_xid="$(p -c "$a_xid_query")"
b_xid="$(p <<<"BEGIN; INSERT INTO notes VALUES (1002, 'B'); SELECT pg_catalog.pg_current_xact_id(); COMMIT;")"
is "$((a_xid < b_xid))" 1 "transaction A took its xid before B, which committed first"
wait_replay
is "$(s -c "SELECT body FROM notes WHERE id = 1002")" B "the standby has replayed B's commit"
is "$(ids "$(field 2 "$(walk s "'$c2'" 1000)")")" "" "a pull on the standby does not pass B on while A is open"
is "$(ids "$(field 2 "$(walk p "'$c2'" 1000)")")" "" "... nor does the primary"
is "$(s -c "SELECT count(*) FROM jsonb_array_elements((walk(NULL, 1000)).changes) c WHERE c -> 'pk' ->> 'id' = '1002'")" \
  0 "... nor a full pull on the standby"
echo "COMMIT;" >&3
exec 3>&-
wait "$a_pid"
a_pid=""
wait_replay
is "$(ids "$(field 2 "$(walk s "'$c2'" 1000)")")" "1001,1002" "once A commits and replays, the standby delivers both, A first"
is "$(field 2 "$(walk s "'$c2'" 1000)")" "$(field 2 "$(walk p "'$c2'" 1000)")" "... as the primary does"

echo "# writes on the standby fail cleanly"
batch="$(p -c "SELECT jsonb_build_object('format', 1, 'source', '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11', 'changes',
  jsonb_build_array(jsonb_build_object('table', 'notes', 'op', 'upsert', 'pk', jsonb_build_object('id', 2001),
    'row', jsonb_build_object('id', 2001, 'body', 'pushed'), 'clock', 1,
    'hlc', lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16), 16, '0'),
    'node', '0b6f6f2e-6a86-4c1c-9d1e-5a2f9a0d7c11')))")"
like "$(p -c "SELECT syncline.apply_push('$batch'::text) ->> 'applied'")" 1 "the batch applies on the primary"
refused() {
  local name="$1" got
  got="$(error_of s -c "$2")"
  echo "# ${got:0:200}"
  like "$got" "25006 $3" "$name on the standby: 25006 read_only_sql_transaction"
}
refused apply_push "SELECT syncline.apply_push('$batch'::text)" \
  "syncline.apply_push: this server is a hot standby, which is read-only; push to the primary"
refused track "SELECT syncline.track('later')" "syncline.track: this server is a hot standby*"
refused untrack "SELECT syncline.untrack('notes')" "syncline.untrack: this server is a hot standby*"
refused gc "SELECT syncline.gc()" "syncline.gc: this server is a hot standby, which is read-only; collect on the primary"
refused device_seen "SELECT syncline.device_seen(gen_random_uuid(), NULL)" \
  "syncline.device_seen: this server is a hot standby, which is read-only; report to the primary"
refused LISTEN "LISTEN syncline" "cannot execute LISTEN during recovery"
is "$(s -c "SELECT pg_catalog.pg_is_in_recovery()")" t "the standby is still up, in recovery"
is "$(error_of s -c "SELECT syncline.pull_since(NULL)")" "no error" "... and still serves pulls"
is "$(grep -cE 'terminated by signal|PANIC' "$SYNCLINE_STANDBY_LOG" || true)" 0 "no backend of the standby crashed"

echo "# failover: cursors from the old primary's lost tail resync, the rest go on"
# A cursor whose deliveries the standby has replayed: a later commit flushes
# the WAL past the position the pull recorded.
c_kept="$(field 3 "$(walk p "'$c2'" 1000)")"
p -c "INSERT INTO notes VALUES (3001, 'kept')"
wait_replay
# Cut the standby off, then write on the primary alone: that tail is lost.
s -c "ALTER SYSTEM SET primary_conninfo = ''" -c "SELECT pg_catalog.pg_reload_conf()" >/dev/null
wait_for 0 s -c "SELECT count(*) FROM pg_catalog.pg_stat_wal_receiver"
p -c "INSERT INTO notes VALUES (3002, 'lost')"
lost_page="$(walk p "'$c_kept'" 1000)"
is "$(ids "$(field 2 "$lost_page")")" "3001,3002" "the old primary delivers its lost tail"
c_lost="$(field 3 "$lost_page")"
is "$(s -c "SELECT pg_catalog.pg_promote()")" t "the standby is promoted"
is "$(s -c "SELECT pg_catalog.pg_is_in_recovery()")" f "... and takes writes"
resync="$(error_of s -c "SELECT syncline.pull_since('$c_lost')")"
echo "# ${resync:0:300}"
like "$resync" "SL001 syncline.pull_since: cursor position * was issued on timeline 1, which this server's history (timeline 2) left it at WAL *: a failover lost what the cursor had seen; resync" \
  "a cursor that saw the lost tail: SL001, resync"
is "$(error_of s -c "SELECT syncline.pull_since('$c_kept')")" "no error" "a cursor within the shared history goes on"
is "$(ids "$(field 2 "$(walk s "'$c_kept'" 1000)")")" "3001" "... and gets what the new primary has"
s -c "INSERT INTO notes VALUES (3003, 'new')"
after_failover="$(walk s "'$c_kept'" 1000)"
is "$(ids "$(field 2 "$after_failover")")" "3001,3003" "writes on the new primary reach that cursor"
like "$(field 3 "$after_failover")" "*:*.*.2.*" "... whose new cursor carries timeline 2"
is "$(error_of s -c "SELECT syncline.pull_since('$(field 3 "$after_failover")')")" "no error" "... and works"
like "$(error_of p -c "SELECT syncline.pull_since('$(field 3 "$after_failover")')")" "22023 *was never issued by this database" \
  "the old primary, on timeline 1, never issued a timeline 2 cursor"

finish
