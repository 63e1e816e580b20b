-- common.lua: prepended to every gate script. Every script takes the key
-- prefix "cg:{<gate>}:" as ARGV[1] and builds the keys of one gate from it;
-- they all share one hash tag, so a script stays on one Redis Cluster slot.
local P = ARGV[1]
local K_WAITING = P .. 'waiting'
local K_ACTIVE = P .. 'active'
local K_LIMIT = P .. 'limit'
local K_SEQ = P .. 'seq'
local K_STATS = P .. 'stats'
local K_LOG = P .. 'log'
local K_CAP = P .. 'cap'         -- adaptive cap after over-limit answers (expires)
local K_BACKOFF = P .. 'backoff' -- admission paused until this time (expires)
-- Set by repair.lua once the slots agree with Vapi's live calls; absent on a
-- Redis that lost the gate's keys, and admission waits for it.
local K_INTACT = P .. 'intact'
local K_REPAIRING = P .. 'repairing' -- one instance's claim on the repair (expires)
-- A ceiling only: board.lua trims the log to QUEUE_LOG_RETENTION_HOURS and
-- QUEUE_LOG_MAX_ENTRIES once a minute.
local LOG_MAXLEN = 5000000
local CALL_TTL = 86400 -- seconds an ended call's record is kept (dedupe)

-- Redis' clock, shared by every instance, so leases and waits do not depend
-- on the hosts' clocks agreeing.
local t = redis.call('TIME')
local NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function call_key(sid) return P .. 'call:' .. sid end
local function vapi_key(id) return P .. 'vapi:' .. id end
-- Vapi calls whose end was seen: a late request to hold a slot for one of
-- them must not create a slot nothing will ever release.
local function vapi_ended_key(id) return P .. 'vend:' .. id end

local function log(event, sid, ...)
  redis.call('XADD', K_LOG, 'MAXLEN', '~', LOG_MAXLEN, '*', 'ev', event, 'sid', sid, 't', NOW, ...)
end

local function stat(field, by)
  redis.call('HINCRBY', K_STATS, field, by or 1)
end

-- The limit operators set at runtime (admin API), else MAX_CONCURRENCY.
local function base_limit(default_limit)
  return tonumber(redis.call('GET', K_LIMIT)) or tonumber(default_limit)
end

-- The limit admission obeys: the base limit, lowered after Vapi said it is
-- over its own limit (its pool is shared with calls this gate does not
-- see), until releases confirm room or the cap expires.
local function effective_limit(default_limit)
  local lim = base_limit(default_limit)
  local cap = tonumber(redis.call('GET', K_CAP))
  if cap and cap < lim then return cap end
  return lim
end

local function backoff_left()
  local until_ms = tonumber(redis.call('GET', K_BACKOFF))
  if until_ms and until_ms > NOW then return until_ms - NOW end
  return 0
end

-- Exponentially weighted mean kept as a hash field; the first sample
-- becomes the mean.
local function ewma(key, field, sample, alpha)
  local old = tonumber(redis.call('HGET', key, field))
  local new = old and (alpha * sample + (1 - alpha) * old) or sample
  redis.call('HSET', key, field, string.format('%.1f', new))
end

-- The same with a sample count in count_field: the plain mean of the first
-- 1/alpha samples, then the exponentially weighted one. A small alpha is
-- only useful this way: started from the first sample, the mean would keep
-- that one sample's error for dozens more. A mean kept before the count
-- existed is continued as an ordinary EWMA.
local function ewma_counted(key, field, count_field, sample, alpha)
  local old = tonumber(redis.call('HGET', key, field))
  local n = redis.call('HINCRBY', key, count_field, 1)
  local new = sample
  if old then
    local gain = alpha
    if n > 1 and 1 / n > alpha then gain = 1 / n end
    new = old + gain * (sample - old)
  end
  redis.call('HSET', key, field, string.format('%.1f', new))
end

local function finish_call(ck)
  redis.call('EXPIRE', ck, CALL_TTL)
end

-- A waiting caller leaves the queue for good, as 'abandoned' (hung up) or
-- 'overflowed' (told to call again): out of the waiting set, the record
-- closed, the queue log and the stats told. Returns the wait in ms and the
-- position the caller had.
local function leave_queue(sid, ck, state, reason)
  local rank = redis.call('ZRANK', K_WAITING, sid) or 0
  local enq = tonumber(redis.call('HGET', ck, 'enqueued_at')) or NOW
  redis.call('ZREM', K_WAITING, sid)
  redis.call('HSET', ck, 'state', state, 'ended_at', NOW, 'ended_reason', reason)
  finish_call(ck)
  local event = state == 'abandoned' and 'ABANDON' or 'OVERFLOW'
  log(event, sid, 'pos', rank + 1, 'wait', NOW - enq, 'reason', reason)
  stat(state)
  return NOW - enq, rank + 1
end

-- The callback window (CALLBACK_HOURS) is open while this key exists; the
-- instances keep it set, expiring at the window's end. Without it no
-- callback is dialled.
local K_CBWIN = P .. 'cbwin'
local function cbleg_key(leg) return P .. 'cbleg:' .. leg end

-- A callback's dial ends without an answer (op 'failed': Twilio's outcome
-- or a refused create) or its reserved slot's lease ran out (op 'expire':
-- the sweep). The slot is freed (without raising the cap: it held no Vapi
-- call, so nothing confirms room at Vapi); the caller goes back in their
-- place for a retry, or the callback ends failed after its dials, or, for a
-- reservation nobody claimed, back in place with nothing counted. Returns
-- verdict ('retry', 'failed', 'requeued', 'stale'), detail. The caller of
-- this function runs admission into the freed slot.
local function callback_settle(sid, op, attempt, leg, reason, final)
  local ck = call_key(sid)
  local f = redis.call('HMGET', ck, 'state', 'attempts', 'cb_leg', 'ticket', 'cb_dials', 'cb_max',
                       'cb_retry_ms', 'cb_requested_at')
  local state = f[1]
  local dialled = state == 'cb_dialing' or state == 'cb_ringing'
  if tonumber(f[2]) ~= tonumber(attempt) or (op == 'failed' and not dialled) or
     (op == 'expire' and not dialled and state ~= 'cb_reserved') or
     (leg ~= '' and f[3] and f[3] ~= leg) or not redis.call('ZSCORE', K_ACTIVE, sid) then
    return 'stale', state or 'unknown'
  end
  redis.call('ZREM', K_ACTIVE, sid)
  local ticket, dials, max = tonumber(f[4]) or 0, tonumber(f[5]) or 0, tonumber(f[6]) or 1
  if not dialled then
    -- The reserving instance died before its claim: nobody dialled.
    redis.call('ZADD', K_WAITING, ticket, sid)
    redis.call('HSET', ck, 'state', 'callback')
    log('REQUEUE', sid, 'pos', redis.call('ZRANK', K_WAITING, sid) + 1, 'reason', reason,
        'callback', 1)
    return 'requeued', ''
  end
  if final == '1' or dials >= max then
    redis.call('HSET', ck, 'state', 'cb_failed', 'ended_at', NOW, 'ended_reason', reason)
    finish_call(ck)
    log('CALLBACK_FAILED', sid, 'reason', reason, 'dials', dials, 'wait',
        NOW - (tonumber(f[8]) or NOW))
    stat('callbacks_failed')
    return 'failed', reason
  end
  local due = NOW + (tonumber(f[7]) or 0)
  redis.call('ZADD', K_WAITING, ticket, sid)
  redis.call('HSET', ck, 'state', 'callback', 'cb_due_at', due)
  redis.call('HDEL', ck, 'cb_leg')
  log('CALLBACK_RETRY', sid, 'reason', reason, 'dial', dials, 'due', due)
  stat('callbacks_retried')
  return 'retry', due
end

-- Moves up to max callers from the head of the queue into the active set,
-- each with an admission lease. Returns a flat list sid, from, attempt per
-- admitted caller. The caller of this function has checked nothing: room,
-- backoff and the batch bound are all decided here, atomically.
-- A callback entry (state 'callback') that is due takes its slot in ticket
-- order as a reservation (state 'cb_reserved', the admission lease until
-- the dial's claim gives it cb_lease_ms) and comes
-- back as sid, number, -attempt: its caller dials (callback.lua dial) and
-- creates no Vapi call. One not due (retry time ahead, window closed) is
-- passed over and keeps its place.
local function admit_batch(default_limit, max_batch, lease_ms, instance)
  if backoff_left() > 0 or redis.call('EXISTS', K_INTACT) == 0 then return {} end
  local free = effective_limit(default_limit) - redis.call('ZCARD', K_ACTIVE)
  local n = math.min(free, tonumber(max_batch))
  local out = {}
  local skip = 0 -- callback entries passed over at the head
  local window = nil
  while n > 0 do
    local head = redis.call('ZRANGE', K_WAITING, skip, skip)
    if #head == 0 then break end
    local sid = head[1]
    local ck = call_key(sid)
    local f = redis.call('HMGET', ck, 'from', 'state', 'cb_due_at', 'cb_number')
    if f[2] == 'callback' then
      if window == nil then window = redis.call('EXISTS', K_CBWIN) == 1 end
      if window and (tonumber(f[3]) or 0) <= NOW and f[4] then
        local attempt = redis.call('HINCRBY', ck, 'attempts', 1)
        redis.call('ZREM', K_WAITING, sid)
        redis.call('HSET', ck, 'state', 'cb_reserved', 'cb_reserved_at', NOW, 'cb_reserved_by', instance)
        redis.call('ZADD', K_ACTIVE, NOW + tonumber(lease_ms), sid)
        out[#out + 1] = sid
        out[#out + 1] = f[4]
        out[#out + 1] = -attempt
        n = n - 1
      else
        skip = skip + 1
      end
    else
      redis.call('ZREM', K_WAITING, sid)
      local from = f[1]
      if from then
        local attempt = redis.call('HINCRBY', ck, 'attempts', 1)
        redis.call('HSET', ck, 'state', 'admitting', 'admitted_at', NOW, 'admitted_by', instance)
        redis.call('ZADD', K_ACTIVE, NOW + tonumber(lease_ms), sid)
        log('ADMIT', sid, 'attempt', attempt)
        stat('admissions')
        out[#out + 1] = sid
        out[#out + 1] = from
        out[#out + 1] = attempt
        n = n - 1
      end
      -- A queue entry without its record cannot be admitted (no caller
      -- number); it was dropped above and reconciliation re-adopts the caller
      -- if Twilio still holds them.
    end
  end
  return out
end
