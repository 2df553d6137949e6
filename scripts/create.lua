-- wrk script: POST /api/v1/deployments with a module name of its own each time,
-- since a module admits one active run at a time.
local thread_id = 0
local counter = 0
local threads = {}
local token = os.getenv("HOTSWAP_TOKEN")
-- Two wrk processes at once (two instances) need module names of their own:
-- the same name twice would be refused as a busy module (409), not measured.
local prefix = os.getenv("HOTSWAP_BENCH_PREFIX") or "bench"

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
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

-- Refusals by status, one counter per code (a thread hands back numbers, not tables).
local refused_codes = { 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504 }
function response(status)
  if status >= 400 then
    local name = "status_" .. status
    _G[name] = (_G[name] or 0) + 1
  end
end

function done(summary, latency, requests)
  -- Only answered creates count (a 4xx or 5xx is not a create); requests past
  -- wrk's --timeout are left out of the latencies: counted apart. One line
  -- (the bench scripts keep wrk's last), refusals by status at its end.
  local parts = {}
  local named = 0
  for _, code in ipairs(refused_codes) do
    local n = 0
    for _, t in ipairs(threads) do n = n + (t:get("status_" .. code) or 0) end
    if n > 0 then table.insert(parts, string.format("%d x%d", code, n)) end
    named = named + n
  end
  -- A status outside the list is still counted, as "other".
  if summary.errors.status > named then
    table.insert(parts, string.format("other x%d", summary.errors.status - named))
  end
  local refused = ""
  if #parts > 0 then refused = "  (" .. table.concat(parts, ", ") .. ")" end
  local created = summary.requests - summary.errors.status
  io.write(string.format("creates/s %.0f  p50 %.2fms  p99 %.2fms  non-2xx %d%s  timeouts %d\n",
    created / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, refused, summary.errors.timeout))
end
