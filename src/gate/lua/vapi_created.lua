-- vapi_created.lua: Vapi created a call for this admission attempt.
-- ARGV: 1 prefix, 2 sid, 3 attempt, 4 vapi_id, 5 orphan_hold_ms
-- Returns {'ok'} when the admission should go on and push the TwiML to
-- Twilio, or {'orphan', state} when the caller is gone (hung up while Vapi
-- was answering) or the attempt is stale: the Vapi call then holds a Vapi
-- slot until Vapi ends it, so its slot stays taken under its own name.
local sid, attempt, vid = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local ck = call_key(sid)
local state = redis.call('HGET', ck, 'state')
local cur = tonumber(redis.call('HGET', ck, 'attempts'))
redis.call('SET', vapi_key(vid), sid, 'EX', CALL_TTL)
if state == 'admitting' and cur == attempt then
  redis.call('HSET', ck, 'vapi_id', vid)
  return {'ok'}
end
local slot = 'v:' .. vid
if redis.call('EXISTS', vapi_ended_key(vid)) == 0 then
  redis.call('ZADD', K_ACTIVE, NOW + tonumber(ARGV[5]), slot)
end
if state == 'gone' and cur == attempt then
  -- The caller's slot becomes the orphan Vapi call's slot.
  redis.call('ZREM', K_ACTIVE, sid)
  redis.call('HSET', ck, 'state', 'abandoned', 'ended_at', NOW, 'ended_reason', 'hangup-during-admission')
  finish_call(ck)
end
log('ORPHAN', sid, 'vapi', vid, 'state', state or 'unknown')
stat('orphans')
return {'orphan', state or 'unknown'}
