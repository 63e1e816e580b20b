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
-- Routes (ROUTES_FILE) sharing the limit: name -> "min max priority",
-- published by every instance; absent for a gate of one route.
local K_ROUTES = P .. 'routes'
local route_wait, route_unwait -- a call into or out of its route's line (below)
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

-- Routes (ROUTES_FILE): a route's line, its figures, a leased slot's
-- record (see the routes section at the end).
local function rq_key(route) return P .. 'rq:' .. route end
local function rstats_key(route) return P .. 'rstats:' .. route end
local function slot_key(id) return P .. 'slot:' .. string.sub(id, 3) end

local function rstat(route, field, by)
  if route and route ~= '' then redis.call('HINCRBY', rstats_key(route), field, by or 1) end
end

-- The lowest MAX_CONCURRENCY among the gate's live instances (instances.lua
-- keeps it; absent until the first announcement).
local K_IMIN = P .. 'instances_min'

-- The limit operators set at runtime (admin API), else MAX_CONCURRENCY:
-- this instance's, or a lower one of another live instance, so that an
-- instance configured with a higher limit never raises the gate's.
local function base_limit(default_limit)
  local lim = tonumber(redis.call('GET', K_LIMIT))
  if lim then return lim end
  lim = tonumber(default_limit)
  local lowest = tonumber(redis.call('GET', K_IMIN))
  if lowest and lowest < lim then return lowest end
  return lim
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
  route_unwait(sid, ck)
  redis.call('HSET', ck, 'state', state, 'ended_at', NOW, 'ended_reason', reason)
  finish_call(ck)
  local event = state == 'abandoned' and 'ABANDON' or 'OVERFLOW'
  log(event, sid, 'pos', rank + 1, 'wait', NOW - enq, 'reason', reason)
  stat(state)
  rstat(redis.call('HGET', ck, 'route'), state)
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
    route_wait(sid, ck)
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
  route_wait(sid, ck)
  redis.call('HDEL', ck, 'cb_leg')
  log('CALLBACK_RETRY', sid, 'reason', reason, 'dial', dials, 'due', due)
  stat('callbacks_retried')
  return 'retry', due
end

-- What the assistant is told of a caller being admitted
-- (assistantOverrides.variableValues), read from the caller's record in the
-- step that admits them, so the Vapi call is created without another round
-- trip: {waited_ms (-1: unknown), position on entering (0: not recorded),
-- the number dialled ('': unknown), 1 for a callback's outbound leg (else
-- 0), when the caller entered (Unix ms, 0: unknown), route ('': none)}.
-- CTX_FIELDS are the record's fields it is made of, in this order;
-- context_of(f, i) makes it from an HMGET reply holding them from f[i] on,
-- so that a step that reads the record anyway reads it once.
local CTX_FIELDS = {'enqueued_at', 'entry_pos', 'to', 'callback_of', 'route'}
local function context_of(f, i)
  local enq = tonumber(f[i])
  return {enq and (NOW - enq) or -1, tonumber(f[i + 1]) or 0, f[i + 2] or '', f[i + 3] and 1 or 0,
          enq or 0, f[i + 4] or ''}
end
local function admission_context(ck)
  return context_of(redis.call('HMGET', ck, unpack(CTX_FIELDS)), 1)
end

-- Moves up to max callers from the head of the queue into the active set,
-- each with an admission lease. Returns a flat list of four elements per
-- admitted caller: sid, from, attempt and the caller's admission_context
-- (an empty list for a callback's reservation and an outbound call). The caller of this function has checked nothing: room,
-- backoff and the batch bound are all decided here, atomically.
-- A callback entry (state 'callback') that is due takes its slot in ticket
-- order as a reservation (state 'cb_reserved', the admission lease until
-- the dial's claim gives it cb_lease_ms) and comes
-- back as sid, number, -attempt, {}: its caller dials (callback.lua dial) and
-- creates no Vapi call. One not due (retry time ahead, window closed) is
-- passed over and keeps its place.
local admit_routed -- routes (ROUTES_FILE): defined at the end of this file
local function admit_batch(default_limit, max_batch, lease_ms, instance)
  if backoff_left() > 0 or redis.call('EXISTS', K_INTACT) == 0 then return {} end
  if redis.call('EXISTS', K_ROUTES) == 1 then
    return admit_routed(default_limit, max_batch, lease_ms, instance)
  end
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
    local f = redis.call('HMGET', ck, 'from', 'state', 'cb_due_at', 'cb_number', unpack(CTX_FIELDS))
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
        out[#out + 1] = {}
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
        out[#out + 1] = context_of(f, 5)
        n = n - 1
      end
      -- A queue entry without its record cannot be admitted (no caller
      -- number); it was dropped above and reconciliation re-adopts the caller
      -- if Twilio still holds them.
    end
  end
  return out
end

-- ---- Routes (ROUTES_FILE) ----
-- Every route has its line, cg:{g}:rq:<route> (sid -> score): the ticket,
-- less ROUTE_VIP for a VIP caller (the head of the line), plus ROUTE_OUT
-- for an outbound call queued after inbound callers. Inbound callers are
-- in K_WAITING too (positions, reconciliation); outbound calls only in
-- their line. A line may hold entries that left it another way (repair):
-- those are dropped when met at its head. Per-route figures live in
-- cg:{g}:rstats:<route>. The call record's field 'route' names its route.
local ROUTE_VIP = 1099511627776 -- 2^40: below every ticket
local ROUTE_OUT = 1099511627776 -- 2^40: above every ticket

-- The routes as published: a list of {name, min, max, prio}, and the
-- outbound order ('after-inbound' or 'arrival').
local function routes_conf()
  local h = redis.call('HGETALL', K_ROUTES)
  local list, order = {}, 'after-inbound'
  for i = 1, #h, 2 do
    if h[i] == '.order' then
      order = h[i + 1]
    elseif string.sub(h[i], 1, 1) == '.' then
      -- '.first' and later settings: no route
    else
      local mn, mx, pr = string.match(h[i + 1], '^(%-?%d+) (%-?%d+) (%-?%d+)$')
      if mn then
        list[#list + 1] = {name = h[i], min = tonumber(mn), max = tonumber(mx), prio = tonumber(pr)}
      end
    end
  end
  return list, order
end

-- The route a slot counts against: the call's route, a leased slot's
-- route; orphans (v:, u:) count against the organization only.
local function member_route(m)
  local p2 = string.sub(m, 1, 2)
  if p2 == 'v:' or p2 == 'u:' then return nil end
  if p2 == 's:' then return redis.call('HGET', slot_key(m), 'route') end
  return redis.call('HGET', call_key(m), 'route')
end

-- Live slots per route, from the active set itself (so no count can drift
-- from it): one read per slot held, bounded by the organization's limit.
local function route_counts()
  local counts = {}
  local members = redis.call('ZRANGE', K_ACTIVE, 0, -1)
  for i = 1, #members do
    local r = member_route(members[i])
    if r then counts[r] = (counts[r] or 0) + 1 end
  end
  return counts
end

-- The score of a call in its route's line.
local function route_score(ticket, vip, outbound, order)
  if vip then return ticket - ROUTE_VIP end
  if outbound and order ~= 'arrival' then return ticket + ROUTE_OUT end
  return ticket
end

-- Puts a call (back) in its route's line, when it has one; a requeued
-- caller keeps their ticket, so the place at the head.
route_wait = function(sid, ck)
  local f = redis.call('HMGET', ck, 'route', 'ticket', 'vip', 'kind')
  if not f[1] or f[1] == '' then return end
  local order = redis.call('HGET', K_ROUTES, '.order') or 'after-inbound'
  redis.call('ZADD', rq_key(f[1]), route_score(tonumber(f[2]) or 0, f[3] == '1',
                                               f[4] == 'outbound', order), sid)
end

route_unwait = function(sid, ck)
  local r = redis.call('HGET', ck, 'route')
  if r and r ~= '' then redis.call('ZREM', rq_key(r), sid) end
end

-- The head of a route's line from its score alone (one read per route):
-- {sid, ticket, outbound}, or nil. The score tells the kind: below 0 a
-- VIP's (ticket - ROUTE_VIP), above ROUTE_OUT an outbound call queued
-- after the inbound callers. Only the head chosen is read in full
-- (route_check), so a decision costs one read per route.
local function route_peek(route, skip)
  local head = redis.call('ZRANGE', rq_key(route), skip, skip, 'WITHSCORES')
  if #head == 0 then return nil end
  local score = tonumber(head[2])
  local ticket, outbound = score, false
  if score < 0 then
    ticket = score + ROUTE_VIP
  elseif score > ROUTE_OUT then
    ticket, outbound = score - ROUTE_OUT, true
  end
  return {sid = head[1], ticket = ticket, outbound = outbound, skip = skip}
end

-- Whether the head h of route's line can be admitted now: 'ok' (h.f, h.ck
-- filled), 'stale' (no longer waiting: dropped from the line) or 'skip' (a
-- callback not due: it keeps its place).
local function route_check(route, h, window_of)
  local ck = call_key(h.sid)
  local f = redis.call('HMGET', ck, 'state', 'from', 'ticket', 'cb_due_at', 'cb_number', 'kind',
                       'route')
  if f[7] ~= route or (f[1] ~= 'waiting' and f[1] ~= 'callback') or
     (f[6] ~= 'outbound' and not redis.call('ZSCORE', K_WAITING, h.sid)) then
    redis.call('ZREM', rq_key(route), h.sid)
    return 'stale'
  end
  if f[1] == 'callback' and not (window_of() and (tonumber(f[4]) or 0) <= NOW and f[5]) then
    return 'skip'
  end
  h.ck, h.f = ck, f
  return 'ok'
end

-- One decision per freed slot over every route (the same order as the
-- gate of one route within each line): a route under its min with a
-- caller waiting first, then the highest priority, then (by default) an
-- inbound caller before an outbound call, then the lowest ticket (the
-- longest wait); never a route at its max, never the organization over
-- its limit. Returns what admit_batch returns; an outbound call comes back
-- as its id 'o:<id>', the customer's number, its attempt and {}.
admit_routed = function(default_limit, max_batch, lease_ms, instance)
  local free = effective_limit(default_limit) - redis.call('ZCARD', K_ACTIVE)
  local n = math.min(free, tonumber(max_batch))
  if n <= 0 then return {} end
  local routes, order = routes_conf()
  local counts = route_counts()
  -- A caller who entered before the gate had routes has none: the first
  -- few of the waiting set, if so, join the first route's line (a few per
  -- step, in ticket order, so none is left behind).
  local first = redis.call('HGET', K_ROUTES, '.first')
  for _, wsid in ipairs(first and redis.call('ZRANGE', K_WAITING, 0, 7) or {}) do
    local wck = call_key(wsid)
    if not redis.call('HGET', wck, 'route') then
      redis.call('HSET', wck, 'route', first)
      route_wait(wsid, wck)
    end
  end
  local window = nil
  local function window_of()
    if window == nil then window = redis.call('EXISTS', K_CBWIN) == 1 end
    return window
  end
  local heads = {} -- route name -> peeked head, or false when the line is empty
  local out = {}
  local guard = 0
  while n > 0 and guard < 10000 do
    guard = guard + 1
    local best, bkey = nil, nil
    for i = 1, #routes do
      local r = routes[i]
      local c = counts[r.name] or 0
      if c < r.max then
        if heads[r.name] == nil then heads[r.name] = route_peek(r.name, 0) or false end
        local h = heads[r.name]
        if h then
          local out_kind = (order ~= 'arrival' and h.outbound) and 1 or 0
          local key = {c < r.min and 0 or 1, -r.prio, out_kind, h.ticket}
          local better = best == nil
          if not better then
            for k = 1, 4 do
              if key[k] ~= bkey[k] then better = key[k] < bkey[k]; break end
            end
          end
          if better then best, bkey = r, key end
        end
      end
    end
    if best == nil then break end
    local h = heads[best.name]
    local verdict = route_check(best.name, h, window_of)
    if verdict == 'stale' then
      heads[best.name] = route_peek(best.name, h.skip) or false
    elseif verdict == 'skip' then
      heads[best.name] = route_peek(best.name, h.skip + 1) or false
    else
      heads[best.name] = nil
      local sid, ck, f = h.sid, h.ck, h.f
      redis.call('ZREM', rq_key(best.name), sid)
      redis.call('ZREM', K_WAITING, sid)
      local attempt = redis.call('HINCRBY', ck, 'attempts', 1)
      redis.call('ZADD', K_ACTIVE, NOW + tonumber(lease_ms), sid)
      if f[1] == 'callback' then
        redis.call('HSET', ck, 'state', 'cb_reserved', 'cb_reserved_at', NOW, 'cb_reserved_by',
                   instance)
        out[#out + 1] = sid
        out[#out + 1] = f[5]
        out[#out + 1] = -attempt
        out[#out + 1] = {}
      else
        redis.call('HSET', ck, 'state', 'admitting', 'admitted_at', NOW, 'admitted_by', instance)
        log('ADMIT', sid, 'attempt', attempt, 'route', best.name)
        stat('admissions')
        rstat(best.name, 'admissions')
        out[#out + 1] = sid
        out[#out + 1] = f[2] or ''
        out[#out + 1] = attempt
        -- An outbound call reads its own record (outbound.c).
        out[#out + 1] = f[6] == 'outbound' and {} or admission_context(ck)
      end
      counts[best.name] = (counts[best.name] or 0) + 1
      n = n - 1
    end
  end
  return out
end
