-- control.lua: the assistant hands its caller on (Vapi's phone-call-control
-- message: a forward, a hand-off to the human queue, or a hang-up).
-- ARGV: 1 prefix, 2 mode ('check'|'record'), 3 vapi id, 4 action
--       (forward, queue, hang-up, failed), 5 destination (for the log),
--       6 end_grace_ms
-- mode 'check': {state, sid, waited_ms, ai_ms} of the call that carries
--   this Vapi call; {'unknown'} when none does, {'stale', sid} when the call
--   has moved on to another Vapi call. waited_ms is the caller's time in the
--   queue before the assistant, ai_ms the time with it so far. A connected
--   call is claimed for CLAIM_MS ('control_claim'): a repeated message in
--   that time (Vapi's retries) gets {'duplicate', sid} and pushes nothing.
-- mode 'record': Twilio took the new TwiML, so the assistant has left the
--   call. A connected call goes to 'ending' with its lease cut to the end
--   grace: Vapi's own end then releases the slot (end.lua), or the sweep
--   asks Vapi once the grace is over; never sooner, since Vapi counts the
--   call until its end. The queue log gets TRANSFER (or HANGUP) once, with
--   the destination and the time with the assistant.
--   Returns {verdict, sid, ai_ms}: 'ok', 'ended' (Vapi's end came first:
--   logged, nothing else to do), 'duplicate', 'unknown' or 'stale'.
local mode, vid = ARGV[2], ARGV[3]
local sid = redis.call('GET', vapi_key(vid))
if not sid then return {'unknown', '', 0} end
local ck = call_key(sid)
local f = redis.call('HMGET', ck, 'state', 'vapi_id', 'enqueued_at', 'connected_at',
                     'transfer_at', 'control_claim')
local state = f[1]
if not state then return {'unknown', sid, 0} end
if f[2] ~= vid then return {'stale', sid, 0} end
local connected_at = tonumber(f[4])
local ai_ms = connected_at and (NOW - connected_at) or 0
local CLAIM_MS = 30000
if mode == 'check' then
  if state == 'connected' then
    local claim = tonumber(f[6])
    if claim and NOW - claim < CLAIM_MS then return {'duplicate', sid, 0, 0} end
    redis.call('HSET', ck, 'control_claim', NOW)
  end
  local enq = tonumber(f[3])
  local waited = (enq and connected_at) and (connected_at - enq) or 0
  return {state, sid, waited, ai_ms}
end

if f[5] then return {'duplicate', sid, ai_ms} end
local action, dest = ARGV[4], ARGV[5]
redis.call('HSET', ck, 'transfer_at', NOW, 'transfer_action', action, 'transfer_to', dest)
local event = action == 'hang-up' and 'HANGUP' or 'TRANSFER'
log(event, sid, 'reason', string.format('%s:%s ai=%.1fs', action, dest, ai_ms / 1000), 'dest',
    dest, 'ai', ai_ms, 'vapi', vid)
stat('transfers_' .. action)
local verdict = 'ended'
if state == 'connected' then
  redis.call('HSET', ck, 'state', 'ending')
  redis.call('ZADD', K_ACTIVE, 'XX', NOW + tonumber(ARGV[6]), sid)
  verdict = 'ok'
elseif state == 'ending' then
  verdict = 'ok'
end
return {verdict, sid, ai_ms}
