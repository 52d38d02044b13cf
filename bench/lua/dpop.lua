-- GET with a DPoP-bound access token: every request needs its own proof (a
-- proof's jti is single use), so bench/run.py signs them before the run and
-- each thread spends its share, one per request. A thread that runs out
-- resends its last proof, which is refused (replay) and counted as non-2xx.
--
-- Environment: BENCH_TOKEN (sent as "Authorization: DPoP").
-- Arguments (after "--"): a file of proofs, one per line; the number of wrk threads.
dofile("common.lua")

local proofs
local last = "none"

function init(args)
  proofs = this_threads_lines(args[1], tonumber(args[2]))
  wrk.method = "GET"
end

local authorization = "DPoP " .. (os.getenv("BENCH_TOKEN") or "")

function request()
  local proof = table.remove(proofs)
  if proof ~= nil then
    last = proof
  end
  -- wrk.format() replaces wrk.headers with the table it is given: name both.
  return wrk.format(nil, nil, {["Authorization"] = authorization, ["DPoP"] = last})
end
