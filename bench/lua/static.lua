-- One fixed request, repeated: GET /hello, GET /rest-auth, GET and POST posts, POST /auth.
--
-- Environment: BENCH_METHOD (GET), BENCH_TOKEN (sent as "Authorization: Bearer"),
-- BENCH_BODY (sent as JSON). The path comes from the URL on wrk's command line.
dofile("common.lua")

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local body = os.getenv("BENCH_BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
