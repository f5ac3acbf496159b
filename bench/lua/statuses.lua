-- Counts answers by status, for a run through an outage (scenario 12): REQUEST picks
-- what to send: "cc" (client credentials as svc-0), "introspect" (TOKEN, by the
-- gateway), "authorize" (GET /authorize with SESSION_COOKIE). Run with one thread.
local kind = os.getenv("REQUEST")
local cc = "Basic c3ZjLTA6YmVuY2gtc2VjcmV0" -- svc-0:bench-secret
request = function()
  if kind == "cc" then
    return wrk.format("POST", "/token", { ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = cc }, "grant_type=client_credentials")
  elseif kind == "introspect" then
    return wrk.format("POST", "/introspect", { ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = os.getenv("GATEWAY_AUTH") }, "token=" .. os.getenv("TOKEN"))
  end
  return wrk.format("GET", os.getenv("AUTHZ_PATH"), { ["Cookie"] = os.getenv("SESSION_COOKIE") }, nil)
end

seen = ""
local counts = {}
response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  local parts = {}
  for s, n in pairs(counts) do parts[#parts + 1] = s .. ":" .. n end
  table.sort(parts)
  seen = table.concat(parts, " ")
end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  for _, t in ipairs(threads) do
    io.write(string.format("STATUSES %s p99 %.2f ms, socket errors %d\n", t:get("seen"),
      latency:percentile(99) / 1000, errors))
  end
end
