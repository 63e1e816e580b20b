-- callback.lua: the steps of a queued callback (docs/ARCHITECTURE.md,
-- "Callbacks"). The caller's record keeps its ticket in the waiting set in
-- state 'callback'; admit_batch (common.lua) reserves a slot for it in
-- ticket order (state 'cb_reserved'); then one dial per attempt, and on a
-- person's answer the outbound leg becomes an ordinary admission holding
-- that slot. No Vapi call exists before that answer.
-- ARGV: 1 prefix, 2 op, 3 sid, then per op:
--   request:  4 number, 5 est_ms (the estimate the caller was given),
--             6 max_dials, 7 retry_ms, 8 lease_ms (slot reserved while dialling)
--     -> {'callback', position} | {'existing', position} | {'stale', state}
--   dial:     4 attempt -> {'dial', number, to, dial} | {'stale', state}
--   ringing:  4 attempt, 5 leg -> {'ok'} | {'stale', state}
--   answered: 4 attempt, 5 leg, 6 admit_lease_ms, 7 instance
--     -> {'admit', leg, number, 1, the leg's admission_context} |
--        {'existing', leg state} | {'stale', state}
--   failed, expire: 4 attempt, 5 leg ('' unknown), 6 reason, 7 final (0|1:
--             no retry, e.g. a number Twilio refuses), 8 default_limit,
--             9 max_batch, 10 admit_lease_ms, 11 instance
--     -> {verdict, sid, detail, admitted...} with verdict 'retry' (detail:
--        when, ms), 'failed', 'requeued' (expire of a reservation never
--        dialled), 'stale'; admitted as admit_batch's list (the freed slot
--        refilled in the same step).
--   lookup:   3 number (in place of a sid) -> {'pending', sid, position, state} | {'none'}
--   resume:   3 sid (the pending callback), 4 new sid, 5 from, 6 to
--     -> {'resumed', position} | {'stale', state}
-- 'failed' is an outcome Twilio reported (busy, no-answer, failed,
-- canceled, a machine) or a refused Calls create; 'expire' is the sweep
-- finding the slot's lease over (an instance died, or signals were lost).
local op, sid = ARGV[2], ARGV[3]

-- The callback pending for a number: the caller who calls again hears of
-- it. The index is checked against the record, so an ended callback (its
-- key is never deleted, only expired) reads as none.
local function cbnum_key(number) return P .. 'cbnum:' .. number end
local pending_states = {callback = true, cb_reserved = true, cb_dialing = true, cb_ringing = true}
if op == 'lookup' then
  local old = redis.call('GET', cbnum_key(sid))
  if not old then return {'none'} end
  local g = redis.call('HMGET', call_key(old), 'state', 'cb_number')
  if not pending_states[g[1]] or g[2] ~= sid then return {'none'} end
  local rank = redis.call('ZRANK', K_WAITING, old)
  return {'pending', old, rank and (rank + 1) or 0, g[1]}
end

local ck = call_key(sid)
local f = redis.call('HMGET', ck, 'state', 'attempts', 'cb_leg')
local state, cur = f[1], tonumber(f[2])

local function position()
  local rank = redis.call('ZRANK', K_WAITING, sid)
  return rank and (rank + 1) or 0
end

if op == 'request' then
  if state == 'callback' then return {'existing', position()} end
  if state ~= 'waiting' or not redis.call('ZSCORE', K_WAITING, sid) then
    return {'stale', state or 'unknown'}
  end
  local enq = tonumber(redis.call('HGET', ck, 'enqueued_at')) or NOW
  redis.call('HSET', ck, 'state', 'callback', 'cb_number', ARGV[4], 'cb_requested_at', NOW,
             'cb_est_ms', tonumber(ARGV[5]) or 0, 'cb_dials', 0, 'cb_max', tonumber(ARGV[6]),
             'cb_retry_ms', tonumber(ARGV[7]), 'cb_lease_ms', tonumber(ARGV[8]), 'cb_due_at', 0)
  redis.call('HDEL', ck, 'cb_leg')
  redis.call('SET', cbnum_key(ARGV[4]), sid, 'EX', CALL_TTL)
  local pos = position()
  log('CALLBACK_REQUEST', sid, 'pos', pos, 'wait', NOW - enq, 'est', tonumber(ARGV[5]) or 0)
  stat('callbacks_requested')
  return {'callback', pos}
end

if op == 'resume' then
  -- The caller called again and chose to wait on the line: the new call
  -- takes the callback's ticket (and its time in line), the callback ends.
  -- Only while it waits for its turn: once dialled, the phone rings.
  if state ~= 'callback' or not redis.call('ZSCORE', K_WAITING, sid) then
    return {'stale', state or 'unknown'}
  end
  local nsid = ARGV[4]
  local nk = call_key(nsid)
  if redis.call('EXISTS', nk) == 1 then return {'stale', 'existing'} end
  local g = redis.call('HMGET', ck, 'ticket', 'enqueued_at', 'entry_pos', 'cb_number')
  local ticket = tonumber(g[1]) or 0
  redis.call('HSET', nk, 'state', 'waiting', 'from', ARGV[5], 'to', ARGV[6], 'ticket', ticket,
             'enqueued_at', g[2] or NOW, 'attempts', 0, 'entry_pos', g[3] or 0, 'resumed_from', sid)
  redis.call('ZREM', K_WAITING, sid)
  redis.call('ZADD', K_WAITING, ticket, nsid)
  redis.call('HSET', ck, 'state', 'cb_resumed', 'ended_at', NOW, 'ended_reason', 'called-again')
  finish_call(ck)
  if g[4] then redis.call('DEL', cbnum_key(g[4])) end
  local pos = redis.call('ZRANK', K_WAITING, nsid) + 1
  log('CALLBACK_CANCEL', sid, 'new', nsid, 'pos', pos, 'reason', 'called-again')
  stat('callbacks_resumed')
  return {'resumed', pos}
end

local attempt = tonumber(ARGV[4])
local current = cur ~= nil and cur == attempt

if op == 'dial' then
  -- The claim: one dial per attempt, whoever asks and however often.
  if state ~= 'cb_reserved' or not current then return {'stale', state or 'unknown'} end
  local g = redis.call('HMGET', ck, 'cb_number', 'to', 'cb_lease_ms')
  local dial = redis.call('HINCRBY', ck, 'cb_dials', 1)
  redis.call('HSET', ck, 'state', 'cb_dialing', 'cb_dialed_at', NOW)
  redis.call('ZADD', K_ACTIVE, 'XX', NOW + tonumber(g[3]), sid)
  log('CALLBACK_DIAL', sid, 'attempt', attempt, 'dial', dial)
  stat('callbacks_dialed')
  return {'dial', g[1], g[2] or '', dial}
end

if op == 'ringing' then
  if state ~= 'cb_dialing' or not current then return {'stale', state or 'unknown'} end
  redis.call('HSET', ck, 'state', 'cb_ringing', 'cb_leg', ARGV[5])
  redis.call('SET', cbleg_key(ARGV[5]), sid, 'EX', CALL_TTL)
  return {'ok'}
end

if op == 'answered' then
  local leg = ARGV[5]
  if state == 'called-back' and f[3] == leg then
    return {'existing', redis.call('HGET', call_key(leg), 'state') or 'unknown'}
  end
  if (state ~= 'cb_dialing' and state ~= 'cb_ringing') or not current or
     (f[3] and f[3] ~= leg) then
    return {'stale', state or 'unknown'}
  end
  local g = redis.call('HMGET', ck, 'cb_number', 'to', 'ticket', 'enqueued_at', 'entry_pos',
                       'cb_requested_at', 'cb_est_ms', 'cb_dials')
  -- The outbound leg becomes a caller being admitted, in the slot reserved
  -- for this ticket: every later step (Vapi call, connected, end, control,
  -- sweep, repair) works on it as on any caller.
  local lk = call_key(leg)
  redis.call('HSET', lk, 'state', 'admitting', 'from', g[1], 'to', g[2] or '', 'ticket', g[3] or 0,
             'enqueued_at', g[4] or NOW, 'entry_pos', g[5] or 0, 'attempts', 1, 'admitted_at', NOW,
             'admitted_by', ARGV[7], 'callback_of', sid, 'cb_requested_at', g[6] or NOW)
  redis.call('ZREM', K_ACTIVE, sid)
  redis.call('ZADD', K_ACTIVE, NOW + tonumber(ARGV[6]), leg)
  redis.call('SET', cbleg_key(leg), sid, 'EX', CALL_TTL)
  redis.call('HSET', ck, 'state', 'called-back', 'cb_leg', leg, 'ended_at', NOW,
             'ended_reason', 'callback')
  finish_call(ck)
  if g[1] then redis.call('DEL', cbnum_key(g[1])) end
  local since = NOW - (tonumber(g[6]) or NOW)
  log('CALLBACK_CONNECT', sid, 'leg', leg, 'wait', since, 'est', tonumber(g[7]) or 0, 'dial',
      tonumber(g[8]) or 0)
  log('ADMIT', leg, 'attempt', 1, 'callback', 1)
  stat('callbacks_connected')
  -- Acceptance to callback against the estimate the caller was given, and
  -- the time they did not spend holding for it.
  if since <= (tonumber(g[7]) or 0) then stat('callbacks_within_estimate') end
  stat('callbacks_hold_saved_ms', since)
  stat('admissions')
  return {'admit', leg, g[1], 1, admission_context(lk)}
end

if op ~= 'failed' and op ~= 'expire' then return redis.error_reply('unknown op ' .. op) end

local verdict, detail = callback_settle(sid, op, attempt, ARGV[5], ARGV[6], ARGV[7])
local out = {verdict, sid, detail}
if verdict ~= 'stale' then
  local admitted = admit_batch(ARGV[8], ARGV[9], ARGV[10], ARGV[11])
  for i = 1, #admitted do out[#out + 1] = admitted[i] end
end
return out
