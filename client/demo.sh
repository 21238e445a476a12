#!/usr/bin/env bash
# The demo: two devices keep notes in their own SQLite files, edit them
# offline (including a conflicting edit and an edit of a row the other device
# deleted), then sync both ways through syncline_pull_since/apply_push and
# end with identical tables. Usage: client/demo.sh [path/to/build/syncline]
set -euo pipefail
ext="$(realpath "${1:-build/syncline}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

device() {  # device NAME SQL...: run SQL on that device's database
  local name="$1"; shift
  sqlite3 -init /dev/null -batch -bail "$work/$name.db" ".load '$ext'" "$@"
}

# Push every change of FROM that TO does not have, page by page; the
# batches travel as files, the way a transport would carry them.
sync_pair() {
  local from="$1" to="$2" to_node from_node options cursor more=1 page=0
  to_node="$(device "$to" "SELECT syncline_node_id();")"
  from_node="$(device "$from" "SELECT syncline_node_id();")"
  options="{\"exclude_origin\":\"$to_node\"}"
  while [ "$more" = 1 ]; do
    cursor="$(device "$to" "SELECT quote(syncline_peer_cursor('$from_node', '$options'));")"
    device "$from" "SELECT writefile('$work/batch.json', syncline_pull_since($cursor, 2, '$options'));" >/dev/null
    summary="$(device "$to" "SELECT syncline_apply_push(readfile('$work/batch.json'));")"
    more="$(device "$to" "SELECT json_extract(readfile('$work/batch.json'), '\$.has_more');")"
    page=$((page + 1))
    echo "  $from -> $to, page $page: $summary"
  done
}

show() {
  printf '\n%-8s %-8s %s\n' device note title
  for name in laptop phone; do
    device "$name" "SELECT printf('%-8s %-8s %s', '$name', '…' || substr(id, -4), title) FROM notes ORDER BY id;"
  done
}

schema="CREATE TABLE notes(id TEXT PRIMARY KEY, org_id INTEGER NOT NULL, title TEXT NOT NULL, body TEXT);
        SELECT syncline_track('notes');"
device laptop "$schema" >/dev/null
device phone "$schema" >/dev/null

echo "1. The laptop writes three notes (client-generated UUID keys) and syncs to the phone."
device laptop "INSERT INTO notes VALUES
  ('6f1c2a4e-0000-4000-8000-000000000001', 7, 'groceries', 'milk'),
  ('6f1c2a4e-0000-4000-8000-000000000002', 7, 'trip plan', 'book train'),
  ('6f1c2a4e-0000-4000-8000-000000000003', 7, 'old idea', 'delete me');"
sync_pair laptop phone

echo "2. Both go offline and edit:"
echo "   laptop: renames 'groceries', deletes 'old idea'"
device laptop "UPDATE notes SET title = 'groceries (laptop)' WHERE title = 'groceries';
               DELETE FROM notes WHERE title = 'old idea';"
sleep 0.01
echo "   phone:  later renames 'groceries' too, edits 'old idea' after the laptop deleted it, adds a note"
device phone "UPDATE notes SET title = 'groceries (phone)' WHERE title = 'groceries';
              UPDATE notes SET body = 'keep after all' WHERE title = 'old idea';
              INSERT INTO notes VALUES ('6f1c2a4e-0000-4000-8000-000000000004', 7, 'phone note', '');"
show

echo
echo "3. Back online: each device pushes to the other."
sync_pair laptop phone
sync_pair phone laptop
show

echo
if [ "$(device laptop "SELECT group_concat(quote(id)||quote(title)||quote(body)) FROM (SELECT * FROM notes ORDER BY id);")" = \
     "$(device phone "SELECT group_concat(quote(id)||quote(title)||quote(body)) FROM (SELECT * FROM notes ORDER BY id);")" ]; then
  echo "Converged: both devices hold identical notes."
  echo "  'groceries': the phone's rename was the later write, so it won on both devices."
  echo "  'old idea':  the phone's edit came after the laptop's delete, so the row came back."
else
  echo "NOT converged" >&2
  exit 1
fi
