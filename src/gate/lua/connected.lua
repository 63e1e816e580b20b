-- connected.lua: the assistant's TwiML reached the caller (the fast-path
-- answer was sent, or Twilio accepted the Calls update).
-- ARGV: 1 prefix, 2 sid, 3 attempt, 4 lease_ms, 5 end_grace_ms
-- Returns {'connected', wait_ms} | {'ending'} | {'stale', state}
local sid, attempt = ARGV[2], tonumber(ARGV[3])
local ck = call_key(sid)
local state = redis.call('HGET', ck, 'state')
local cur = tonumber(redis.call('HGET', ck, 'attempts'))
if cur ~= attempt then return {'stale', state or 'unknown'} end
if state == 'admitting' then
  local enq = tonumber(redis.call('HGET', ck, 'enqueued_at')) or NOW
  local wait = NOW - enq
  local adm = tonumber(redis.call('HGET', ck, 'admitted_at'))
  if adm then ewma(K_STATS, 'admit_ms_ewma', NOW - adm, 0.2) end
  redis.call('HSET', ck, 'state', 'connected', 'connected_at', NOW)
  redis.call('ZADD', K_ACTIVE, 'XX', NOW + tonumber(ARGV[4]), sid)
  log('CONNECT', sid, 'wait', wait, 'attempt', attempt)
  stat('connected')
  stat('wait_ms_total', wait)
  return {'connected', wait}
end
if state == 'gone' then
  -- Twilio said the caller hung up while the update was in flight: the
  -- Vapi call is ending; hold the slot for the short end grace.
  redis.call('HSET', ck, 'state', 'ending', 'connected_at', NOW)
  redis.call('ZADD', K_ACTIVE, 'XX', NOW + tonumber(ARGV[5]), sid)
  return {'ending'}
end
return {'stale', state or 'unknown'}
