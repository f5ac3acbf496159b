-- Client credentials for one client, client_secret_basic: AUTH is the whole
-- Authorization header value ("Basic ...").
local auth = os.getenv("AUTH")
request = function()
  return wrk.format("POST", "/token",
    { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = auth },
    "grant_type=client_credentials")
end
