-- end.lua: one end signal, applied exactly once, followed by admission into
-- whatever slot it freed (one round trip from release to refill).
-- ARGV: 1 prefix, 2 kind, 3 id, 4 reason, 5 end_grace_ms, 6 default_limit,
--       7 max_batch, 8 admit_lease_ms, 9 instance, 10 ewma_alpha,
--       11 signal (label for stats and the log), 12 orphan_hold_ms
-- kind 'vapi': id is a Vapi call id that Vapi reports ended (status-update
--   'ended', end-of-call-report, or GET /call/{id} during a sweep).
-- kind 'twilio': id is a CallSid whose Twilio call is over (status callback,
--   or the Enqueue action with QueueResult=hangup).
-- kind 'lease': id is an active member whose lease ran out for good.
-- kind 'expire-admission': id is a CallSid whose admission lease ran out
--   (its instance died mid-admission).
-- kind 'overflow': id is a waiting CallSid that must get the overflow
--   treatment (Twilio's own queue was full).
-- Returns {verdict, sid, detail, admitted...} where admitted is the flat
-- sid, from, attempt, context list of admit_batch. detail: for 'released' the ms
-- the caller was connected (when known); for 'abandoned' and 'overflowed'
-- of a waiting caller "<wait ms>:<position>"; for 'ending' the Vapi call
-- id; else ''.
local kind, id, reason, signal = ARGV[2], ARGV[3], ARGV[4], ARGV[11]
local freed = false

local function bump_cap()
  local cap = tonumber(redis.call('GET', K_CAP))
  if cap then
    -- A release is Vapi's confirmation that one more call fits again.
    if cap + 1 >= base_limit(ARGV[6]) then
      redis.call('DEL', K_CAP)
    else
      redis.call('SET', K_CAP, cap + 1, 'KEEPTTL')
    end
  end
end

local function release(sid, ck)
  redis.call('ZREM', K_ACTIVE, sid)
  local connected_at = tonumber(redis.call('HGET', ck, 'connected_at'))
  local admitted_at = tonumber(redis.call('HGET', ck, 'admitted_at'))
  local len = 0
  if connected_at and admitted_at then
    len = NOW - connected_at
    -- The wait estimate needs how long a slot stays taken: from admission
    -- (the Vapi call counts from its creation) to this release.
    ewma_counted(K_STATS, 'service_ms_ewma', 'service_samples', NOW - admitted_at,
                 tonumber(ARGV[10]))
    -- and per route, for the estimate of the route's own callers
    local route = redis.call('HGET', ck, 'route')
    if route and route ~= '' then
      ewma_counted(rstats_key(route), 'service_ms_ewma', 'service_samples', NOW - admitted_at,
                   tonumber(ARGV[10]))
    end
  end
  redis.call('HSET', ck, 'state', 'ended', 'ended_at', NOW, 'ended_reason', reason,
             'released_by', signal)
  finish_call(ck)
  log('RELEASE', sid, 'by', signal, 'reason', reason, 'len', len)
  stat('released')
  stat('released_' .. signal)
  rstat(redis.call('HGET', ck, 'route'), 'released')
  bump_cap()
  freed = true
  return len
end

local function requeue_head(sid, ck, why)
  redis.call('ZREM', K_ACTIVE, sid)
  local ticket = tonumber(redis.call('HGET', ck, 'ticket')) or 0
  -- An outbound call waits in its route's line only (outbound.lua).
  if redis.call('HGET', ck, 'kind') ~= 'outbound' then redis.call('ZADD', K_WAITING, ticket, sid) end
  redis.call('HSET', ck, 'state', 'waiting')
  redis.call('HDEL', ck, 'vapi_id')
  route_wait(sid, ck)
  log('REQUEUE', sid, 'pos', (redis.call('ZRANK', K_WAITING, sid) or 0) + 1, 'reason', why)
  freed = true
end

local verdict, vsid, detail = 'unknown', '', ''

if kind == 'vapi' then
  local slot = 'v:' .. id
  local sid = redis.call('GET', vapi_key(id))
  -- Remember the end of a call this gate knows (never of an unknown id:
  -- those change nothing), so a later orphan slot is not created for it.
  if sid then redis.call('SET', vapi_ended_key(id), 1, 'EX', CALL_TTL) end
  if redis.call('ZSCORE', K_ACTIVE, slot) then
    redis.call('ZREM', K_ACTIVE, slot)
    log('RELEASE', sid or '', 'by', signal, 'reason', reason, 'vapi', id, 'orphan', 1)
    stat('released')
    stat('released_' .. signal)
    bump_cap()
    freed = true
    verdict, vsid = 'released-orphan', sid or ''
  elseif sid then
    local ck = call_key(sid)
    local state = redis.call('HGET', ck, 'state')
    vsid = sid
    if redis.call('HGET', ck, 'vapi_id') ~= id then
      verdict = 'stale'
    elseif state == 'connected' or state == 'ending' then
      verdict, detail = 'released', release(sid, ck)
    elseif state == 'admitting' then
      -- Vapi ended the call before the caller reached it: the caller is
      -- still in Twilio's queue and must not be lost.
      requeue_head(sid, ck, 'vapi-ended-before-connect')
      verdict = 'requeued'
    elseif state == 'gone' then
      release(sid, ck)
      redis.call('HSET', ck, 'state', 'abandoned')
      verdict = 'released'
    else
      verdict = 'duplicate'
    end
  end
elseif kind == 'twilio' then
  local sid = id
  local ck = call_key(sid)
  local state = redis.call('HGET', ck, 'state')
  vsid = sid
  if state == 'waiting' then
    local waited, pos = leave_queue(sid, ck, 'abandoned', reason)
    verdict, detail = 'abandoned', waited .. ':' .. pos
  elseif state == 'admitting' then
    -- The admission in flight settles it: orphan or abandon.
    redis.call('HSET', ck, 'state', 'gone')
    verdict = 'gone'
  elseif state == 'connected' then
    -- Vapi counts the call until its own end, a moment after Twilio's:
    -- hold the slot for the end grace; Vapi's end or a sweep releases it.
    redis.call('HSET', ck, 'state', 'ending', 'twilio_ended_at', NOW)
    redis.call('ZADD', K_ACTIVE, 'XX', NOW + tonumber(ARGV[5]), sid)
    -- The Vapi call to ask about early, should its end message be lost.
    verdict, detail = 'ending', redis.call('HGET', ck, 'vapi_id') or ''
  elseif state then
    verdict = 'duplicate'
  end
elseif kind == 'lease' then
  if string.sub(id, 1, 2) == 'v:' or string.sub(id, 1, 2) == 'u:' then
    if redis.call('ZREM', K_ACTIVE, id) == 1 then
      log('RELEASE', '', 'by', signal, 'reason', reason, 'slot', id, 'orphan', 1)
      stat('released')
      stat('released_' .. signal)
      freed = true
      verdict = 'released-orphan'
    end
  else
    local ck = call_key(id)
    local state = redis.call('HGET', ck, 'state')
    vsid = id
    if redis.call('ZSCORE', K_ACTIVE, id) then
      if state == 'gone' then
        release(id, ck)
        redis.call('HSET', ck, 'state', 'abandoned')
      elseif state then
        detail = release(id, ck)
      else
        redis.call('ZREM', K_ACTIVE, id)
        freed = true
      end
      verdict = 'released'
    end
  end
elseif kind == 'expire-admission' then
  local ck = call_key(id)
  local state = redis.call('HGET', ck, 'state')
  vsid = id
  if redis.call('ZSCORE', K_ACTIVE, id) and (state == 'admitting' or state == 'gone') then
    local attempt = redis.call('HGET', ck, 'attempts') or '0'
    local vid = redis.call('HGET', ck, 'vapi_id')
    -- Whether the dead instance got a Vapi call created is unknowable
    -- without its id: hold a slot for it as long as Vapi would keep an
    -- unanswered bypass call, so the limit holds either way.
    local slot = vid and ('v:' .. vid) or ('u:' .. id .. ':' .. attempt)
    redis.call('ZADD', K_ACTIVE, NOW + tonumber(ARGV[12]), slot)
    if state == 'gone' then
      redis.call('ZREM', K_ACTIVE, id)
      redis.call('HSET', ck, 'state', 'abandoned', 'ended_at', NOW, 'ended_reason', reason)
      finish_call(ck)
      verdict = 'abandoned'
    else
      requeue_head(id, ck, reason)
      verdict = 'requeued'
    end
  end
elseif kind == 'overflow' then
  local ck = call_key(id)
  local state = redis.call('HGET', ck, 'state')
  vsid = id
  if state == 'waiting' then
    local waited, pos = leave_queue(id, ck, 'overflowed', reason)
    verdict, detail = 'overflowed', waited .. ':' .. pos
  elseif state == 'overflowed' then
    verdict = 'overflowed'
  elseif state then
    verdict = 'duplicate'
  end
end

local out = {verdict, vsid, detail}
if freed then
  local admitted = admit_batch(ARGV[6], ARGV[7], ARGV[8], ARGV[9])
  for i = 1, #admitted do out[#out + 1] = admitted[i] end
end
return out
