#!/usr/bin/env bash
# bench/store.sh: the store's benchmarks, each on its own instance under bench/out/store-var
# (127.0.0.1:PORT, an empty SQLite store, OrderSyncDurability $DURABILITY), every request a
# POST of bench/order-2k.json with a fresh reference (bench/post-order.lua):
#
#   board [ROUNDS]   the committer (the board: one process commits every process's orders)
#                    against one writer per process (the module built with -DOS_BOARD_OFF,
#                    `make noboard`), in ROUNDS (3) alternating runs of DURATION s each, so
#                    drift of the machine falls on both alike. Prints orders/s and p99 per run
#                    and the median ratio.
#   latency [RATE]   latency at a fixed rate: first the peak (DURATION s, full load), then
#                    RATE orders/s (default: half the peak) for LATENCY_S (20) s, through
#                    wrk's delay(): each connection waits before its next request, so the
#                    rate is the client's choice, not the server's. p50/p90/p99/max.
#   growth [SECONDS] the rate as the store grows: full load for SECONDS (120) in SEGMENT_S (10)
#                    segments, each reported with the orders stored at its end, the store's
#                    size and the children's RSS. A million orders needs about 100 s here.
#
# Environment: PORT (18491), DURATION (8), THREADS (2), CONNECTIONS (20), DURABILITY (normal),
#   MPM (default: httpd's compiled-in event settings, 3 processes of 25 threads).
# Reports go to stdout and bench/out/store-<mode>-<date>.txt. Only 127.0.0.1 is targeted, and
# every wrk run is bounded by `timeout`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mode=${1:-}
PORT=${PORT:-18491}
DURATION=${DURATION:-8}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-20}
DURABILITY=${DURABILITY:-normal}
out=$top/bench/out
var=$out/store-var
lua=$top/bench/post-order.lua
body=$top/bench/order-2k.json
instance=$top/build/instance.sh
board_so=$top/build/out/.libs/mod_ordersync.so
noboard_so=$top/build/noboard/.libs/mod_ordersync.so
stamp=$(date +%Y%m%d-%H%M%S)
report=$out/store-$mode-$stamp.txt

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }
r() { printf '%s\n' "$*" | tee -a "$report"; }
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

case $mode in board|latency|growth) ;; *) die "usage: bench/store.sh board [ROUNDS] | latency [RATE] | growth [SECONDS]" ;; esac
for c in wrk curl jq sqlite3 timeout; do command -v "$c" >/dev/null || die "$c is missing"; done
[ -f "$board_so" ] || die "build the module first (make)"
mkdir -p "$out"
: > "$report"

stop_instance() { OS_VAR=$var "$instance" stop >/dev/null 2>&1 || true; }
trap 'stop_instance' EXIT
trap 'exit 130' INT TERM

start_instance() {   # start_instance SO: a fresh instance with an empty store
  stop_instance
  rm -rf "$var/store" "$var/logs" "$var/instance.json"
  mkdir -p "$var/conf"
  printf 'OrderSyncDurability %s\n' "$DURABILITY" > "$var/conf/local.conf"
  # no dispatcher drains the queue in these runs, so the queue limit is lifted (the
  # default, 100000, would refuse orders within a run or two)
  printf 'OrderSyncQueueMax 100000000\n' >> "$var/conf/local.conf"
  touch "$var/conf/no-clougistic"      # the store alone: no dispatcher (bench/dispatch.sh has it)
  OS_VAR=$var OS_SO=$1 "$instance" start "$PORT" >/dev/null
  key=$(jq -r .source.key "$var/instance.json")
  url=$(jq -r .base_url "$var/instance.json")/orders
  [[ $url == http://127.0.0.1:* ]] || die "unexpected URL $url"
}

run_wrk() {   # run_wrk SECONDS [DELAY_MS] -> the BENCH_RESULT line
  local f=$out/store-wrk.txt
  ORDERSYNC_KEY=$key BENCH_BODY=$body BENCH_DELAY_MS=${2:-} \
    timeout -k 5 $(( $1 + 30 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1"s --timeout 5s \
    --latency -s "$lua" "$url" > "$f" 2>&1 || { tail -5 "$f" >&2; die "wrk failed"; }
  grep '^BENCH_RESULT' "$f" || die "no BENCH_RESULT in $f"
}

store_sql() {
  local db=$var/store/ordersync.db
  runuser -u www-data -- sqlite3 -cmd '.timeout 5000' "$db" "$1" 2>/dev/null \
    || sqlite3 -cmd '.timeout 5000' "$db" "$1"
}

children_rss_mb() {   # the summed RSS of the instance's children, MB
  local ppid; ppid=$(cat "$var/run/httpd.pid")
  ps -o rss= --ppid "$ppid" | awk '{ s += $1 } END { printf "%.0f", s / 1024 }'
}

r "mod_ordersync store benchmark ($mode), $(date '+%Y-%m-%d %H:%M:%S %z'), module at $(git rev-parse --short HEAD)"
r "host: $(nproc) CPU, $(uname -sr); wrk -t$THREADS -c$CONNECTIONS shares these CPUs; mpm_event at httpd's defaults (3 processes x 25 threads); durability $DURABILITY (SQLite WAL)"

case $mode in
board)
  rounds=${2:-3}
  [ -f "$noboard_so" ] || die "build the comparison module first (make noboard)"
  r ""
  r "$(printf '%-6s %-26s %10s %8s %8s %8s' round variant orders/s p50_ms p99_ms non2xx)"
  ratios=()
  for i in $(seq 1 "$rounds"); do
    declare -A rate=()
    for v in board own; do
      so=$board_so; [ $v = own ] && so=$noboard_so
      start_instance "$so"
      run_wrk 2 >/dev/null                       # warm-up
      line=$(run_wrk "$DURATION")
      rate[$v]=$(field "$line" rps)
      label="committer (board)"; [ $v = own ] && label="one writer per process"
      r "$(printf '%-6s %-26s %10.0f %8s %8s %8s' "$i" "$label" "${rate[$v]}" "$(ms "$(field "$line" p50_us)")" \
            "$(ms "$(field "$line" p99_us)")" "$(field "$line" non2xx)")"
    done
    ratios+=("$(awk -v a="${rate[board]}" -v b="${rate[own]}" 'BEGIN { printf "%.3f", a / b }')")
  done
  r ""
  r "board/own per round: ${ratios[*]}; median $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
  ;;
latency)
  start_instance "$board_so"
  run_wrk 2 >/dev/null
  peak=$(field "$(run_wrk "$DURATION")" rps)
  rate=${2:-$(awk -v p="$peak" 'BEGIN { printf "%d", p / 2 }')}
  # delay per connection for the target rate, corrected once for the service time measured
  # in a short calibration run
  d=$(awk -v c="$CONNECTIONS" -v r="$rate" 'BEGIN { printf "%.3f", c * 1000 / r }')
  got=$(field "$(run_wrk 4 "$d")" rps)
  d=$(awk -v c="$CONNECTIONS" -v r="$rate" -v a="$got" -v d="$d" \
        'BEGIN { l = c * 1000 / a - d; x = c * 1000 / r - l; printf "%.3f", (x > 0 ? x : 0) }')
  line=$(run_wrk "${LATENCY_S:-20}" "$d")
  r ""
  r "peak: $(printf '%.0f' "$peak") orders/s; target $rate orders/s (think time $d ms per connection)"
  r "$(printf 'achieved %.0f orders/s over %s s: p50 %s ms, p90 %s ms, p99 %s ms, max %s ms, non-2xx %s' \
        "$(field "$line" rps)" "${LATENCY_S:-20}" "$(ms "$(field "$line" p50_us)")" "$(ms "$(field "$line" p90_us)")" \
        "$(ms "$(field "$line" p99_us)")" "$(ms "$(field "$line" max_us)")" "$(field "$line" non2xx)")"
  ;;
growth)
  total=${2:-120}; seg=${SEGMENT_S:-10}
  start_instance "$board_so"
  r ""
  r "$(printf '%-8s %10s %8s %8s %12s %10s %8s' 'until_s' orders/s p50_ms p99_ms stored store_MB rss_MB)"
  t=0
  while [ "$t" -lt "$total" ]; do
    line=$(run_wrk "$seg")
    t=$((t + seg))
    stored=$(store_sql 'select count(*) from os_orders' || echo "?")
    size=$(du -cm "$var/store" | awk 'END { print $1 }')
    r "$(printf '%-8s %10.0f %8s %8s %12s %10s %8s' "$t" "$(field "$line" rps)" "$(ms "$(field "$line" p50_us)")" \
          "$(ms "$(field "$line" p99_us)")" "$stored" "$size" "$(children_rss_mb)")"
  done
  ;;
esac
r ""
r "report: $report"
