-- bench/post-order.lua: wrk script that POSTs the Demand order in bench/order-2k.json, each
-- request with its own "reference", so the intake stores a new order every time (202) rather
-- than recognising a repeat (200).
--
--   ORDERSYNC_KEY=<demo source key> wrk -t2 -c20 -d8s --latency -s bench/post-order.lua \
--       http://127.0.0.1:18490/ordersync/orders
--
-- The same script drives the baselines (static file, proxy): identical body, headers and
-- client-side work per request, only the URL differs.
--
-- Environment:
--   ORDERSYNC_KEY  the source's key, sent as "Authorization: Bearer <key>" (omitted if unset)
--   BENCH_BODY     the order file (default: order-2k.json beside this script)
--   BENCH_RUN      a run prefix for the references (default: time + 4 random bytes, so a
--                  repeated run never collides with orders already stored)
--   BENCH_DELAY_MS a think time: each connection waits this long (milliseconds, fractions
--                  allowed) after an answer before its next request, for a fixed rate
--                  (bench/store.sh latency); unset or empty: no wait, full load
--
-- References look like BENCH-<run>-<thread>-<n>: <run> is the same for all threads of one wrk
-- process, <thread> is assigned in setup() (1..threads), <n> counts per thread. That is
-- unique across threads and runs, and well under the 64-character limit.
--
-- At the end it prints a status histogram and one machine-readable line starting with
-- "BENCH_RESULT" (latencies in microseconds) that bench/intake.sh parses. Unlike wrk's own
-- "Non-2xx or 3xx responses" (which counts only status >= 400), non2xx here counts every
-- status outside 200-299.

local function script_dir()
  local src = debug.getinfo(1, "S").source
  return (src:sub(1, 1) == "@" and src:match("^@(.*/)")) or "./"
end

local function run_prefix()
  local env = os.getenv("BENCH_RUN")
  if env and env ~= "" then return env end
  local rnd = ""
  local f = io.open("/dev/urandom", "rb")
  if f then
    local bytes = f:read(4)
    f:close()
    for i = 1, #bytes do rnd = rnd .. string.format("%02x", bytes:byte(i)) end
  else
    math.randomseed(os.time())
    rnd = string.format("%08x", math.random(0, 0x7fffffff))
  end
  return string.format("%x", os.time()) .. rnd
end

-- ------------------------------------------------------------------ main state (setup/done)

-- main_run, not run: a local named like the thread globals would shadow them in init()
local threads = {}
local main_run = nil

function setup(thread)
  main_run = main_run or run_prefix()   -- once per wrk process, shared by its threads
  table.insert(threads, thread)
  thread:set("tid", #threads)
  thread:set("run", main_run)
end

-- ------------------------------------------------------------------ thread states

local pre, post          -- the body around the "BENCH-0" reference
local prefix             -- "BENCH-<run>-<tid>-"
local n = 0
statuses = {}            -- global: read from done() through thread:get()
sample = nil             -- the first non-2xx answer seen by this thread (status and body)

function init(args)
  local path = os.getenv("BENCH_BODY")
  if not path or path == "" then path = script_dir() .. "order-2k.json" end
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local body = f:read("*a")
  f:close()
  local marker = '"BENCH-0"'
  local at = body:find(marker, 1, true)
  assert(at, path .. ' must contain the reference "BENCH-0"')
  pre, post = body:sub(1, at), body:sub(at + #marker - 1)   -- keep the quotes
  prefix = "BENCH-" .. run .. "-" .. tid .. "-"

  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local key = os.getenv("ORDERSYNC_KEY")
  if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
end

local think = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if think and think > 0 then
  -- wrk calls delay() before each request and waits that many milliseconds
  -- (whole milliseconds only: a fraction is kept on average by rounding at random)
  function delay() return math.floor(think + math.random()) end
end

function request()
  n = n + 1
  return wrk.format(nil, nil, nil, pre .. prefix .. n .. post)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if (status < 200 or status > 299) and not sample then
    sample = status .. " " .. (body or ""):sub(1, 400):gsub("%s+", " ")
  end
end

-- ------------------------------------------------------------------ report (main state)

function done(summary, latency, requests)
  local total, non2xx, seen, sampled = {}, 0, 0, nil
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses") or {}) do
      total[status] = (total[status] or 0) + count
      seen = seen + count
      if status < 200 or status > 299 then non2xx = non2xx + count end
    end
    sampled = sampled or t:get("sample")
  end
  local codes = {}
  for status in pairs(total) do table.insert(codes, status) end
  table.sort(codes)
  local hist = {}
  for _, status in ipairs(codes) do table.insert(hist, status .. ":" .. total[status]) end
  local histogram = #hist > 0 and table.concat(hist, ",") or "none"

  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format("Status codes: %s\n", histogram))
  if sampled then io.write("First non-2xx answer: " .. sampled .. "\n") end
  io.write(string.format(
    "BENCH_RESULT requests=%d responses=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d " ..
    "p99_us=%d max_us=%d non2xx=%d wrk_status_errors=%d socket_errors=%d timeouts=%d " ..
    "statuses=%s run=%s\n",
    summary.requests, seen, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    non2xx, e.status, e.connect + e.read + e.write, e.timeout, histogram, main_run or "?"))
end
