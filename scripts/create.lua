-- wrk script: POST /api/v1/deployments with a module name of its own each time,
-- since a module admits one active run at a time.
local thread_id = 0
local counter = 0
local token = os.getenv("HOTSWAP_TOKEN")
-- Two wrk processes at once (two instances) need module names of their own:
-- the same name twice would be refused as a busy module (409), not measured.
local prefix = os.getenv("HOTSWAP_BENCH_PREFIX") or "bench"

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"moduleName":"%s-%d-%d","version":"1.0.0","targetEnvironment":"Development","requesterEmail":"bench@example.com"}',
    prefix, tid, counter)
  local headers = { ["Content-Type"] = "application/json" }
  if token then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", "/api/v1/deployments", headers, body)
end

local statuses = {}
function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  -- Only answered creates count (a 4xx or 5xx is not a create); requests past
  -- wrk's --timeout are left out of the latencies: counted apart.
  local created = summary.requests - summary.errors.status
  io.write(string.format("creates/s %.0f  p50 %.2fms  p99 %.2fms  non-2xx %d  timeouts %d\n",
    created / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.timeout))
end
