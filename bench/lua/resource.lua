-- Client credentials for one API (RFC 8707): svc-res asks for a token for RESOURCE
-- with the resource's scope, client_secret_basic (BASIC).
local basic = os.getenv("BASIC")
local body = "grant_type=client_credentials&scope=api%3Aread&resource=" ..
  (os.getenv("RESOURCE"):gsub(":", "%%3A"):gsub("/", "%%2F"))

request = function()
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = basic,
  }, body)
end
