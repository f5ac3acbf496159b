-- Client credentials with client_secret_basic, round-robin over CLIENTS clients
-- named svc-0 .. svc-(CLIENTS-1), all with the secret "bench-secret".
local clients = tonumber(os.getenv("CLIENTS") or "1")
local headers = {}
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end
for i = 0, clients - 1 do
  headers[i] = "Basic " .. b64("svc-" .. i .. ":bench-secret")
end
local n = 0
request = function()
  local h = {}
  h["Content-Type"] = "application/x-www-form-urlencoded"
  h["Authorization"] = headers[n % clients]
  n = n + 1
  return wrk.format("POST", "/token", h, "grant_type=client_credentials")
end
