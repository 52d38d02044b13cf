-- POST /refresh with single-use rotation: every answer's refresh_token is the
-- only one that will work next, so each thread keeps a pool of live tokens.
-- request() takes one out, response() puts back the one the answer carries.
-- A connection has one request in flight at a time, so a pool larger than the
-- thread's connections never runs dry unless answers fail (they are counted).
--
-- Arguments (after "--"): a file of refresh tokens, one per line, each from its
-- own login (family); the number of wrk threads. Thread i takes lines i, i+n, ...
dofile("common.lua")

local pool
local spent = nil  -- a token to send when the pool is empty (it will be refused and counted)

function init(args)
  pool = this_threads_lines(args[1], tonumber(args[2]))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local token = table.remove(pool)
  if token == nil then
    token = spent or "none"
  end
  spent = token
  return wrk.format(nil, nil, nil, '{"refresh_token":"' .. token .. '"}')
end

function on_response(status, headers, body)
  if status == 200 then
    local token = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      table.insert(pool, token)
    end
  end
end
