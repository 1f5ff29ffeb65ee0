-- wrk script of the dashboard benchmark (tools/bench-dashboard.sh): each
-- connection is one browser refreshing a dashboard of panels over and over,
-- one panel after the other. Run with one connection per thread (-tN -cN),
-- so that a thread's requests are one connection's, in order.
--
--   wrk -tN -cN ... -s dashboard.lua URL -- PANELS START END COLD
--
-- PANELS: a file of one request target per panel, without start/end (e.g.
-- /api/v1/query_range?query=...&step=30); START, END: the window (unix
-- seconds); COLD 1: every refresh moves the window by a few milliseconds,
-- one offset per refresh never used by another, so that no answer can come
-- from a cache; 0: the same window every time.
--
-- done() prints one line for the script that runs wrk:
--   dashboard refreshes=N p50_ms=X p99_ms=Y failed=F
-- (a refresh: from the first panel's request to the last panel's answer).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local panels = {}
local start_s, end_s, cold
local panel, refresh, started = 0, 0, 0
durations = {}
failed = 0

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then table.insert(panels, line) end
  end
  start_s, end_s, cold = tonumber(args[2]), tonumber(args[3]), args[4] == "1"
end

local function window(shift_ms)
  return string.format("&start=%.3f&end=%.3f", start_s - shift_ms / 1000, end_s - shift_ms / 1000)
end

function request()
  if panel == 0 then started = now_ms() end
  local shift = 0
  if cold then
    -- Refresh `refresh` of thread `id` (fewer than 64 threads): an
    -- offset no other refresh uses.
    shift = refresh * 64 + id + 1
  end
  return wrk.format(nil, panels[panel + 1] .. window(shift))
end

function response(status, headers, body)
  if status ~= 200 then failed = failed + 1 end
  panel = panel + 1
  if panel == #panels then
    table.insert(durations, now_ms() - started)
    panel = 0
    refresh = refresh + 1
  end
end

function done(summary, latency, requests)
  local all, fails = {}, 0
  for _, t in ipairs(threads) do
    for _, d in ipairs(t:get("durations")) do table.insert(all, d) end
    fails = fails + t:get("failed")
  end
  table.sort(all)
  local function pct(p)
    if #all == 0 then return 0 end
    return all[math.max(1, math.ceil(#all * p))]
  end
  io.write(string.format("dashboard refreshes=%d p50_ms=%.3f p99_ms=%.3f failed=%d\n",
    #all, pct(0.50), pct(0.99), fails))
end
