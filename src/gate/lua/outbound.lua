-- outbound.lua: outbound calls callgate places for POST /calls/outbound,
-- in their route's line under the one limit. An outbound call's record is
-- the call record 'o:<id>' (kind 'outbound', from: the customer's number),
-- in its route's line only (never in the waiting set: Twilio holds no one
-- for it); admitted by admit_batch like a caller, it comes back as
-- 'o:<id>', number, attempt, {} and the Vapi call's end signals release it
-- as any other (end.lua, through vapi:<id>).
-- ARGV: 1 prefix, 2 op, then per op:
--   create: 3 id, 4 route, 5 number, 6 variables (JSON), 7 max_queue,
--           8 default_limit, 9 max_batch, 10 admit_lease_ms, 11 instance
--     -> {'queued', position, '', admitted...} | {'full'} | {'exists'}
--   status: 3 id -> {state, position (0 once out of the line), route,
--           vapi_id, ended_reason, attempts, enqueued_at, admitted_at,
--           connected_at, ended_at} | {'unknown'}
--   created: 3 id, 4 attempt, 5 vapi_id, 6 lease_ms -> {'connected'} |
--           {'orphan'} (the attempt is stale: the Vapi call holds a slot)
--           The customer's phone rings from now: the call counts at Vapi.
--   failed: 3 id, 4 attempt, 5 reason, 6 final (0|1), 7 max_attempts,
--           8 default_limit, 9 max_batch, 10 admit_lease_ms, 11 instance,
--           12 backoff_ms
--     -> {'requeued'|'failed'|'stale', '', '', admitted...}
local op, id = ARGV[2], ARGV[3]
local sid = 'o:' .. id
local ck = call_key(sid)

if op == 'create' then
  if redis.call('EXISTS', ck) == 1 then return {'exists'} end
  local route = ARGV[4]
  local waiting = redis.call('ZCARD', rq_key(route))
  if waiting >= tonumber(ARGV[7]) then
    rstat(route, 'refused')
    return {'full'}
  end
  local ticket = redis.call('INCR', K_SEQ)
  redis.call('HSET', ck, 'kind', 'outbound', 'state', 'waiting', 'route', route, 'from', ARGV[5],
             'to', '', 'ticket', ticket, 'enqueued_at', NOW, 'attempts', 0, 'vip', 0,
             'variables', ARGV[6], 'entered_by', ARGV[11])
  route_wait(sid, ck)
  local pos = (redis.call('ZRANK', rq_key(route), sid) or 0) + 1
  log('ENTER', sid, 'pos', pos, 'outbound', 1, 'route', route)
  rstat(route, 'outbound')
  local out = {'queued', pos, ''}
  local admitted = admit_batch(ARGV[8], ARGV[9], ARGV[10], ARGV[11])
  for i = 1, #admitted do out[#out + 1] = admitted[i] end
  return out
end

local f = redis.call('HMGET', ck, 'state', 'route', 'vapi_id', 'ended_reason', 'attempts',
                     'enqueued_at', 'admitted_at', 'connected_at', 'ended_at', 'kind', 'variables')
if not f[1] or f[10] ~= 'outbound' then return {'unknown'} end

if op == 'status' then
  local pos = 0
  if f[1] == 'waiting' then pos = (redis.call('ZRANK', rq_key(f[2]), sid) or 0) + 1 end
  return {f[1], pos, f[2] or '', f[3] or '', f[4] or '', tonumber(f[5]) or 0,
          tonumber(f[6]) or 0, tonumber(f[7]) or 0, tonumber(f[8]) or 0, tonumber(f[9]) or 0,
          f[11] or ''}
end

local attempt = tonumber(ARGV[4])
local current = tonumber(f[5]) == attempt and (f[1] == 'admitting')

if op == 'created' then
  local vid = ARGV[5]
  redis.call('SET', vapi_key(vid), sid, 'EX', CALL_TTL)
  if not current or not redis.call('ZSCORE', K_ACTIVE, sid) then
    if redis.call('EXISTS', vapi_ended_key(vid)) == 0 then
      redis.call('ZADD', K_ACTIVE, NOW + tonumber(ARGV[6]), 'v:' .. vid)
      log('ORPHAN', sid, 'vapi', vid, 'reason', 'outbound-stale')
      stat('orphans')
    end
    return {'orphan'}
  end
  redis.call('HSET', ck, 'state', 'connected', 'vapi_id', vid, 'connected_at', NOW)
  redis.call('ZADD', K_ACTIVE, 'XX', NOW + tonumber(ARGV[6]), sid)
  log('CONNECT', sid, 'vapi', vid, 'wait', NOW - (tonumber(f[6]) or NOW), 'outbound', 1,
      'route', f[2] or '')
  stat('connected')
  rstat(f[2], 'connected')
  return {'connected'}
end

if op == 'failed' then
  local verdict = 'stale'
  if current and redis.call('ZREM', K_ACTIVE, sid) == 1 then
    if ARGV[6] == '1' or attempt >= tonumber(ARGV[7]) then
      redis.call('HSET', ck, 'state', 'failed', 'ended_at', NOW, 'ended_reason', ARGV[5])
      finish_call(ck)
      log('OVERFLOW', sid, 'pos', 1, 'wait', NOW - (tonumber(f[6]) or NOW), 'reason', ARGV[5],
          'outbound', 1)
      rstat(f[2], 'failed')
      verdict = 'failed'
    else
      redis.call('HSET', ck, 'state', 'waiting')
      route_wait(sid, ck)
      log('REQUEUE', sid, 'pos', 1, 'reason', ARGV[5], 'attempt', attempt, 'outbound', 1)
      verdict = 'requeued'
    end
    local b = tonumber(ARGV[12]) or 0
    if b > 0 then
      local until_ms = NOW + b
      local old = tonumber(redis.call('GET', K_BACKOFF)) or 0
      if until_ms > old then redis.call('SET', K_BACKOFF, until_ms, 'PX', b) end
    end
  end
  local out = {verdict, '', ''}
  local admitted = admit_batch(ARGV[8], ARGV[9], ARGV[10], ARGV[11])
  for i = 1, #admitted do out[#out + 1] = admitted[i] end
  return out
end
return {'unknown'}
