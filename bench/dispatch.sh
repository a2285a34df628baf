#!/usr/bin/env bash
# bench/dispatch.sh: the dispatcher's benchmarks, each on its own instance under
# bench/out/dispatch-var (127.0.0.1:PORT, an empty SQLite store, durability normal) and one
# Clougistic simulator of its own (HTTP on SIM_PORT, HTTPS with HTTP/2 on SIM_PORT+1, a
# throwaway CA). Orders are bench/order-2k.json with a fresh reference each
# (bench/post-order.lua through wrk).
#
#   drain [N]     N (10000) orders are queued with no dispatcher (the intake's own rate is
#                 measured doing it), then the instance restarts delivering them: orders/s
#                 from the first to the last arrival at the simulator, over HTTP, over HTTPS
#                 (connections reused), and over HTTPS with reuse off (the module built with
#                 -DOS_NO_REUSE: a connection per delivery; comparison only).
#   mixed [S]     the intake at full load for S (60) seconds with the dispatcher delivering
#                 everything to the simulator, then S seconds with no dispatcher: the two
#                 rates, and the queue (jobs not yet delivered) at the end of the first run.
#   e2e [RATE]    RATE (1000) orders/s for E2E_S (20) seconds with the dispatcher running:
#                 per order, from its commit (the store's intake time) to the simulator's
#                 answer read by the dispatcher (its `delivered` event); and the intake's own
#                 latency (request to 202) at that rate.
#
# Environment: PORT (18493), SIM_PORT (18497), THREADS (2), CONNECTIONS (20),
#   CONCURRENCY (OrderSyncDispatchConcurrency, 16); PERF_OUT=file (with PERF_VARIANT, http)
#   profiles the delivering process for PERF_S (2) seconds of the drain (perf record -g).
# Reports go to stdout and bench/out/dispatch-<mode>-<date>.txt.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mode=${1:-}
PORT=${PORT:-18493}
SIM_PORT=${SIM_PORT:-18497}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-20}
CONCURRENCY=${CONCURRENCY:-16}
out=$top/bench/out
var=$out/dispatch-var
ca=$out/dispatch-ca
lua=$top/bench/post-order.lua
body=$top/bench/order-2k.json
instance=$top/build/instance.sh
so=${MODULE_SO:-$top/build/out/.libs/mod_ordersync.so}
noreuse_so=$top/build/noreuse/.libs/mod_ordersync.so
stamp=$(date +%Y%m%d-%H%M%S)
report=$out/dispatch-$mode-$stamp.txt
simkey=bench-sim-key-$RANDOM$RANDOM
sim_pid=

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }
r() { printf '%s\n' "$*" | tee -a "$report"; }
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

case $mode in drain|mixed|e2e) ;; *) die "usage: bench/dispatch.sh drain [N] | mixed [SECONDS] | e2e [RATE]" ;; esac
for c in wrk curl jq sqlite3 timeout node; do command -v "$c" >/dev/null || die "$c is missing"; done
[ -f "$so" ] || die "build the module first (make)"
mkdir -p "$out"
: > "$report"

stop_instance() { OS_VAR=$var "$instance" stop >/dev/null 2>&1 || true; }
stop_sim() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null || true; sim_pid=; }
trap 'stop_instance; stop_sim' EXIT
trap 'exit 130' INT TERM

start_sim() {
  [ -f "$ca/ca.pem" ] || bash "$top/t/sim/make-ca.sh" "$ca" >/dev/null
  CLOUGISTIC_SIM_ENTITIES="1:$simkey" node "$top/t/sim/clougistic.js" --port "$SIM_PORT" \
    --tls-port $((SIM_PORT + 1)) --cert "$ca/server.pem" --key "$ca/server.key" --http2 \
    --log-max 2000000 --quiet >"$out/dispatch-sim.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$SIM_PORT/_sim/stats" && return 0; sleep 0.1; done
  die "the simulator did not start (bench/out/dispatch-sim.log)"
}
sim() { curl -sf -X "$1" "http://127.0.0.1:$SIM_PORT$2"; }
# warmed up (node compiles its hot paths in the first few thousand calls), so the figures
# measure the module and not the simulator's start
warm_sim() {
  SIM_KEY=$simkey SIM_ENTITY=1 wrk -t1 -c16 -d2s -s "$top/bench/sim-enqueue.lua" \
    "http://127.0.0.1:$SIM_PORT/api/v1/order/enqueue" >/dev/null
  sim DELETE /_sim/state >/dev/null
}

# configure URL|none [SO] [keep]: the instance's local.conf, delivering to URL (or not at
# all), and (re)starts it; `keep` keeps the store
configure() {
  local url=$1 module=${2:-$so} keep=${3:-}
  stop_instance
  [ -n "$keep" ] || rm -rf "$var/store"
  rm -rf "$var/logs" "$var/instance.json"
  mkdir -p "$var/conf" "$var/keys"
  echo "$simkey" > "$var/keys/bench-sim.key"
  {
    echo "OrderSyncQueueMax 100000000"
    echo "OrderSyncDispatchConcurrency $CONCURRENCY"
    if [ "$url" != none ]; then
      echo "OrderSyncClougisticURL $url"
      echo "OrderSyncClougisticKey file:$var/keys/bench-sim.key"
      echo "OrderSyncClougisticCAFile $ca/ca.pem"
    fi
  } > "$var/conf/local.conf"
  if [ "$url" = none ]; then touch "$var/conf/no-clougistic"; else rm -f "$var/conf/no-clougistic"; fi
  OS_VAR=$var OS_SO=$module "$instance" start "$PORT" >/dev/null
  key=$(jq -r .source.key "$var/instance.json")
  orders_url=$(jq -r .base_url "$var/instance.json")/orders
}

run_wrk() {   # run_wrk SECONDS [DELAY_MS] -> the BENCH_RESULT line, with wrk_cpu_s= (its CPU time)
  local f=$out/dispatch-wrk.txt
  ORDERSYNC_KEY=$key BENCH_BODY=$body BENCH_DELAY_MS=${2:-} \
    /usr/bin/time -f 'wrk_cpu_s=%U+%S' -o "$out/dispatch-wrk-cpu.txt" \
    timeout -k 5 $(( $1 + 30 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1"s --timeout 5s \
    --latency -s "$lua" "$orders_url" > "$f" 2>&1 || { tail -5 "$f" >&2; die "wrk failed"; }
  grep '^BENCH_RESULT' "$f" | tr -d '\n' || die "no BENCH_RESULT in $f"
  echo " wrk_cpu_s=$(awk -F'[=+]' '/^wrk_cpu_s=/ { print $2 + $3 }' "$out/dispatch-wrk-cpu.txt")"
}

# CPU time (clock ticks) of the instance's processes, and of the simulator's
tck=$(getconf CLK_TCK)
ticks_of() { local t=0 p f; for p in "$@"; do read -r -a f <"/proc/$p/stat" 2>/dev/null && t=$(( t + f[13] + f[14] )); done; echo "$t"; }
hub_ticks() { ticks_of $(pgrep -f "$var/conf/httpd.conf" || true); }
us_per() { awk -v t="$1" -v n="$2" -v k="$tck" 'BEGIN { printf "%.0f", t * 1e6 / k / n }'; }
cores() { awk -v t="$1" -v k="$tck" -v s="$2" 'BEGIN { printf "%.2f", t / k / s }'; }   # TICKS SECONDS
wrk_ticks() { awk -v c="$(field "$1" wrk_cpu_s)" -v k="$tck" 'BEGIN { printf "%.0f", c * k }'; }   # LINE

store_sql() { sqlite3 -cmd '.timeout 5000' "$var/store/ordersync.db" "$1"; }
waiting_jobs() { store_sql "SELECT COUNT(*) FROM os_jobs WHERE state IN ('queued','retrying','delivering')"; }

# arrivals at the simulator: "count first_us last_us"
arrivals() {
  sim GET '/_sim/enqueued?brief=1' | jq -r '[.[].received_us] | "\(length) \(min) \(max)"'
}

r "mod_ordersync dispatcher benchmark ($mode), $(date '+%Y-%m-%d %H:%M:%S %z'), module at $(git rev-parse --short HEAD)"
r "host: $(nproc) CPU, $(uname -sr); wrk -t$THREADS -c$CONNECTIONS and the simulator (node) share these CPUs; mpm_event at httpd's defaults; OrderSyncDispatchConcurrency $CONCURRENCY; SQLite WAL, synchronous=NORMAL"
start_sim
warm_sim

case $mode in
drain)
  n=${2:-10000}
  [ -f "$noreuse_so" ] || die "build the comparison module first (make build/noreuse/.libs/mod_ordersync.so, or make bench-dispatch)"
  r ""
  r "$(printf '%-28s %8s %12s %10s %12s %12s %14s %14s %14s %12s' variant orders 'intake/s' 'drain/s' 'drain/intake' connections 'hub µs/intake' 'wrk µs/intake' 'hub µs/drain' 'sim µs/drain')"
  for v in ${VARIANTS:-http https https-noreuse}; do
    case $v in
      http) url=http://127.0.0.1:$SIM_PORT module=$so ;;
      https) url=https://127.0.0.1:$((SIM_PORT + 1)) module=$so ;;
      https-noreuse) url=https://127.0.0.1:$((SIM_PORT + 1)) module=$noreuse_so ;;
    esac
    configure none "$module"
    # queue at least n orders with no dispatcher; the intake's own rate on the way
    secs=$(( n / 5000 + 1 ))
    h0=$(hub_ticks)
    line=$(run_wrk "$secs")
    h1=$(hub_ticks)
    intake=$(field "$line" rps)
    queued=$(waiting_jobs)
    [ "$queued" -ge "$n" ] || die "only $queued orders queued in ${secs}s"
    sim DELETE /_sim/state >/dev/null
    configure "$url" "$module" keep
    d0=$(hub_ticks); s0=$(ticks_of "$sim_pid")
    if [ -n "${PERF_OUT:-}" ] && [ "$v" = "${PERF_VARIANT:-http}" ]; then
      # a profile of the delivering process (perf record -g), for `perf report -i $PERF_OUT`
      for _ in $(seq 1 50); do
        dpid=$(grep -o "process [0-9]* delivers" "$var/logs/error_log" | tail -1 | awk "{print \$2}" || true)
        [ -n "$dpid" ] && break; sleep 0.1
      done
      perf record -g -p "$dpid" -o "$PERF_OUT" -- sleep "${PERF_S:-2}" >/dev/null 2>&1 &
    fi
    until_t=$(( $(date +%s) + 300 ))
    while :; do
      got=$(sim GET /_sim/stats | jq .orders)
      [ "$got" -ge "$queued" ] && break
      [ "$(date +%s)" -lt "$until_t" ] || die "$v: only $got of $queued delivered in 300 s"
      sleep 0.2
    done
    d1=$(hub_ticks); s1=$(ticks_of "$sim_pid")
    read -r cnt first last <<<"$(arrivals)"
    conns=$(sim GET '/_sim/enqueued?brief=1' | jq '[.[].conn] | unique | length')
    rate=$(awk -v n="$cnt" -v a="$first" -v b="$last" 'BEGIN { printf "%.0f", (n - 1) / ((b - a) / 1e6) }')
    r "$(printf '%-28s %8d %12.0f %10d %12.2f %12d %14s %14s %14s %12s' "$v" "$queued" "$intake" "$rate" \
          "$(awk -v a="$rate" -v b="$intake" 'BEGIN { printf "%.2f", a / b }')" "$conns" \
          "$(us_per $(( h1 - h0 )) "$queued")" \
          "$(us_per "$(wrk_ticks "$line")" "$(field "$line" requests)")" \
          "$(us_per $(( d1 - d0 )) "$cnt")" "$(us_per $(( s1 - s0 )) "$cnt")")"
    eval "rate_${v//-/_}=$rate"
  done
  r ""
  [ -n "${rate_https_noreuse:-}" ] && [ -n "${rate_https:-}" ] && r "HTTPS with reuse / without: $(awk -v a="$rate_https" -v b="$rate_https_noreuse" 'BEGIN { printf "%.2f", a / b }')x"
  ;;
mixed)
  s=${2:-60}
  configure "http://127.0.0.1:$SIM_PORT"
  run_wrk 2 >/dev/null
  q0=$(waiting_jobs)
  d0=$(sim GET /_sim/stats | jq .orders); h0=$(hub_ticks); s0=$(ticks_of "$sim_pid")
  with=$(run_wrk "$s")
  d1=$(sim GET /_sim/stats | jq .orders); h1=$(hub_ticks); s1=$(ticks_of "$sim_pid")
  q1=$(waiting_jobs)
  sleep 2
  q2=$(waiting_jobs)
  delivered=$(sim GET /_sim/stats | jq .orders)
  configure none
  run_wrk 2 >/dev/null
  h2=$(hub_ticks)
  without=$(run_wrk "$s")
  h3=$(hub_ticks)
  r ""
  r "$(printf 'intake with the dispatcher:    %8.0f orders/s, p50 %s ms, p99 %s ms, non-2xx %s' "$(field "$with" rps)" \
        "$(ms "$(field "$with" p50_us)")" "$(ms "$(field "$with" p99_us)")" "$(field "$with" non2xx)")"
  r "$(printf 'intake without a dispatcher:   %8.0f orders/s, p50 %s ms, p99 %s ms, non-2xx %s' "$(field "$without" rps)" \
        "$(ms "$(field "$without" p50_us)")" "$(ms "$(field "$without" p99_us)")" "$(field "$without" non2xx)")"
  r "with/without: $(awk -v a="$(field "$with" rps)" -v b="$(field "$without" rps)" 'BEGIN { printf "%.2f", a / b }')"
  r "queue (jobs not yet delivered): $q0 before the ${s}s run, $q1 at its end, $q2 two seconds later; $delivered orders at the simulator"
  r "during the run with the dispatcher: $(( d1 - d0 )) orders delivered ($(awk -v n=$(( d1 - d0 )) -v s="$s" 'BEGIN { printf "%.0f", n / s }')/s); CPU: Apache $(cores $(( h1 - h0 )) "$s") cores, simulator $(cores $(( s1 - s0 )) "$s") cores, wrk $(cores "$(wrk_ticks "$with")" "$s") cores; without the dispatcher: Apache $(cores $(( h3 - h2 )) "$s") cores, wrk $(cores "$(wrk_ticks "$without")" "$s") cores"
  ;;
e2e)
  rate=${2:-1000}
  e2e_s=${E2E_S:-20}
  configure "http://127.0.0.1:$SIM_PORT"
  run_wrk 2 >/dev/null
  sleep 1
  sim DELETE /_sim/state >/dev/null
  d=$(awk -v c="$CONNECTIONS" -v r="$rate" 'BEGIN { printf "%.3f", c * 1000 / r }')
  got=$(field "$(run_wrk 3 "$d")" rps)
  d=$(awk -v c="$CONNECTIONS" -v r="$rate" -v a="$got" -v d="$d" \
        'BEGIN { l = c * 1000 / a - d; x = c * 1000 / r - l; printf "%.3f", (x > 0 ? x : 0) }')
  sleep 1
  sim DELETE /_sim/state >/dev/null
  t0=$(date +%s%6N)
  line=$(run_wrk "$e2e_s" "$d")
  sleep 2
  # per order: from its commit (the store's intake time) to the dispatcher reading the
  # simulator's 200 (its `delivered` event): both times from the hub's clock. (The
  # simulator's received_us is right only within a millisecond: too coarse here.)
  store_sql "SELECT e.at - o.intake_at FROM os_orders o JOIN os_events e ON e.order_id = o.id AND e.kind = 'delivered' WHERE o.created_at >= $t0" > "$out/dispatch-e2e.txt"
  lat=$(awk '{ print $1 / 1000 }' "$out/dispatch-e2e.txt" | sort -n \
        | awk '{ a[NR] = $1 } END { printf "n=%d p50=%.2f p90=%.2f p99=%.2f max=%.2f", NR, a[int(NR*0.5)+1], a[int(NR*0.9)+1], a[int(NR*0.99)+1], a[NR] }')
  r ""
  r "$(printf 'intake at %s orders/s for %s s (achieved %.0f/s): request to 202 p50 %s ms, p99 %s ms, non-2xx %s' "$rate" "$e2e_s" \
        "$(field "$line" rps)" "$(ms "$(field "$line" p50_us)")" "$(ms "$(field "$line" p99_us)")" "$(field "$line" non2xx)")"
  r "commit to Clougistic's answer, read by the dispatcher (ms): $lat"
  ;;
esac
