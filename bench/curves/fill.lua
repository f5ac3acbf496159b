-- Fills the store with live refresh tokens: authorization-code flows for a user with a
-- session (as bench/lua/code_flow.lua) asking for offline_access, so each redeemed code
-- leaves one refresh token. Stops the thread once TARGET flows are done (run with one
-- thread: -t1); the refresh tokens themselves are dropped.
local cookie = os.getenv("SESSION_COOKIE")
local target = tonumber(os.getenv("TARGET") or "0")
local verifier = "bench-verifier-0123456789-0123456789-0123456789"
local challenge = os.getenv("CHALLENGE")
local authorize = "/authorize?response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb"
  .. "&scope=openid%20offline_access&code_challenge=" .. challenge .. "&code_challenge_method=S256"
local codes = {}
flows = 0
local refused = 0

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
    if body:find('"refresh_token"', 1, true) then flows = flows + 1 end
  else
    refused = refused + 1
  end
  if target > 0 and flows >= target then wrk.thread:stop() end
end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("flows") end
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.2f %.2f %d %d %d\n", total / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status, errors, total))
end
