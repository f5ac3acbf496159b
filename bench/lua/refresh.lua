-- Refresh-token rotation. Each request takes a refresh token from a pool and each
-- answer puts the rotated one back, so no two requests in flight share a token (which
-- reuse detection would rightly punish). Run with one thread; the pool comes from
-- REFRESH_FILE (one token per line, at least one per connection).
local pool = {}
for line in io.lines(os.getenv("REFRESH_FILE")) do pool[#pool + 1] = line end

request = function()
  local token = table.remove(pool)
  if token == nil then
    -- Never expected with enough tokens; an invalid token shows up as a non-2xx.
    token = "pool-exhausted"
  end
  return wrk.format("POST", "/token", { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=refresh_token&client_id=spa&refresh_token=" .. token)
end

response = function(status, headers, body)
  local rotated = body:match('"refresh_token":"([^"]+)"')
  if rotated then pool[#pool + 1] = rotated end
end
