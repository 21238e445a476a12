# TAP helpers for the shell tests run against throwaway servers
# (standby.sh, standby_client.sh): source it, call is/like, then finish.
n=0
failed=0
is() {
  local got="$1" want="$2" name="$3"
  n=$((n + 1))
  if [ "$got" == "$want" ]; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    echo "#   got:  $got"
    echo "#   want: $want"
    failed=$((failed + 1))
  fi
}
like() {
  local got="$1" pattern="$2" name="$3"
  n=$((n + 1))
  if [[ "$got" == $pattern ]]; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    echo "#   got:  $got"
    echo "#   want: $pattern"
    failed=$((failed + 1))
  fi
}
# "<SQLSTATE> <message>" of the error a statement raises, or "no error".
error_of() {
  local out
  if out="$("$@" 2>&1 >/dev/null)"; then
    echo "no error"
  else
    sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): \(.*\)$/\1 \2/p' <<<"$out" | head -n 1
  fi
}
# Polls a query on a node until it answers `want` (10 s at most).
wait_for() {
  local want="$1"
  shift
  local deadline=$((SECONDS + 10))
  until [ "$("$@")" == "$want" ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "# timed out waiting for: $*" >&2
      return 1
    fi
    sleep 0.05
  done
}

# Ends the script: the plan, and a failing status when a test failed.
finish() {
  echo "1..$n"
  if [ $failed -gt 0 ]; then
    echo "# failed $failed of $n"
    exit 1
  fi
}
