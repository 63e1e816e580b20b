-- position.lua: where a waiting caller stands, for the hold announcement
-- (/queue-wait), with everything the wait estimate needs in one snapshot.
-- A caller past MAX_WAIT_SECONDS is moved to overflow here, atomically.
-- ARGV: 1 prefix, 2 sid, 3 max_wait_ms (0: no limit), 4 announce_every_ms,
--       5 default_limit
-- Returns {state, position, waited_ms, limit, active, service_ms (-1 when
--          unknown), abandoned, connected, head_wait_ms, announce (0|1),
--          admit_ms (-1 when unknown)}; the two means are >= 1 once known.
--   state 'waiting', 'overflow' (just overflowed), another call state, or
--   'unknown'.
local sid = ARGV[2]
local ck = call_key(sid)
local state = redis.call('HGET', ck, 'state')
if not state then return {'unknown'} end
local enq = tonumber(redis.call('HGET', ck, 'enqueued_at')) or NOW
local waited = NOW - enq
if state ~= 'waiting' then return {state, 0, waited} end

local rank = redis.call('ZRANK', K_WAITING, sid) or 0
local max_wait = tonumber(ARGV[3])
if max_wait > 0 and waited > max_wait then
  leave_queue(sid, ck, 'overflowed', 'max-wait')
  return {'overflow', rank + 1, waited}
end

local announce = 0
local last = tonumber(redis.call('HGET', ck, 'announced_at'))
if not last or NOW - last >= tonumber(ARGV[4]) then
  announce = 1
  redis.call('HSET', ck, 'announced_at', NOW)
end
local head_wait = 0
local head = redis.call('ZRANGE', K_WAITING, 0, 0)
if #head > 0 then
  local henq = tonumber(redis.call('HGET', call_key(head[1]), 'enqueued_at'))
  if henq then head_wait = NOW - henq end
end
local st = redis.call('HMGET', K_STATS, 'abandoned', 'connected', 'service_ms_ewma',
                      'admit_ms_ewma')
-- Whole milliseconds, at least 1 once observed: an admission that took
-- under a millisecond (no network in between) is an observation, and 0
-- would read as none, bringing back the default of several seconds.
local function ms(v)
  if not v then return -1 end
  return math.max(1, math.floor(v + 0.5))
end
local limit, active, service = effective_limit(ARGV[5]), redis.call('ZCARD', K_ACTIVE), st[3]
local route = redis.call('HGET', ck, 'route')
local conf = route and redis.call('HGET', K_ROUTES, route)
if conf then
  -- A route's caller waits in the route's line, for the route's slots
  -- (its max, within the organization's limit), and the estimate learns
  -- from the route's own calls once it has any.
  local mx = tonumber(string.match(conf, '^%-?%d+ (%-?%d+)')) or limit
  if mx < limit then limit = mx end
  rank = redis.call('ZRANK', rq_key(route), sid) or rank
  active = route_counts()[route] or 0
  service = redis.call('HGET', rstats_key(route), 'service_ms_ewma') or service
  local rh = redis.call('ZRANGE', rq_key(route), 0, 0)
  if #rh > 0 then
    local henq = tonumber(redis.call('HGET', call_key(rh[1]), 'enqueued_at'))
    if henq then head_wait = NOW - henq end
  end
end
return {'waiting', rank + 1, waited, limit, active, ms(tonumber(service)), tonumber(st[1]) or 0,
        tonumber(st[2]) or 0, head_wait, announce, ms(tonumber(st[4]))}
