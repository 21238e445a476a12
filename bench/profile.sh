#!/usr/bin/env bash
# Where the SQLite extension spends its instructions: callgrind over a plain
# and a tracked run of ROWS rows (default 5000): insert (one transaction),
# pull (or the JSON baseline), update, delete, apply (or the upsert
# baseline). Prints each phase's instructions, plain and tracked, then the
# functions with the most exclusive cost. Not part of `make bench` (valgrind
# is slow). The full profile stays in bench/build/callgrind.out for
# callgrind_annotate / kcachegrind.
#
#   bench/profile.sh [ROWS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rows="${1:-5000}"
ext="${SYNCLINE_BENCH_EXT:-$root/build/syncline.so}"
out="$root/bench/build/callgrind.out"
make -s -C "$root/bench" >&2
work="$(mktemp -d /tmp/syncline-profile-XXXXXX)"
trap 'rm -rf "$work"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out" \
  "$root/bench/build/sqlite_bench" profile --ext "$ext" --dir "$work" --rows "$rows" 2>"$work/valgrind.log" ||
  { cat "$work/valgrind.log" >&2; exit 1; }
callgrind_annotate --inclusive=yes --threshold=100 "$out" >"$work/inclusive.txt"
callgrind_annotate --threshold=100 "$out" >"$work/self.txt"
total="$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' "$work/self.txt")"
echo "== instructions per phase ($rows rows; tracked / plain)"
phase() {  # phase LABEL TRACKED-FUNCTION PLAIN-FUNCTION
  local t p
  t="$(awk -v f="$2" 'index($0, f) {gsub(",", "", $1); print $1; exit}' "$work/inclusive.txt")"
  p="$(awk -v f="$3" 'index($0, f) {gsub(",", "", $1); print $1; exit}' "$work/inclusive.txt")"
  awk -v l="$1" -v t="${t:-0}" -v p="${p:-0}" -v n="$rows" 'BEGIN {
    printf "%-8s tracked %13.0f (%6.0f/row)  plain %13.0f (%6.0f/row)  ratio %5.2f\n", l, t, t / n, p, p / n, (p ? t / p : 0) }'
}
phase insert "PhaseInsert<true>" "PhaseInsert<false>"
phase update "PhaseUpdate<true>" "PhaseUpdate<false>"
phase delete "PhaseDelete<true>" "PhaseDelete<false>"
phase pull "PhasePull(" "PhaseJsonPages("
phase apply "PhaseApply(" "PhaseUpsert("
echo
echo "== top functions by exclusive instructions (whole run, $total instructions)"
awk '/file:function/ {on = 1; next} on && NF && ++n <= 25' "$work/self.txt" |
  sed -E 's/ \[[^]]*\]$//; s/\(std::[^)]*\)//g' | cut -c1-160
echo
echo "== syncline functions by inclusive instructions"
awk '/syncline::/ && ++n <= 25' "$work/inclusive.txt" | sed -E 's/ \[[^]]*\]$//; s/\(std::[^)]*\)//g' | cut -c1-200
