-- Shared by every bench script (loaded with dofile; wrk runs with cwd bench/lua).
--
-- Every response's status is checked: a stream of fast 401s must never pass
-- as speed. Each thread counts its non-2xx answers; done() sums them and
-- prints one line, "BENCH_RESULT {json}", that bench/run.py parses.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

non2xx = 0
first_bad_status = 0
first_bad_body = ""
responses = 0

-- Scripts that read the body define on_response(status, headers, body).
function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad_status == 0 then
      first_bad_status = status
      first_bad_body = string.sub(body or "", 1, 200)
    end
  end
  if on_response then
    on_response(status, headers, body)
  end
end

local function json_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, requests)
  local bad, first, first_body, counted = 0, 0, "", 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    counted = counted + (t:get("responses") or 0)
    local status = t:get("first_bad_status") or 0
    if first == 0 and status ~= 0 then
      first = status
      first_body = t:get("first_bad_body") or ""
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"responses":%d,"duration_us":%d,"non2xx":%d,' ..
    '"first_bad_status":%d,"first_bad_body":%s,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, counted, summary.duration, bad, first, json_string(first_body),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end

-- The lines of `path` that belong to this thread of `nthreads`: thread i
-- takes the non-empty lines i, i+n, i+2n... (tokens or proofs made ahead).
function this_threads_lines(path, nthreads)
  local mine, index = {}, 0
  for line in io.lines(path) do
    if line ~= "" then
      if index % nthreads == thread_id - 1 then
        table.insert(mine, line)
      end
      index = index + 1
    end
  end
  return mine
end
