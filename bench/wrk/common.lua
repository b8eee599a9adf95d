-- Shared by the wrk scripts of bench/run.py (loaded with dofile; wrk runs one Lua state per thread).
--
-- Script arguments (after "--" on the wrk command line):
--   1  base     integer; every request gets a number n = base + thread * 1e8 + counter, unique in the run
--   2  token    API token ("" for the baseline: no Authorization header)
--   3  batch    items per request for bulk bodies (ignored by the single-item scripts)
-- done() prints one line "BENCHJSON {...}" that bench/run.py parses.

local M = {}

function M.setup_threads()
  local next_tid = 0
  function setup(thread)
    thread:set("tid", next_tid)
    next_tid = next_tid + 1
  end
end

function M.init(args, method)
  base = tonumber(args[1]) or 0
  token = args[2] or ""
  batch = tonumber(args[3]) or 500
  counter = 0
  wrk.method = method
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
  if token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

-- The next unique number, a phone made from it (+79XXXXXXXXX: every +7 9xx number is a valid
-- Russian mobile for phonenumbers) and a title.
function M.next_n()
  counter = counter + 1
  return base + (tid or 0) * 100000000 + counter
end

function M.phone(n)
  return string.format("+79%09d", n % 1000000000)
end

function M.lead_json(n)
  return string.format('{"title":"Bench lead %d","phones":["%s"]}', n, M.phone(n))
end

function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"p50":%d,"p90":%d,"p95":%d,"p99":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99)))
end

return M
