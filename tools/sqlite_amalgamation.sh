#!/usr/bin/env bash
# Puts SQLite's amalgamation (sqlite3.c, sqlite3.h, sqlite3ext.h), at a
# pinned version, in the directory given ($1): the one the WebAssembly and
# static builds compile in (make wasm, make static). It comes from the npm
# registry, which CI reaches, inside better-sqlite3's package (the version
# the Node client uses, so that browser and Node run one SQLite), checked
# against a pinned SHA-512 before anything is unpacked. Downloads once; a
# second run finds the files in place.
set -euo pipefail
package=better-sqlite3
version=12.11.1  # carries SQLite 3.53.2
sha512=76af40b40a608393c616d0733c54819771d94231e893981a40233ace1d989346929830acd426e7548f3f1e001242434ab16169b1e20ef5b7a0e71c696216c87c
out="${1:?usage: tools/sqlite_amalgamation.sh DIR}"

if [ -f "$out/sqlite3.c" ] && [ -f "$out/.sha512" ] && [ "$(cat "$out/.sha512")" = "$sha512" ]; then
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package@$version" >/dev/null)
tarball="$work/$package-$version.tgz"
got="$(sha512sum "$tarball" | cut -d' ' -f1)"
if [ "$got" != "$sha512" ]; then
  echo "tools/sqlite_amalgamation.sh: $package-$version.tgz has SHA-512 $got, expected $sha512" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h \
  package/deps/sqlite3/sqlite3ext.h
mkdir -p "$out"
cp "$work"/package/deps/sqlite3/sqlite3{.c,.h,ext.h} "$out/"
echo "$sha512" >"$out/.sha512"
