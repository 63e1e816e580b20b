-- requeue.lua: an admission attempt failed before the caller was connected
-- (Vapi refused or failed, or the Twilio update could not be delivered).
-- The caller goes back to the head of the queue with their original ticket
-- and the slot is freed; after an over-limit answer the effective limit is
-- capped at what is active now; admission backs off for backoff_ms.
-- ARGV: 1 prefix, 2 sid, 3 attempt, 4 reason, 5 overlimit (0|1),
--       6 backoff_ms, 7 default_limit, 8 orphan_vapi_id ('' when none),
--       9 orphan_hold_ms, 10 overlimit_hold_ms, 11 permanent (0|1),
--       12 max_attempts
-- Returns {'requeued', position} | {'abandoned'} | {'overflow'} |
--         {'stale', state}
local sid, attempt, reason = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local ck = call_key(sid)
local state = redis.call('HGET', ck, 'state')
local cur = tonumber(redis.call('HGET', ck, 'attempts'))

if ARGV[8] ~= '' and redis.call('EXISTS', vapi_ended_key(ARGV[8])) == 0 then
  -- A Vapi call exists but will never carry this caller: it holds a Vapi
  -- slot until Vapi ends it, and so must it here.
  redis.call('ZADD', K_ACTIVE, NOW + tonumber(ARGV[9]), 'v:' .. ARGV[8])
  redis.call('SET', vapi_key(ARGV[8]), sid, 'EX', CALL_TTL)
  log('ORPHAN', sid, 'vapi', ARGV[8], 'reason', reason)
  stat('orphans')
end

if ARGV[5] == '1' then
  local active = redis.call('ZCARD', K_ACTIVE)
  if cur == attempt and (state == 'admitting' or state == 'gone') then active = active - 1 end
  if active < 0 then active = 0 end
  redis.call('SET', K_CAP, active, 'PX', tonumber(ARGV[10]))
  stat('overlimit')
end
if tonumber(ARGV[6]) > 0 then
  local until_ms = NOW + tonumber(ARGV[6])
  local old = tonumber(redis.call('GET', K_BACKOFF)) or 0
  if until_ms > old then redis.call('SET', K_BACKOFF, until_ms, 'PX', tonumber(ARGV[6])) end
end

if cur ~= attempt or (state ~= 'admitting' and state ~= 'gone') then
  return {'stale', state or 'unknown'}
end
redis.call('ZREM', K_ACTIVE, sid)
stat('admission_failures')

if state == 'gone' then
  redis.call('HSET', ck, 'state', 'abandoned', 'ended_at', NOW, 'ended_reason', 'hangup-during-admission')
  finish_call(ck)
  local enq = tonumber(redis.call('HGET', ck, 'enqueued_at')) or NOW
  log('ABANDON', sid, 'pos', 1, 'wait', NOW - enq, 'reason', 'hangup-during-admission')
  stat('abandoned')
  return {'abandoned'}
end

if ARGV[11] == '1' and attempt >= tonumber(ARGV[12]) then
  redis.call('HSET', ck, 'state', 'overflowed', 'ended_at', NOW, 'ended_reason', reason)
  finish_call(ck)
  local enq = tonumber(redis.call('HGET', ck, 'enqueued_at')) or NOW
  log('OVERFLOW', sid, 'pos', 1, 'wait', NOW - enq, 'reason', reason)
  stat('overflowed')
  return {'overflow'}
end

local ticket = tonumber(redis.call('HGET', ck, 'ticket')) or 0
redis.call('ZADD', K_WAITING, ticket, sid)
redis.call('HSET', ck, 'state', 'waiting')
route_wait(sid, ck)
-- The failed attempt's Vapi call (an orphan now, if any) is no longer this
-- caller's: its late end messages must not touch the next attempt.
redis.call('HDEL', ck, 'vapi_id')
local rank = redis.call('ZRANK', K_WAITING, sid)
log('REQUEUE', sid, 'pos', rank + 1, 'reason', reason, 'attempt', attempt)
return {'requeued', rank + 1}
