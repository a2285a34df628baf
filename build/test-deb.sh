#!/usr/bin/env bash
# Installs build/deb/libapache2-mod-ordersync_VERSION_ARCH.deb on this machine and uses it as
# an administrator would: follows README.md's walkthrough word for word, checks what the
# package made, runs `apachectl configtest` on every ```apache block of README.md, reinstalls,
# removes and purges it, and puts Apache back as it found it (also after a failure).
# Run as root, with the system's Apache not in use. Usage: bash build/test-deb.sh VERSION
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
version=${1:?usage: build/test-deb.sh VERSION}
pkg=libapache2-mod-ordersync
deb=build/deb/${pkg}_${version}_$(dpkg --print-architecture).deb
store=/var/lib/ordersync
keydir=/etc/apache2/ordersync
keys=("$keydir/webshop1.key" "$keydir/admin.key" "$keydir/webhook.key")
snippet=ordersync-readme-snippet
export DEBIAN_FRONTEND=noninteractive

passed=0
ok()   { passed=$((passed + 1)); echo "test-deb: ok $passed - $*"; }
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
mode() { stat -c '%U:%G %a' "$1"; }
pkg_status() { dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true; }
pidfile=$(set +eu; . /etc/apache2/envvars >/dev/null 2>&1; echo "${APACHE_PID_FILE:-/var/run/apache2/apache2.pid}")
apache_running() {
  local pid
  [ -r "$pidfile" ] && pid=$(cat "$pidfile" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}
stop_apache() {
  apache_running || return 0
  apachectl stop >/dev/null 2>&1 || true
  for _ in $(seq 50); do apache_running || return 0; sleep 0.2; done
  echo "test-deb: the system's Apache (pid file $pidfile) did not stop" >&2
  return 1
}
enabled() { ls /etc/apache2/"$1"-enabled 2>/dev/null | sed -n 's/\.\(load\|conf\)$//p' | sort -u; }
# What this test must leave as it found it: Apache's configuration and a2enmod's state.
fingerprint() {
  find /etc/apache2 /var/lib/apache2 -printf '%p %y %m %U:%G %l\n' 2>/dev/null | sort
  find /etc/apache2 /var/lib/apache2 -type f -exec md5sum {} + 2>/dev/null | sort -k2
}

# ---- a. preconditions ------------------------------------------------------------------
[ "$(id -u)" = 0 ] || fail "run as root (it installs and purges $pkg)"
for c in sudo curl apachectl a2enmod apt-get lintian; do
  command -v "$c" >/dev/null || fail "'$c' is missing (bash build/install-deps.sh installs it)"
done
[ -f "$deb" ] || fail "$deb does not exist (make deb)"
case "$(pkg_status)" in
  ""|un*|pn*) ;;
  *) fail "$pkg is installed ($(pkg_status)); purge it first: apt-get purge $pkg" ;;
esac
for d in "$store" "$keydir" /var/lib/$pkg; do
  [ ! -e "$d" ] || fail "$d exists; the purge at the end of this test would delete it"
done
[ ! -e /etc/apache2/conf-available/$snippet.conf ] || fail "/etc/apache2/conf-available/$snippet.conf exists"

tmp=$(mktemp -d)
was_running=no
if apache_running; then was_running=yes; fi
fingerprint >"$tmp/before"
tar -C /var/lib -cf "$tmp/apache2-state.tar" apache2
for t in mods sites conf; do enabled $t >"$tmp/$t.before"; done
made=()          # files and directories step d created, removed after it
created_snippet=no

cleanup() {
  local rc=$? t n
  set +e
  trap - EXIT
  echo "test-deb: cleaning up"
  if [ "$created_snippet" = yes ] || [ -e /etc/apache2/conf-available/$snippet.conf ]; then
    a2disconf -q $snippet >/dev/null 2>&1
    rm -f /etc/apache2/conf-available/$snippet.conf
  fi
  for ((n = ${#made[@]} - 1; n >= 0; n--)); do rm -rf "${made[n]}"; done
  stop_apache || rc=1
  case "$(pkg_status)" in
    ""|un*|pn*) ;;
    *) apt-get purge -y -q "$pkg" >"$tmp/purge.log" 2>&1 || dpkg --purge "$pkg" >>"$tmp/purge.log" 2>&1 \
         || { cat "$tmp/purge.log"; rc=1; } ;;
  esac
  # What was enabled along the way (dbd by a2enmod ordersync) is disabled again, and what
  # was disabled enabled again; a2enmod's state (/var/lib/apache2) is put back as it was.
  for t in mods sites conf; do
    enabled $t >"$tmp/$t.after"
    for n in $(comm -13 "$tmp/$t.before" "$tmp/$t.after"); do
      case $t in mods) a2dismod -q -f "$n" ;; sites) a2dissite -q "$n" ;; conf) a2disconf -q "$n" ;; esac >/dev/null 2>&1
    done
    for n in $(comm -23 "$tmp/$t.before" "$tmp/$t.after"); do
      case $t in mods) a2enmod -q "$n" ;; sites) a2ensite -q "$n" ;; conf) a2enconf -q "$n" ;; esac >/dev/null 2>&1
    done
  done
  rm -rf /var/lib/apache2 && tar -C /var/lib -xf "$tmp/apache2-state.tar"
  rm -rf "$store" "$keydir" /var/lib/$pkg
  if [ "$was_running" = yes ]; then apachectl start >/dev/null 2>&1 || { echo "test-deb: could not start Apache again" >&2; rc=1; }; fi
  fingerprint >"$tmp/after"
  if ! diff -u "$tmp/before" "$tmp/after" >"$tmp/diff"; then
    cat "$tmp/diff" >&2
    echo "test-deb: FAIL: /etc/apache2 or /var/lib/apache2 differs from before the test (diff above)" >&2
    rc=1
  fi
  rm -rf "$tmp"
  if [ $rc -ne 0 ]; then
    echo "test-deb: FAILED ($passed checks passed before the failure)" >&2
  else
    echo "test-deb: $passed checks passed"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

stop_apache || fail "cannot stop the system's Apache"
if (exec 3<>/dev/tcp/127.0.0.1/8470) 2>/dev/null; then
  fail "something listens on port 8470, the example site's port"
fi
ok "preconditions: $pkg not installed, Apache stopped, port 8470 free"

# The package enables nothing by itself: its postinst calls no a2enmod/a2ensite helper.
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./postinst >"$tmp/postinst"
if grep -qE 'apache2_invoke|a2en(mod|site|conf)' "$tmp/postinst"; then
  fail "the package's postinst enables something:"$'\n'"$(grep -nE 'apache2_invoke|a2en' "$tmp/postinst")"
fi
ok "postinst enables neither the module nor the example site"

# ---- b. the README's walkthrough, word for word -----------------------------------------
awk '/^<!-- walkthrough -->[[:space:]]*$/ {on = 1; next}
     /^<!-- \/walkthrough -->[[:space:]]*$/ {on = 0}
     on' README.md >"$tmp/walkthrough.md"
[ "$(head -n1 "$tmp/walkthrough.md")" = '```sh' ] && [ "$(tail -n1 "$tmp/walkthrough.md")" = '```' ] \
  || fail "README.md has no \`\`\`sh block between <!-- walkthrough --> and <!-- /walkthrough -->"
sed '1d;$d' "$tmp/walkthrough.md" >"$tmp/walkthrough.body"
grep -q '```' "$tmp/walkthrough.body" && fail "README.md's walkthrough holds more than one code block"
{ echo "PS4=\$'\\n@@walkthrough@@ '"; cat "$tmp/walkthrough.body"; } >"$tmp/walkthrough.sh"
log=/var/log/apache2/error.log
access=/var/log/apache2/ordersync-example_access.log
log_from=$(( $(stat -c %s "$log" 2>/dev/null || echo 0) + 1 ))
access_from=$(( $(stat -c %s "$access" 2>/dev/null || echo 0) + 1 ))
echo "test-deb: running README.md's walkthrough ($(wc -l <"$tmp/walkthrough.body") lines) with bash -e -x"
set +e
bash -e -x "$tmp/walkthrough.sh" >"$tmp/walkthrough.log" 2>&1
wrc=$?
set -e
# The log shows the example key: it is masked (the package made it and the purge removes it).
mask() {
  local k sedargs=(-e 's/^@@walkthrough@@ /+ /')
  for k in "${keys[@]}"; do
    [ -r "$k" ] && sedargs+=(-e "s|$(head -n1 "$k")|<${k##*/}>|g")
  done
  sed "${sedargs[@]}" "$1"
}
mask "$tmp/walkthrough.log" | grep -v '^$' | sed 's/^/  | /'
[ $wrc -eq 0 ] || fail "README.md's walkthrough failed (exit $wrc; its output above)"
ok "README.md's walkthrough ran to its end"

# The output of each traced command: the lines after its trace line, up to the next one.
output_of() {
  awk -v pat="$1" '/^@@walkthrough@@ / {on = (index($0, pat) > 0); next} on' "$tmp/walkthrough.log"
}
post=$(output_of 'curl -s -X POST')
get=$(output_of 'curl -s http://localhost:8470/ordersync/orders/webshop1/WEB-1001')
echo "$post" | grep -q '"status_url":"/ordersync/orders/webshop1/WEB-1001"' \
  && echo "$post" | grep -q '"state":"queued"' \
  || fail "the POST did not answer the accepted order; it printed: $post"
tail -c +"$access_from" "$access" 2>/dev/null | grep -q '"POST /ordersync/orders HTTP/1.1" 202 ' \
  || fail "the POST was not answered 202 ($access: $(tail -c +"$access_from" "$access" 2>/dev/null))"
ok "the POST answered 202 with the order's status_url, state queued"
echo "$get" | grep -q '"reference":"WEB-1001"' && echo "$get" | grep -q '"source_id":"webshop1"' \
  || fail "the GET did not show order WEB-1001 of webshop1; it printed: $get"
ok "the GET shows the order WEB-1001 of webshop1"
# The hub's start-up notice names its version, its <Location> and its store, in Apache's
# error log (the example site has no ErrorLog of its own).
notice=$(tail -c +"$log_from" "$log" 2>/dev/null \
         | grep -F "ordersync $version: hub at <Location /ordersync> of localhost:8470: store sqlite3 /var/lib/ordersync/example.db, durability normal" \
         | tail -n1 || true)
[ -n "$notice" ] || fail "no start-up line 'ordersync $version: hub at <Location /ordersync> ...' in $log: $(tail -c +"$log_from" "$log" 2>/dev/null | tail -n5)"
ok "the start-up notice: ${notice##*] }"

# ---- c. what the package made -------------------------------------------------------------
[ "$(mode "$store")" = "www-data:www-data 750" ] || fail "$store is $(mode "$store"), not www-data:www-data 750"
ok "$store is www-data:www-data 0750"
[ "$(mode "$keydir")" = "root:root 755" ] || fail "$keydir is $(mode "$keydir"), not root:root 755"
for k in "${keys[@]}"; do
  [ -f "$k" ] || fail "$k is missing"
  [ "$(mode "$k")" = "root:www-data 640" ] || fail "$k is $(mode "$k"), not root:www-data 640"
  len=$(head -n1 "$k" | tr -d '\n' | wc -c)
  [ "$len" -ge 16 ] || fail "$k holds $len characters, fewer than 16"
done
ok "the keys ${keys[*]} are root:www-data 0640, of 16 characters or more"
[ -f "$store/example.db" ] || fail "the store $store/example.db was not created by the first POST"
for f in "$store"/example.db*; do
  [ "$(mode "$f")" = "www-data:www-data 600" ] || fail "$f is $(mode "$f"), not www-data:www-data 600"
done
ok "the store $store/example.db exists, and it and its -wal/-shm are www-data:www-data 0600"
# configtest judges the store's directory for the configured User (www-data), not for root
chown root:root "$store"
out=$(apachectl configtest 2>&1) && { chown www-data:www-data "$store"; fail "configtest accepted a store directory www-data cannot write: $out"; }
chown www-data:www-data "$store"
grep -q "the store's directory $store is not writable by the user Apache runs as (www-data;" <<<"$out" \
  || fail "configtest refused the root-owned store directory without naming it and www-data: $out"
ok "configtest refuses a store directory www-data cannot write, naming the path and the user"

# ---- d. every ```apache block of README.md passes configtest ------------------------------
awk -v dir="$tmp" '
  /^```apache[[:space:]]*$/ {n++; f = sprintf("%s/block.%03d", dir, n); printf "" > f; print NR > (f ".line"); on = 1; next}
  on && /^```[[:space:]]*$/ {on = 0; close(f); next}
  on {print > f}' README.md
a2enmod -q ordersync >/dev/null
a2dissite -q ordersync-example >/dev/null
bad=0
nblocks=0
for b in "$tmp"/block.[0-9][0-9][0-9]; do
  [ -e "$b" ] || continue
  nblocks=$((nblocks + 1))
  line=$(cat "$b.line")
  made=()
  # What the README tells an administrator to make first: the key files and the store's
  # directory the block names.
  for f in $(grep -oE 'file:/[^[:space:]"]+' "$b" | sed 's/^file://' | sort -u); do
    [ -e "$f" ] && continue
    if [ ! -d "${f%/*}" ]; then install -d -m 0755 "${f%/*}"; made+=("${f%/*}"); fi
    (umask 027; head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$f")
    chgrp www-data "$f"
    made+=("$f")
  done
  for db in $(sed -n 's/^[[:space:]]*DBDParams[[:space:]]\{1,\}\(\/[^[:space:]]*\).*/\1/p' "$b"); do
    [ -d "${db%/*}" ] && continue
    install -d -o www-data -g www-data -m 0750 "${db%/*}"
    made+=("${db%/*}")
  done
  cp "$b" /etc/apache2/conf-available/$snippet.conf
  created_snippet=yes
  a2enconf -q $snippet >/dev/null
  if out=$(apachectl configtest 2>&1); then
    ok "README.md's \`\`\`apache block at line $line passes apachectl configtest"
  else
    echo "test-deb: FAIL: README.md's \`\`\`apache block at line $line fails apachectl configtest:" >&2
    echo "$out" | sed 's/^/  | /' >&2
    bad=$((bad + 1))
  fi
  a2disconf -q $snippet >/dev/null
  rm -f /etc/apache2/conf-available/$snippet.conf
  created_snippet=no
  for ((n = ${#made[@]} - 1; n >= 0; n--)); do rm -rf "${made[n]}"; done
  made=()
done
[ "$nblocks" -gt 0 ] || fail "README.md has no \`\`\`apache block"
[ $bad -eq 0 ] || fail "$bad of README.md's $nblocks \`\`\`apache blocks fail apachectl configtest (above)"
a2ensite -q ordersync-example >/dev/null

# ---- e. a reinstall keeps the keys ----------------------------------------------------------
sha256sum "${keys[@]}" >"$tmp/keys.sha256"
apt-get install --reinstall -y -q "./$deb" >"$tmp/reinstall.log" 2>&1 \
  || { cat "$tmp/reinstall.log"; fail "apt-get install --reinstall ./$deb failed"; }
sha256sum -c --quiet "$tmp/keys.sha256" || fail "the reinstall changed a key"
for k in "${keys[@]}"; do
  [ "$(mode "$k")" = "root:www-data 640" ] || fail "after the reinstall $k is $(mode "$k")"
done
[ "$(mode "$store")" = "www-data:www-data 750" ] && [ -f "$store/example.db" ] \
  || fail "the reinstall changed $store"
ok "apt-get install --reinstall keeps the keys byte for byte, and the store"

# ---- f. remove, then purge ----------------------------------------------------------------
a2dissite -q ordersync-example >/dev/null
a2dismod -q ordersync >/dev/null
stop_apache || fail "apachectl stop did not stop Apache"
apt-get remove -y -q "$pkg" >"$tmp/remove.log" 2>&1 || { cat "$tmp/remove.log"; fail "apt-get remove $pkg failed"; }
[ -d "$store" ] && [ -f "$store/example.db" ] || fail "apt-get remove removed the store $store"
sha256sum -c --quiet "$tmp/keys.sha256" || fail "apt-get remove changed or removed a key"
[ ! -e /usr/lib/apache2/modules/mod_ordersync.so ] || fail "apt-get remove left mod_ordersync.so"
ok "apt-get remove keeps the store and the keys, removes the module"
apt-get purge -y -q "$pkg" >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "apt-get purge $pkg failed"; }
left=()
for p in "$store" "$keydir" /var/lib/$pkg /usr/lib/apache2/modules/mod_ordersync.so /usr/share/doc/$pkg \
         /etc/apache2/{mods,sites}-{available,enabled}/*ordersync*; do
  if [ -e "$p" ] || [ -L "$p" ]; then left+=("$p"); fi
done
[ ${#left[@]} -eq 0 ] || fail "apt-get purge left: ${left[*]}"
case "$(pkg_status)" in
  ""|un*|pn*) ;;
  *) fail "after apt-get purge, dpkg says $pkg is '$(pkg_status)'" ;;
esac
ok "apt-get purge leaves nothing: no store, keys, module, configuration or documentation"
