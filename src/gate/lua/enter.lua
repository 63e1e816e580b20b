-- enter.lua: a caller arrives (/incoming), or an unknown caller already in
-- Twilio's queue is adopted (/queue-wait, reconciliation).
-- ARGV: 1 prefix, 2 sid, 3 from, 4 to, 5 mode ('incoming'|'adopt'),
--       6 max_queue_size, 7 default_limit, 8 fast_path (0|1),
--       9 admit_lease_ms, 10 instance, 11 already_waited_ms (adopt),
--       12 route ('' or absent: the gate of one route), 13 vip (0|1)
-- Returns {'existing', state, position} | {'fast', attempt, context} |
--         {'waiting', position, room (1: a slot looks free)} |
--         {'overflow', position}
-- (context: the caller's admission_context, common.lua)
local sid, from, to, mode = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ck = call_key(sid)
local state = redis.call('HGET', ck, 'state')
if state then
  -- Idempotent: a retried webhook must not enqueue the caller twice.
  local rank = redis.call('ZRANK', K_WAITING, sid)
  return {'existing', state, rank and (rank + 1) or 0}
end

local waiting = redis.call('ZCARD', K_WAITING)
local ticket = redis.call('INCR', K_SEQ)
local enqueued_at = NOW - (tonumber(ARGV[11]) or 0)
redis.call('HSET', ck, 'state', 'waiting', 'from', from, 'to', to, 'ticket', ticket,
           'enqueued_at', enqueued_at, 'attempts', 0, 'entered_by', ARGV[10],
           'entry_pos', waiting + 1)
stat('entered')
local route = ARGV[12] or ''
local routed = route ~= '' and redis.call('EXISTS', K_ROUTES) == 1
if route ~= '' then
  redis.call('HSET', ck, 'route', route, 'vip', ARGV[13] == '1' and 1 or 0)
  rstat(route, 'entered')
end
local route_field = route ~= '' and {'route', route} or {}
-- A route at its max takes no slot at once, free as the organization's
-- may be.
local function route_room()
  if not routed then return true end
  local conf = redis.call('HGET', K_ROUTES, route)
  local mx = conf and tonumber(string.match(conf, '^%-?%d+ (%-?%d+)'))
  return not mx or (route_counts()[route] or 0) < mx
end

if mode == 'incoming' and ARGV[8] == '1' and waiting == 0 and backoff_left() == 0 and
   redis.call('EXISTS', K_INTACT) == 1 and redis.call('ZCARD', K_ACTIVE) < effective_limit(ARGV[7]) and route_room() then
  -- Fast path: nobody waits and a slot is free, so this caller takes it
  -- now and the webhook answers with the assistant's TwiML directly.
  redis.call('HSET', ck, 'state', 'admitting', 'attempts', 1, 'admitted_at', NOW,
             'admitted_by', ARGV[10], 'fast', 1)
  redis.call('ZADD', K_ACTIVE, NOW + tonumber(ARGV[9]), sid)
  log('ENTER', sid, 'pos', 1, 'from', from, unpack(route_field))
  log('ADMIT', sid, 'attempt', 1, 'fast', 1)
  stat('admissions')
  rstat(route, 'admissions')
  return {'fast', 1, admission_context(ck)}
end

if mode == 'incoming' and waiting >= tonumber(ARGV[6]) then
  redis.call('HSET', ck, 'state', 'overflowed', 'ended_reason', 'queue-full', 'ended_at', NOW)
  finish_call(ck)
  log('ENTER', sid, 'pos', waiting + 1, 'from', from, unpack(route_field))
  log('OVERFLOW', sid, 'pos', waiting + 1, 'wait', 0, 'reason', 'queue-full')
  stat('overflowed')
  rstat(route, 'overflowed')
  return {'overflow', waiting + 1}
end

redis.call('ZADD', K_WAITING, ticket, sid)
local pos = waiting + 1
if route ~= '' then
  route_wait(sid, ck)
  pos = redis.call('ZRANK', rq_key(route), sid) + 1
  log('ENTER', sid, 'pos', pos, 'from', from, 'mode', mode, 'route', route)
else
  log('ENTER', sid, 'pos', pos, 'from', from, 'mode', mode)
end
-- Whether a slot looks free: with every slot taken an admission pass
-- could place nobody, and the release that frees one admits in its own
-- step (end.lua), so the caller of this script skips the pass.
local room = redis.call('ZCARD', K_ACTIVE) < effective_limit(ARGV[7]) and 1 or 0
return {'waiting', pos, room}
