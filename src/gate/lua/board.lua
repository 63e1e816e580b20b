-- board.lua: the operator's figures, once per tick of each instance
-- (gate/board.c): one sample of slot occupancy per second for the whole gate
-- (whichever instance comes first in a second takes it), the queue log's
-- retention, and the log entries and occupancy samples the caller has not
-- read yet.
-- ARGV: 1 prefix, 2 default_limit, 3 log start (an XRANGE id, inclusive), 4 max log entries to return, 5 first minute of
--       occupancy wanted (epoch minutes), 6 retention ms, 7 max log entries
--       kept
-- Returns {now_ms, active, effective_limit, {id, ev, wait per entry the
--          figures count (ENTER, CONNECT, ABANDON, OVERFLOW; wait '0' when
--          absent)}, {busy, cap per minute from first to now's minute}, first,
--          the last id read ('' for none), entries read} where first is
--          ARGV[5], or the oldest minute kept when that is later. Only what
--          the figures use leaves Redis: a page of whole entries is ten
--          strings each, and parsing thousands of them held the caller's
--          loop for milliseconds.
local K_OCC = P .. 'occupancy'        -- HASH b<minute>, c<minute>: sums of samples
local K_OCC_SEC = P .. 'occupancy:sec' -- the last second sampled
local active = redis.call('ZCARD', K_ACTIVE)
local limit = effective_limit(ARGV[2])
local sec = math.floor(NOW / 1000)
local minute = math.floor(sec / 60)
local keep_min = math.floor(tonumber(ARGV[6]) / 60000) + 60

local last = tonumber(redis.call('GET', K_OCC_SEC))
if not last or sec > last then
  redis.call('SET', K_OCC_SEC, sec, 'EX', 3600)
  redis.call('HINCRBY', K_OCC, 'b' .. minute, active)
  redis.call('HINCRBY', K_OCC, 'c' .. minute, limit)
  if not last or math.floor(last / 60) ~= minute then
    -- A new minute: retention of the log (exact: once a minute the work is
    -- what a minute added) and of the samples.
    local cutoff = NOW - tonumber(ARGV[6])
    local ok = redis.pcall('XTRIM', K_LOG, 'MINID', cutoff)
    if type(ok) == 'table' and ok.err then
      -- Redis before 6.2 has no MINID: the oldest entries one by one, a
      -- bounded number a minute.
      local old = redis.call('XRANGE', K_LOG, '-', cutoff, 'COUNT', 2000)
      for _, e in ipairs(old) do redis.call('XDEL', K_LOG, e[1]) end
    end
    redis.call('XTRIM', K_LOG, 'MAXLEN', tonumber(ARGV[7]))
    for m = minute - keep_min - 10, minute - keep_min do
      redis.call('HDEL', K_OCC, 'b' .. m, 'c' .. m)
    end
    -- Minutes left behind by a longer pause of every instance.
    if redis.call('HLEN', K_OCC) > 2 * (keep_min + 20) then
      local ks = redis.call('HKEYS', K_OCC)
      for _, k in ipairs(ks) do
        local m = tonumber(string.sub(k, 2))
        if m and m < minute - keep_min then redis.call('HDEL', K_OCC, k) end
      end
    end
  end
end

local entries = redis.call('XRANGE', K_LOG, ARGV[3], '+', 'COUNT', tonumber(ARGV[4]))
local counted = {ENTER = true, CONNECT = true, ABANDON = true, OVERFLOW = true}
local compact = {}
for _, e in ipairs(entries) do
  local f, ev, wait = e[2], nil, nil
  for i = 1, #f - 1, 2 do
    if f[i] == 'ev' then ev = f[i + 1] elseif f[i] == 'wait' then wait = f[i + 1] end
  end
  if ev and counted[ev] then
    compact[#compact + 1] = e[1]
    compact[#compact + 1] = ev
    compact[#compact + 1] = wait or '0'
  end
end
local last_id = #entries > 0 and entries[#entries][1] or ''

local occ = {}
local first = math.max(tonumber(ARGV[5]), minute - keep_min)
if first <= minute then
  local fields = {}
  for m = first, minute do
    fields[#fields + 1] = 'b' .. m
    fields[#fields + 1] = 'c' .. m
  end
  local v = redis.call('HMGET', K_OCC, unpack(fields))
  for i = 1, #v do occ[i] = tonumber(v[i]) or 0 end
end
return {NOW, active, limit, compact, occ, first, last_id, #entries}
