# Sourced by bench/run.sh (after pg_workloads.sh): capture's cost in
# instructions, which unlike time does not depend on what else the machine
# is doing. A single-user backend (`postgres --single`, no client, no
# network) runs single-row INSERTs, then single-row UPDATEs by key, under
# callgrind, per contender, each run on a fresh copy of one data directory:
# WARM statements, then WARM + COUNT, the difference over COUNT (so the
# first statements' cache fills and plan building do not count). Needs
# valgrind.
#
# instruction_counts COUNT: emits pg.instructions_insert and
# pg.instructions_update (instructions per statement; one sample each).

instruction_counts() {
  local count="$1" warm=100 bindir dir port run_as=() kind op total warmed n
  bindir="$(pg_config --bindir)"
  dir="$work/instructions"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then  # initdb and postgres refuse root: the data belong to "postgres"
    chmod o+x "$work"
    chown postgres: "$dir"
    run_as=(runuser -u postgres --)
  fi
  port=$((20000 + RANDOM % 20000))
  "${run_as[@]}" "$bindir/initdb" -D "$dir/pristine" -U postgres -E UTF8 --locale=C.UTF-8 -A trust \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/pristine" -l "$dir/server.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=off" start >/dev/null
  psql -X -q -h "$dir" -p "$port" -d postgres -c "CREATE DATABASE bench_instructions" >/dev/null
  {
    contenders_setup_sql
    for kind in plain quiet pgq audit; do
      echo "CREATE TABLE ins_$kind $table_ddl; CREATE TABLE upd_$kind $table_ddl;"
      echo "INSERT INTO upd_$kind $(rows_sql "$rows");"
      echo "$(capture_sql "$kind" "ins_$kind") $(capture_sql "$kind" "upd_$kind")"
    done
    echo "VACUUM ANALYZE;"
  } | psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -d bench_instructions >/dev/null
  "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/pristine" -w stop >/dev/null
  # One statement a line: single-user mode runs each as its own transaction.
  count=$((count + warm))
  for kind in plain quiet pgq audit; do
    seq 1 "$count" | awk -v t="$kind" -v q="'" '{printf "INSERT INTO ins_%s VALUES (md5(%sn%d%s)::uuid, 1, %stext value for a new row, lorem ipsum%s, 0.75, %s\\x00ff%s);\n", t, q, $1, q, q, q, q, q}' \
      >"$dir/insert_$kind.sql"
    seq 1 "$count" | awk -v t="$kind" -v q="'" -v rows="$rows" '{printf "UPDATE upd_%s SET n = n + 1 WHERE id = md5(%s%d%s)::uuid;\n", t, q, ($1 * 7919) % rows + 1, q}' \
      >"$dir/update_$kind.sql"
  done
  for kind in plain quiet pgq audit; do
    for op in insert update; do
      head -n "$warm" "$dir/${op}_$kind.sql" >"$dir/${op}_${kind}_warm.sql"
    done
  done
  count=$((count - warm))
  chmod 644 "$dir"/*.sql
  # callgrind_run SCRIPT: instructions of a single-user backend running it
  callgrind_run() {
    rm -rf "$dir/data"
    "${run_as[@]}" cp -a "$dir/pristine" "$dir/data"
    "${run_as[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
      "$bindir/postgres" --single -D "$dir/data" -c fsync=off bench_instructions <"$1" 2>&1 >/dev/null |
      awk '/Collected :/ {print $4}'
  }
  declare -A per_statement=()
  for op in insert update; do
    for kind in plain quiet pgq audit; do
      warmed="$(callgrind_run "$dir/${op}_${kind}_warm.sql")"
      total="$(callgrind_run "$dir/${op}_$kind.sql")"
      n=$(((total - warmed) / count))
      per_statement[${op}_$kind]=$n
      log "  $op, $kind: $n instructions a statement"
    done
    emit "pg.instructions_$op" instructions "${per_statement[${op}_quiet]}" "${per_statement[${op}_plain]}" \
      pgq="${per_statement[${op}_pgq]}" audit="${per_statement[${op}_audit]}"
  done
}
