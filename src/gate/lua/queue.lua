-- queue.lua: the operator's view of the gate (GET /queue) in one consistent
-- read: every slot held and every caller waiting, in order, with what the
-- hold announcement's estimate needs (the same figures as position.lua).
-- Callers' numbers never leave Redis whole: only their last four digits.
-- ARGV: 1 prefix, 2 default_limit, 3 max_listed (bound on each list)
-- Returns {now_ms, effective_limit, active, waiting, oldest_wait_ms,
--          service_ms (-1 unknown), abandoned, connected, admit_ms (-1
--          unknown), head_wait_ms, n_slots, n_waiters,
--          then n_slots times: member, kind ('call', 'orphan', 'lease'
--            (POST /slots) or 'unknown'), sid (''), last4 (''), connected_at_ms (0), vapi_id
--            (''), state ('')
--          then n_waiters times: sid, last4 (''), enqueued_at_ms, attempts,
--            callback (1: a queued callback keeping its place, else 0)
--          then, with routes only, n_slots routes and n_waiters routes}
-- oldest_wait_ms is over the listed waiters (an adopted caller's wait began
-- before their ticket, so the head is not always the oldest).
local max = tonumber(ARGV[3])

-- The last four digits of a number; '' when it has fewer than eight
-- characters or does not end in four digits (a short code or a SIP name
-- would otherwise be shown nearly whole).
local function last4(n)
  if not n or #n < 8 then return '' end
  local tail = string.sub(n, -4)
  if string.match(tail, '^%d%d%d%d$') then return tail end
  return ''
end

-- Whole milliseconds, at least 1 once observed (as position.lua).
local function ms(v)
  if not v then return -1 end
  return math.max(1, math.floor(v + 0.5))
end

local slots = {}
local members = redis.call('ZRANGE', K_ACTIVE, 0, max - 1)
for _, m in ipairs(members) do
  local kind, sid, l4, cat, vid, state = 'call', '', '', 0, '', ''
  if string.sub(m, 1, 2) == 'v:' then
    -- A Vapi call without a caller that still counts against the limit.
    kind = 'orphan'
    vid = string.sub(m, 3)
  elseif string.sub(m, 1, 2) == 's:' then
    -- A slot leased through POST /slots: no caller behind it.
    kind = 'lease'
  else
    if string.sub(m, 1, 2) == 'u:' then
      -- An admission whose owner died: u:<CallSid>:<attempt>.
      kind = 'unknown'
      sid = string.match(m, '^u:(.*):%d+$') or string.sub(m, 3)
    else
      sid = m
    end
    local f = redis.call('HMGET', call_key(sid), 'from', 'connected_at', 'vapi_id', 'state')
    if not f[4] then
      kind = 'unknown'
    else
      l4 = last4(f[1])
      cat = tonumber(f[2]) or 0
      vid = f[3] or ''
      if kind == 'call' then state = f[4] end
    end
  end
  slots[#slots + 1] = {m, kind, sid, l4, cat, vid, state}
end

local waiters = {}
local oldest, head_wait = 0, 0
local sids = redis.call('ZRANGE', K_WAITING, 0, max - 1)
for i, sid in ipairs(sids) do
  local f = redis.call('HMGET', call_key(sid), 'from', 'enqueued_at', 'attempts', 'state')
  local enq = tonumber(f[2]) or NOW
  if NOW - enq > oldest then oldest = NOW - enq end
  if i == 1 then head_wait = NOW - enq end
  waiters[#waiters + 1] = {sid, last4(f[1]), enq, tonumber(f[3]) or 0, f[4] == 'callback' and 1 or 0}
end

local st = redis.call('HMGET', K_STATS, 'abandoned', 'connected', 'service_ms_ewma',
                      'admit_ms_ewma')
local out = {NOW, effective_limit(ARGV[2]), redis.call('ZCARD', K_ACTIVE),
             redis.call('ZCARD', K_WAITING), oldest, ms(tonumber(st[3])),
             tonumber(st[1]) or 0, tonumber(st[2]) or 0, ms(tonumber(st[4])), head_wait,
             #slots, #waiters}
for _, s in ipairs(slots) do
  for k = 1, 7 do out[#out + 1] = s[k] end
end
for _, w in ipairs(waiters) do
  for k = 1, 5 do out[#out + 1] = w[k] end
end
-- With routes (ROUTES_FILE), each listed slot's route, then each listed
-- waiter's ('' for none), after everything else: a gate of one route
-- answers as it always did.
if redis.call('EXISTS', K_ROUTES) == 1 then
  for _, sl in ipairs(slots) do out[#out + 1] = member_route(sl[1]) or '' end
  for _, w in ipairs(waiters) do out[#out + 1] = redis.call('HGET', call_key(w[1]), 'route') or '' end
end
return out
