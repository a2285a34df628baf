#!/usr/bin/env bash
# Builds the Debian package libapache2-mod-ordersync: copies the project's sources (the work
# tree, without build outputs) with build/debian as debian/ into
# build/deb/libapache2-mod-ordersync-VERSION/, writes debian/changelog for VERSION, runs
# dpkg-buildpackage there, keeps only the new .deb in build/deb/, checks it with lintian
# (any error or warning fails; skipped with a note when lintian is not installed) and
# prints the .deb's path. Usage: bash build/deb.sh VERSION (the OS_VERSION of
# include/mod_ordersync.h, which `make deb` passes).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
pkg=libapache2-mod-ordersync

version=${1:?usage: build/deb.sh VERSION}
header=$(sed -n 's/^#define OS_VERSION "\(.*\)"/\1/p' include/mod_ordersync.h)
if [ "$version" != "$header" ]; then
  echo "deb.sh: version '$version' is not OS_VERSION '$header' of include/mod_ordersync.h" >&2
  exit 1
fi

out=$top/build/deb
stage=$out/$pkg-$version
arch=$(dpkg --print-architecture)
deb=$out/${pkg}_${version}_$arch.deb
started=$(date +%s)
mkdir -p "$out"
rm -rf "$stage"
rm -f "$out/${pkg}"_*.deb "$out/${pkg}"_*.changes "$out/${pkg}"_*.buildinfo "$out/${pkg}"-dbgsym_*
mkdir -p "$stage"

# The sources: files git tracks or does not ignore, as they are in the work tree (deleted
# ones left out), without build outputs, downloads and the packaging itself.
skip='^(build/(deb|debian|out|asan|unit|t|noboard|noreuse|corpus)/|var/|bench/out/|t/logs/)'
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z -c -o --exclude-standard \
    | while IFS= read -r -d '' f; do
        [[ $f =~ $skip ]] && continue
        [[ -e $f || -L $f ]] && printf '%s\0' "$f"
      done \
    | tar --null -T - -cf - | tar -C "$stage" -xf -
else
  tar --exclude=./.git --exclude=./build/deb --exclude=./build/debian --exclude=./build/out \
      --exclude=./build/asan --exclude=./build/unit --exclude=./build/t --exclude=./build/noboard \
      --exclude=./build/noreuse --exclude=./build/corpus --exclude=./var --exclude=./bench/out \
      --exclude=./t/logs -cf - . | tar -C "$stage" -xf -
fi
cp -a build/debian "$stage/debian"

# debian/changelog says VERSION, signed by the Maintainer of debian/control and dated by
# CHANGELOG.md's heading for VERSION (so the same sources build the same package).
maintainer=$(sed -n 's/^Maintainer: *//p' build/debian/control)
day=$(sed -n "s/^## $(printf '%s' "$version" | sed 's/\./\\./g') .* \([0-9]\{4\}-[0-9][0-9]-[0-9][0-9]\).*/\1/p" CHANGELOG.md 2>/dev/null | head -n1)
if [ -n "$day" ]; then when=$(date -u -R -d "$day 00:00 UTC"); else when=$(date -u -R); fi
cat >"$stage/debian/changelog" <<EOF
$pkg ($version) unstable; urgency=medium

  * mod_ordersync $version; its changes are in
    /usr/share/doc/$pkg/CHANGELOG.md.

 -- $maintainer  $when
EOF

echo "deb.sh: building $pkg $version in ${stage#"$top"/} (log: build/deb/build.log)"
if ! (cd "$stage" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
  cat "$out/build.log" >&2
  echo "deb.sh: dpkg-buildpackage failed (log above, and in build/deb/build.log)" >&2
  exit 1
fi
[ -f "$deb" ] || { echo "deb.sh: dpkg-buildpackage made no $deb" >&2; exit 1; }
changes=$out/${pkg}_${version}_$arch.changes
rm -rf "$stage"

if command -v lintian >/dev/null; then
  echo "deb.sh: lintian $(basename "$changes")"
  # Errors and warnings fail; info tags are shown.
  if ! lintian --info --display-info --fail-on error,warning "$changes"; then
    echo "deb.sh: lintian found errors or warnings in $deb" >&2
    exit 1
  fi
else
  echo "deb.sh: note: lintian is not installed, the package is not checked (apt-get install lintian)"
fi
echo "deb.sh: built in $(( $(date +%s) - started )) s:"
echo "${deb#"$top"/}"
