-- wrk script for the ingest benchmark's single-reading phase (scripts/bench_ingest.py).
-- Each request POSTs one reading; sensor ids ($SM_BENCH_PREFIX-<thread>) are per wrk thread and timestamps count up by one millisecond
-- per request from two hours ago, so no two readings collide and every 2xx is one stored reading.
local counter = 0
local next_thread = 0
local base = os.time() - 7200
local prefix = os.getenv("SM_BENCH_PREFIX") or "single"

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = os.getenv("SM_BENCH_API_KEY")
end

function request()
  counter = counter + 1
  local ts = os.date("!%Y-%m-%dT%H:%M:%S", base + math.floor(counter / 1000)) .. string.format(".%03dZ", counter % 1000)
  local body = string.format('{"sensor_id":"' .. prefix .. '-%d","timestamp":"%s","value":%d.5}', tid, ts, counter % 100)
  return wrk.format(nil, "/api/v1/data/ingest", nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, errors.status, errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
