-- The authorization-code flow for a user who has a session: GET /authorize with the
-- session cookie (303 with a code), then POST /token with the PKCE verifier. A code
-- waits in a queue until a connection is free to redeem it. Run with one thread.
-- Each finished flow is one 200 from /token; "flows/s" is printed at the end.
local cookie = os.getenv("SESSION_COOKIE")
local verifier = "bench-verifier-0123456789-0123456789-0123456789"
local challenge = os.getenv("CHALLENGE")
local authorize = "/authorize?response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb"
  .. "&scope=openid&code_challenge=" .. challenge .. "&code_challenge_method=S256"
local codes = {}
flows = 0

request = function()
  local code = table.remove(codes)
  if code then
    return wrk.format("POST", "/token", { ["Content-Type"] = "application/x-www-form-urlencoded" },
      "grant_type=authorization_code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb"
      .. "&code_verifier=" .. verifier .. "&code=" .. code)
  end
  return wrk.format("GET", authorize, { ["Cookie"] = cookie }, nil)
end

response = function(status, headers, body)
  if status == 303 then
    local code = (headers["Location"] or headers["location"] or ""):match("code=([^&]+)")
    if code then codes[#codes + 1] = code end
  elseif status == 200 then
    flows = flows + 1
  end
end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("flows") end
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.2f %.2f %d %d\n", total / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status, errors))
end
