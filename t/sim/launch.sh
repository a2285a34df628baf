#!/usr/bin/env bash
# Starts and stops the upstream simulators beside an instance whose hub listens on PORT:
# Clougistic on PORT+1 (HTTP). CloudSuite will follow on PORT+2.
#   t/sim/launch.sh start PORT VAR [--exit-with PID] | stop VAR | json PORT VAR
# Keys: VAR/keys/clougistic.key (access key, generated once), VAR/keys/clougistic.entity
# (entity id). Pid files in VAR/run/, logs in VAR/logs/. `json` prints the members that
# build/instance.sh adds to instance.json. `start` fails, showing the log, if a simulator
# does not answer within 5 s.
set -euo pipefail
# The simulators and their probes are not the module: a sanitizer runtime preloaded for an
# instrumented module (make test-asan) must not reach node or curl (curl hung with it)
unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
here=$(cd "$(dirname "$0")" && pwd)
node=${OS_NODE:-node}

say() { echo "sim: $*"; }
newkey() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='; }

alive() {    # the pid in file $1, if that process is still there
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

stop_one() {    # pid file, name
  local pid
  if pid=$(alive "$1"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    say "$2 stopped (pid $pid)"
  fi
  rm -f "$1"
}

answers() { curl -s -o /dev/null --max-time 1 "$1/_sim/stats"; }

# ---- Clougistic --------------------------------------------------------------------------
clougistic_start() {    # port var [exit-with pid]
  local port=$1 var=$2 exit_with=${3:-} pidfile=$2/run/clougistic-sim.pid log=$2/logs/clougistic-sim.log
  local args=(--port "$port") pid
  mkdir -p "$var/keys" "$var/run" "$var/logs"
  [ -s "$var/keys/clougistic.key" ] || { newkey > "$var/keys/clougistic.key"; chmod 600 "$var/keys/clougistic.key"; }
  [ -s "$var/keys/clougistic.entity" ] || echo 1 > "$var/keys/clougistic.entity"
  stop_one "$pidfile" "a Clougistic simulator left running"
  [ -n "$exit_with" ] && args+=(--exit-with "$exit_with")
  # the key travels in the environment, not on the command line (ps shows that)
  CLOUGISTIC_SIM_ENTITIES="$(cat "$var/keys/clougistic.entity"):$(cat "$var/keys/clougistic.key")" \
    setsid "$node" "$here/clougistic.js" "${args[@]}" >>"$log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" > "$pidfile"
  for _ in $(seq 1 50); do
    if answers "http://127.0.0.1:$port"; then
      say "Clougistic simulator on http://127.0.0.1:$port (pid $pid, log $log)"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  say "the Clougistic simulator did not start on port $port; the end of $log:"
  tail -5 "$log" >&2 || true
  kill -TERM "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  return 1
}

clougistic_json() {    # port var
  printf ' "clougistic_sim": "http://127.0.0.1:%s", "clougistic_access_key": "%s", "clougistic_entity_id": "%s"' \
    "$1" "$(cat "$2/keys/clougistic.key")" "$(cat "$2/keys/clougistic.entity")"
}

# ---- CloudSuite (PORT+2): not yet -------------------------------------------------------

case "${1:-}" in
  start)
    port=${2:?port}; var=${3:?var}; exit_with=
    [ "${4:-}" = --exit-with ] && exit_with=${5:?pid}
    clougistic_start $((port + 1)) "$var" "$exit_with"
    ;;
  stop)
    var=${2:?var}
    stop_one "$var/run/clougistic-sim.pid" "Clougistic simulator"
    ;;
  json)
    port=${2:?port}; var=${3:?var}
    clougistic_json $((port + 1)) "$var"
    ;;
  *)
    echo "usage: $0 start PORT VAR [--exit-with PID] | stop VAR | json PORT VAR" >&2
    exit 2
    ;;
esac
