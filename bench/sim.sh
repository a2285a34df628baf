#!/usr/bin/env bash
# The Clougistic simulator's ceiling: wrk posting a valid ~1 KB Demand envelope to its enqueue
# route (bench/sim-enqueue.lua, a new reference per request), keep-alive, nothing else running.
#   bash bench/sim.sh            (make bench-sim)   DURATION=30 THREADS=1 CONNS=20 PORT=18495
# The simulator runs on its own port; its figures go to stdout and bench/out/sim-<date>.txt.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-18495} dur=${DURATION:-10} threads=${THREADS:-1} conns=${CONNS:-20}
out=$top/bench/out
mkdir -p "$out"
report=$out/sim-$(date -u +%Y%m%d-%H%M%S).txt
export SIM_KEY=bench-sim-key-0123456789 SIM_ENTITY=1
CLOUGISTIC_SIM_ENTITIES="$SIM_ENTITY:$SIM_KEY" node "$top/t/sim/clougistic.js" --port "$port" --quiet &
sim=$!
trap 'kill $sim 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/_sim/stats" && break; sleep 0.1; done
url=http://127.0.0.1:$port/api/v1/order/enqueue
cmd="wrk -t$threads -c$conns -d${dur}s --latency -s bench/sim-enqueue.lua $url"
cd "$top"
wrk -t"$threads" -c"$conns" -d2s -s bench/sim-enqueue.lua "$url" >/dev/null   # warm-up
curl -s -X DELETE "http://127.0.0.1:$port/_sim/state" >/dev/null
{
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, node $(node --version)"
  echo "# $cmd"
  $cmd
  echo "# simulator after the run: $(curl -s "http://127.0.0.1:$port/_sim/stats")"
  echo "# its memory (RSS, KB): $(ps -o rss= -p $sim)"
} | tee "$report"
