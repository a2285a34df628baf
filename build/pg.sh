#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite, reachable only through a Unix socket.
#   build/pg.sh start DIR PORT   (creates DIR/data, DIR/sock and the databases ordersync, ordersync_queue, ordersync_locked)
#   build/pg.sh stop DIR
# Runs as the invoking user (the suite's unprivileged user when make test-pg runs as root).
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "pg: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
cmd=${1:?start|stop}; dir=${2:?dir}
case "$cmd" in
  start)
    port=${3:?port}
    rm -rf "$dir"; mkdir -p "$dir/sock"
    "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-k $dir/sock -p $port \
      -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c max_connections=300" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    for db in ordersync ordersync_queue ordersync_locked; do
      "$bin/createdb" -h "$dir/sock" -p "$port" -U postgres "$db"
    done
    echo "pg: cluster up (socket $dir/sock, port $port)"
    ;;
  stop)
    [ -d "$dir/data" ] && "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
