#!/usr/bin/env bash
# Smoke test of the syncline SQLite extension through real hosts: the sqlite3
# command-line shell and Debian's Python sqlite3 module.
#
# Usage: tests/sqlite/smoke.sh /abs/path/build/syncline   (no .so suffix)
#
# Prints "ok - ..." / "not ok - ..." per check and ends with exactly one line
# "smoke: N passed, M failed"; exits non-zero when any check failed.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 /abs/path/to/build/syncline (extension path without .so)" >&2
  exit 2
fi
EXT=$1
# Debian's interpreter: the python3 first on PATH (pyenv) is built without
# loadable-extension support.
PY=/usr/bin/python3
SQLITE=sqlite3

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
DB1=$TMP/one.db
DB2=$TMP/two.db

passed=0
failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() {
  echo "not ok - $1"
  failed=$((failed + 1))
  if [[ $# -gt 1 && -n $2 ]]; then
    printf '%s\n' "$2" | sed 's/^/#   /'
  fi
}
# check WHAT ACTUAL EXPECTED
check_eq() {
  if [[ $2 == "$3" ]]; then ok "$1"; else not_ok "$1" "expected: $3"$'\n'"actual:   $2"; fi
}
finish() {
  echo "smoke: $passed passed, $failed failed"
  if [[ $failed -ne 0 ]]; then exit 1; fi
  exit 0
}

# Runs SQL (stdin) in a fresh sqlite3 shell on DB ($1) with the extension
# loaded. Output in $out, stderr in $err, exit status in $rc.
sql_ext() {
  local db=$1
  rc=0
  out=$({ printf ".load '%s'\n" "$EXT"; cat; } |
    "$SQLITE" -init /dev/null -batch -bail "$db" 2>"$TMP/stderr") || rc=$?
  err=$(cat "$TMP/stderr")
}
# Same without loading the extension.
sql_plain() {
  local db=$1
  rc=0
  out=$("$SQLITE" -init /dev/null -batch -bail "$db" 2>"$TMP/stderr") || rc=$?
  err=$(cat "$TMP/stderr")
}

# --- preconditions ----------------------------------------------------------
if [[ -f $EXT.so ]]; then ok "extension file $EXT.so exists"; else
  not_ok "extension file $EXT.so exists"
  finish
fi

# --- 1. sqlite3 shell -----------------------------------------------------------
sql_ext "$DB1" <<'SQL'
CREATE TABLE notes(id TEXT PRIMARY KEY, org_id INTEGER, title TEXT, body TEXT);
SELECT json_extract(syncline_track('notes'), '$.table', '$.primary_key');
SQL
check_eq "sqlite3 shell: .load + syncline_track('notes') reports table and primary key" \
  "rc=$rc $out $err" 'rc=0 ["notes",["id"]] '

sql_ext "$DB1" <<'SQL'
INSERT INTO notes VALUES ('n1', 1, 'first', 'hello');
INSERT INTO notes VALUES ('n2', 2, 'zweite — ü', NULL);
INSERT INTO notes VALUES ('n3', 42, 'it''s', 'line1' || char(10) || 'line2');
INSERT INTO notes VALUES ('n4', 4, 'doomed', 'x');
UPDATE notes SET title = 'first (edited)' WHERE id = 'n1';
DELETE FROM notes WHERE id = 'n4';
SELECT count(*) FROM notes;
SQL
check_eq "sqlite3 shell: insert/update/delete on the tracked table" "rc=$rc $out $err" "rc=0 3 "

sql_ext "$DB1" <<'SQL'
.mode list
.separator |
-- Each query below reads the batch through this view (pulling again gives the
-- same batch: nothing is written in between). It is not stored with CREATE
-- TABLE AS / INSERT ... SELECT because syncline_pull_since opens a savepoint,
-- which SQLite refuses inside a writing statement.
CREATE TEMP VIEW b AS
  WITH p(j) AS MATERIALIZED (SELECT syncline_pull_since(NULL, 100)) SELECT j FROM p;
SELECT json_valid(j), json_extract(j, '$.format'), json_extract(j, '$.source') = syncline_node_id(),
       json_extract(j, '$.has_more'), json_array_length(j, '$.changes'),
       json_type(j, '$.cursor') IN ('text', 'integer')
  FROM b;
SELECT json_extract(c.value, '$.op'), json_extract(c.value, '$.row.org_id'),
       json_extract(c.value, '$.row.title'), json_extract(c.value, '$.row.body')
  FROM b, json_each(b.j, '$.changes') AS c
 WHERE json_extract(c.value, '$.table') = 'notes' AND json_extract(c.value, '$.pk.id') = 'n1';
SELECT json_extract(c.value, '$.op')
  FROM b, json_each(b.j, '$.changes') AS c
 WHERE json_extract(c.value, '$.pk.id') = 'n4';
SQL
batch_lines=$out
if [[ $rc -ne 0 ]]; then
  not_ok "sqlite3 shell: syncline_pull_since(NULL, 100) runs" "$err"
else
  ok "sqlite3 shell: syncline_pull_since(NULL, 100) runs"
fi
check_eq "pull batch: valid JSON, format 1, source = syncline_node_id(), has_more false, 4 changes, cursor present" \
  "$(sed -n 1p <<<"$batch_lines")" "1|1|1|0|4|1"
check_eq "pull batch holds inserted+updated row n1 (op upsert, row values)" \
  "$(sed -n 2p <<<"$batch_lines")" "upsert|1|first (edited)|hello"
check_eq "pull batch holds the delete of n4" "$(sed -n 3p <<<"$batch_lines")" "delete"

snapshot_sql="SELECT quote(id), quote(org_id), quote(title), quote(body) FROM notes ORDER BY id;
SELECT count(*), max(version) FROM syncline_rows;"
sql_plain "$DB1" <<<"$snapshot_sql"
before="rc=$rc $out"

# A session that did not load the extension must not write silently.
for stmt in "INSERT INTO notes VALUES ('n9', 9, 'sneaky', 'insert');" \
  "UPDATE notes SET title = 'sneaky' WHERE id = 'n2';" \
  "DELETE FROM notes WHERE id = 'n3';"; do
  sql_plain "$DB1" <<<"$stmt"
  what="sqlite3 shell without extension: '${stmt%% *}' on tracked table fails loudly"
  if [[ $rc -ne 0 && $err == *"no such function: syncline_"* ]]; then
    ok "$what"
  else
    not_ok "$what" "rc=$rc stdout=$out stderr=$err"
  fi
done
sql_plain "$DB1" <<<"$snapshot_sql"
check_eq "tracked table and change log unchanged after the refused writes" "rc=$rc $out" "$before"

# --- 2. Python ----------------------------------------------------------------
cat >"$TMP/smoke.py" <<'PY'
import json
import sqlite3
import sys

ext, db1, db2 = sys.argv[1:4]


def ok(what):
    print("ok - " + what, flush=True)


def not_ok(what, detail=""):
    print("not ok - " + what, flush=True)
    for line in str(detail).splitlines():
        print("#   " + line, flush=True)


def check(what, cond, detail=""):
    if cond:
        ok(what)
    else:
        not_ok(what, detail)
    return cond


def connect(path, load=True):
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit
    if load:
        conn.enable_load_extension(True)
        conn.load_extension(ext)
        conn.enable_load_extension(False)
    return conn


ROWS = "SELECT id, org_id, title, body FROM notes ORDER BY id"
LOG = "SELECT count(*), max(version) FROM syncline_rows"

c1 = connect(db1)
c2 = connect(db2)
ok("python %s: enable_load_extension + load_extension" % sys.executable)

c2.execute("CREATE TABLE notes(id TEXT PRIMARY KEY, org_id INTEGER, title TEXT, body TEXT)")
summary = json.loads(c2.execute("SELECT syncline_track('notes')").fetchone()[0])
check("python: syncline_track('notes') in database 2", summary.get("table") == "notes", summary)

batch_text = c1.execute("SELECT syncline_pull_since(NULL, 100)").fetchone()[0]
batch = json.loads(batch_text)
node1 = c1.execute("SELECT syncline_node_id()").fetchone()[0]
node2 = c2.execute("SELECT syncline_node_id()").fetchone()[0]
check("python: the two databases have distinct node ids", node1 != node2, (node1, node2))
check("python: pulled batch from database 1 (source %s, %d changes)" % (batch["source"], len(batch["changes"])),
      batch["source"] == node1 and len(batch["changes"]) == 4 and batch["has_more"] is False, batch_text)

result = json.loads(c2.execute("SELECT syncline_apply_push(?)", (batch_text,)).fetchone()[0])
check("python: syncline_apply_push applies the batch (%s)" % json.dumps(result),
      result.get("applied", 0) > 0 and result.get("skipped") == len(batch["changes"]) - result["applied"]
      and result.get("source") == node1 and result.get("cursor") == batch["cursor"], result)

rows1 = c1.execute(ROWS).fetchall()
rows2 = connect(db2, load=False).execute(ROWS).fetchall()  # what is on disk
check("python: notes rows equal in both databases (%d rows)" % len(rows1),
      rows1 == rows2 and len(rows1) == 3, "db1=%r\ndb2=%r" % (rows1, rows2))

again = json.loads(c2.execute("SELECT syncline_apply_push(?)", (batch_text,)).fetchone()[0])
check("python: applying the same batch again reports applied 0",
      again.get("applied") == 0 and again.get("skipped") == len(batch["changes"]), again)
check("python: rows still equal after the repeated apply", connect(db2, load=False).execute(ROWS).fetchall() == rows1)

# Malformed batches: each must raise OperationalError("syncline_apply_push: ...")
# and leave database 2 (rows and change log) exactly as it was.
fresh = dict(batch["changes"][0])
fresh.update(pk={"id": "new"}, row=dict(fresh["row"], id="new"))
malformed = {
    "not JSON": "{not json",
    "empty string": "",
    "JSON array": "[]",
    "missing source": json.dumps({"format": 1, "changes": []}),
    "valid change followed by a change without pk":
        json.dumps(dict(batch, changes=[fresh, {"table": "notes", "op": "upsert", "row": {"id": "x"}}])),
    "valid change followed by an unknown op": json.dumps(dict(batch, changes=[fresh, dict(fresh, op="frobnicate")])),
    "valid change followed by an unknown table": json.dumps(dict(batch, changes=[fresh, dict(fresh, table="nope")])),
}
before = (c2.execute(ROWS).fetchall(), c2.execute(LOG).fetchone())
for name, text in malformed.items():
    what = "python: malformed batch (%s) raises OperationalError 'syncline_apply_push: ...'" % name
    try:
        got = c2.execute("SELECT syncline_apply_push(?)", (text,)).fetchone()
        not_ok(what, "no error, returned %r" % (got,))
    except sqlite3.OperationalError as e:
        check(what, str(e).startswith("syncline_apply_push:"), "message: %s" % e)
    except Exception as e:  # wrong exception class
        not_ok(what, "%s: %s" % (type(e).__name__, e))
    reader = connect(db2, load=False)
    after = (reader.execute(ROWS).fetchall(), reader.execute(LOG).fetchone())
    reader.close()
    check("python: database 2 unchanged after malformed batch (%s)" % name,
          after == before and not c2.in_transaction, "before=%r\nafter=%r" % (before, after))
PY

py_rc=0
if [[ ! -x $PY ]]; then
  not_ok "$PY exists"
else
  while IFS= read -r line; do
    case $line in
      "ok - "*) echo "$line"; passed=$((passed + 1)) ;;
      "not ok - "*) echo "$line"; failed=$((failed + 1)) ;;
      "__exit "*) py_rc=${line#__exit } ;;
      "#"*) echo "$line" ;;
      *) echo "#   $line" ;;
    esac
    # errexit is inherited by the process substitution: report the status
    # with || rather than after a ';'.
  done < <("$PY" "$TMP/smoke.py" "$EXT" "$DB1" "$DB2" 2>&1 || echo "__exit $?")
  if [[ $py_rc -ne 0 ]]; then not_ok "python checks ran to completion (exit $py_rc)"; fi
fi

finish
