-- Client credentials with a single-use JWT per request, taken in turn from POOL_FILE
-- (bench/gen_jwts.py). POOL_MODE=assertion: the JWT is a private_key_jwt client
-- assertion of POOL_CLIENT. POOL_MODE=dpop: it is a DPoP proof, sent with
-- svc-0's client_secret_basic (BASIC). A pool used up repeats itself, and the
-- replayed JWTs are refused: they show up as non-2xx.
local pool = {}
for line in io.lines(os.getenv("POOL_FILE")) do pool[#pool + 1] = line end
local mode = os.getenv("POOL_MODE")
local client = os.getenv("POOL_CLIENT") or ""
local basic = os.getenv("BASIC") or ""
local n = 0

request = function()
  n = n + 1
  local jwt = pool[(n - 1) % #pool + 1]
  local h = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  if mode == "assertion" then
    return wrk.format("POST", "/token", h,
      "grant_type=client_credentials&client_id=" .. client ..
      "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" ..
      "&client_assertion=" .. jwt)
  end
  h["Authorization"] = basic
  h["DPoP"] = jwt
  return wrk.format("POST", "/token", h, "grant_type=client_credentials")
end
