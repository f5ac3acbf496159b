-- Introspection of one live token (TOKEN), by the resource server "gateway".
local token = os.getenv("TOKEN")
wrk.method = "POST"
wrk.path = "/introspect"
wrk.body = "token=" .. token
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("GATEWAY_AUTH")
