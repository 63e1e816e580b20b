-- reqs.lua - wrk script: sends pre-built requests from a file written by
-- cgbench-sign (raw HTTP/1.1 requests separated by NUL bytes), so that every
-- Twilio webhook carries its own CallSid and a valid X-Twilio-Signature
-- without wrk computing HMACs (which would measure wrk, not callgate).
--
--   CGBENCH_WRK_OUT=OUT.json wrk -tN ... -s reqs.lua http://127.0.0.1:PORT -- FILE once|cycle N
--
-- "once": each of the N wrk threads takes every N-th request (its own
-- slice), so no request is sent twice; a thread that runs out starts over
-- and counts the wrap (the report flags a run where that happened: repeated CallSids take
-- callgate's idempotent branch instead of the measured one). "cycle": every
-- thread goes round all of them (GETs, polls of waiting callers). done() writes the
-- figures as JSON to $CGBENCH_WRK_OUT (stdout when unset).

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local path, mode = args[1], args[2]
   cycle = (mode == "cycle")
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   reqs = {}
   local i, pos = 0, 1
   local n = tonumber(args[3]) or 1
   while true do
      local stop = string.find(data, "\0", pos, true)
      local last = stop and stop - 1 or #data
      if last >= pos then
         -- Cycling threads all take every request (a file may hold one).
         if cycle or i % n == id then
            reqs[#reqs + 1] = string.sub(data, pos, last)
         end
         i = i + 1
      end
      if not stop then break end
      pos = stop + 1
   end
   data = nil
   assert(#reqs > 0, "no requests for this thread in " .. path)
   idx = cycle and (id % #reqs) or 0
   wraps = 0
end

function request()
   idx = idx + 1
   if idx > #reqs then
      idx = 1
      if not cycle then wraps = wraps + 1 end
   end
   return reqs[idx]
end

function done(summary, latency, requests)
   local wrapped = 0
   for _, t in ipairs(threads) do
      wrapped = wrapped + (t:get("wraps") or 0)
   end
   local e = summary.errors
   local out = string.format(
      '{"tool":"wrk","requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"wraps":%d,"latency_us":{"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f,' ..
      '"max":%.1f,"mean":%.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout, wrapped,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean)
   local path = os.getenv("CGBENCH_WRK_OUT")
   if path then
      local f = assert(io.open(path, "w"))
      f:write(out)
      f:close()
   else
      io.write(out)
   end
end
