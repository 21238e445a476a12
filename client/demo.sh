#!/usr/bin/env bash
# The demo, end to end: a throwaway PostgreSQL server with the notes app's
# schema (notes, blocks, discussions, comments, scoped by organisation; notes
# merged per column), two devices cloned from it, offline edits on both
# (inserts, a conflicting edit of one note, edits of different fields of
# another, a delete on one device of a row the other edited), syncs, and
# every database side by side. Run through `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PGHOST:-}" ]; then exec tests/pg/with_cluster.sh "$0" "$@"; fi

export SYNCLINE_EXTENSION="${SYNCLINE_EXTENSION:-$PWD/build/syncline}"
cli="$PWD/build/bin/syncline"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
laptop="$work/laptop.db" phone="$work/phone.db"
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
on_device() { sqlite3 -bail "$1" ".load $SYNCLINE_EXTENSION" "PRAGMA foreign_keys = ON;" "$2"; }

say "1. The server: the notes app's schema, tracked and scoped by organisation"
psql -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION syncline;
CREATE TABLE notes (id uuid PRIMARY KEY, org_id int NOT NULL, title text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
                    status text NOT NULL DEFAULT 'draft');
CREATE TABLE blocks (id uuid PRIMARY KEY, org_id int NOT NULL, note_id uuid NOT NULL REFERENCES notes, position int NOT NULL, content text NOT NULL);
CREATE TABLE discussions (id uuid PRIMARY KEY, org_id int NOT NULL, note_id uuid NOT NULL REFERENCES notes, title text NOT NULL);
CREATE TABLE comments (id uuid PRIMARY KEY, org_id int NOT NULL, discussion_id uuid NOT NULL REFERENCES discussions, body text NOT NULL);
-- Notes merge per column: edits of different fields of one note are all kept.
SELECT syncline.track('notes', '{"scope": "org_id", "merge": "column"}');
SELECT syncline.track(t, '{"scope": "org_id"}') FROM unnest(ARRAY['blocks', 'discussions', 'comments']::regclass[]) t;
INSERT INTO notes VALUES ('a0000000-0000-4000-8000-000000000001', 7, 'Roadmap'),
                         ('a0000000-0000-4000-8000-000000000002', 7, 'Groceries'),
                         ('a0000000-0000-4000-8000-000000000009', 8, 'Another organisation''s note');
INSERT INTO blocks VALUES ('b0000000-0000-4000-8000-000000000001', 7, 'a0000000-0000-4000-8000-000000000001', 1, 'Ship the sync layer'),
                          ('b0000000-0000-4000-8000-000000000002', 7, 'a0000000-0000-4000-8000-000000000002', 1, 'milk, eggs');
INSERT INTO discussions VALUES ('d0000000-0000-4000-8000-000000000001', 7, 'a0000000-0000-4000-8000-000000000001', 'When?');
INSERT INTO comments VALUES ('c0000000-0000-4000-8000-000000000001', 7, 'd0000000-0000-4000-8000-000000000001', 'Next week?');
SQL
psql -Atc "SELECT table_name || ' (key ' || array_to_string(primary_key, ',') || ', scope ' || scope_column || ', merge by ' || merge || ')' FROM syncline.tracked_tables ORDER BY 1"

say "2. Two devices of organisation 7 clone the server"
"$cli" clone --db "$laptop" --scope 7 -q
"$cli" clone --db "$phone" --scope 7 -q

say "3. Both go offline and edit"
echo "   laptop: renames 'Roadmap' and 'Groceries', adds a note with a block, deletes the 'Groceries' block"
on_device "$laptop" "
  UPDATE notes SET title = 'Roadmap (laptop)', updated_at = datetime('now') WHERE title = 'Roadmap';
  UPDATE notes SET title = 'Groceries for Friday' WHERE title = 'Groceries';
  INSERT INTO notes (id, org_id, title, updated_at) VALUES ('a0000000-0000-4000-8000-000000000003', 7, 'Ideas', datetime('now'));
  INSERT INTO blocks VALUES ('b0000000-0000-4000-8000-000000000003', 7, 'a0000000-0000-4000-8000-000000000003', 1, 'offline-first');
  DELETE FROM blocks WHERE content = 'milk, eggs';"
sleep 0.05
echo "   phone (later): renames 'Roadmap' too, marks 'Groceries' done, edits the 'Groceries' block the laptop deleted, comments"
on_device "$phone" "
  UPDATE notes SET title = 'Roadmap (phone)', updated_at = datetime('now') WHERE title = 'Roadmap';
  UPDATE notes SET status = 'done' WHERE title = 'Groceries';
  UPDATE blocks SET content = 'milk, eggs, bread' WHERE content = 'milk, eggs';
  INSERT INTO comments VALUES ('c0000000-0000-4000-8000-000000000002', 7, 'd0000000-0000-4000-8000-000000000001', 'Friday works');"
echo "   server (meanwhile): the team edits the roadmap's block"
psql -q -c "UPDATE blocks SET content = 'Ship the sync layer, then benchmarks' WHERE position = 1 AND note_id = 'a0000000-0000-4000-8000-000000000001'"

say "4. Back online: each device syncs (push its changes, pull the others')"
for device in laptop phone laptop; do
  printf '   %-7s ' "$device:"
  "$cli" sync --db "$work/$device.db" -q
done

say "5. Every database, side by side"
dump_server() {
  psql -At -F ' | ' -c "
    SELECT 'notes', title || ' [' || status || ']' FROM notes WHERE org_id = 7 UNION ALL
    SELECT 'blocks', content FROM blocks UNION ALL
    SELECT 'comments', body FROM comments ORDER BY 1, 2"
}
dump_device() {
  sqlite3 -separator ' | ' "$1" "
    SELECT 'notes', title || ' [' || status || ']' FROM notes UNION ALL
    SELECT 'blocks', content FROM blocks UNION ALL
    SELECT 'comments', body FROM comments ORDER BY 1, 2"
}
dump_server >"$work/server.txt"
dump_device "$laptop" >"$work/laptop.txt"
dump_device "$phone" >"$work/phone.txt"
printf '%-45s %-45s %s\n' "server" "laptop" "phone"
paste -d '\t' "$work/server.txt" "$work/laptop.txt" "$work/phone.txt" | awk -F '\t' '{printf "%-45s %-45s %s\n", $1, $2, $3}'

echo
if cmp -s "$work/server.txt" "$work/laptop.txt" && cmp -s "$work/server.txt" "$work/phone.txt" &&
  grep -q "Groceries for Friday \[done\]" "$work/server.txt"; then
  echo "Converged: the server and both devices hold the same rows (organisation 8's note never left the server)."
  echo "  'Roadmap': both devices renamed it; the phone's rename was later, so it won everywhere."
  echo "  'Groceries': the laptop renamed it, the phone marked it done; notes merge per column, so both edits are kept."
  echo "  'milk, eggs': the laptop deleted the block, then the phone edited it later: the later edit brought it back."
  echo "  The server's edit of the roadmap block and the phone's new comment reached every device."
else
  echo "NOT converged, or an edit was lost" >&2
  exit 1
fi
