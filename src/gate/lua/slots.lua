-- slots.lua: slots leased from a route's budget for calls callgate does not
-- place itself (web calls, another dialer): POST /slots, renew, DELETE.
-- A lease is the member 's:<id>' of the active set (score: its expiry, so
-- the sweep frees an expired one) and the record cg:{g}:slot:<id>.
-- ARGV: 1 prefix, 2 op ('take' | 'renew' | 'release'), 3 id, 4 route
--       ('default' for a gate without routes), 5 ttl_ms, 6 default_limit,
--       7 max_batch, 8 admit_lease_ms, 9 instance
-- take: only spare room: a free slot that no waiting caller or call can
--   use now (a lease never goes before anyone waiting), the route under
--   its max, and the routes under their min with callers waiting keeping
--   the slots they are owed.
--   Returns {'ok', expires_at_ms} | {'full', retry_after_ms} |
--           {'unknown-route'} | {'exists'}
-- renew: {'ok', expires_at_ms} | {'gone'}
-- release: {'released', '', '', admitted...} (admit_batch's list) |
--          {'gone'}
local op, id, route = ARGV[2], ARGV[3], ARGV[4]
local member = 's:' .. id
local sk = slot_key(member)
local ttl = tonumber(ARGV[5])

if op == 'renew' then
  if not redis.call('ZSCORE', K_ACTIVE, member) then return {'gone'} end
  redis.call('ZADD', K_ACTIVE, 'XX', NOW + ttl, member)
  redis.call('HSET', sk, 'expires_at', NOW + ttl)
  redis.call('PEXPIRE', sk, ttl + 86400000)
  return {'ok', NOW + ttl}
end

if op == 'release' then
  if redis.call('ZREM', K_ACTIVE, member) == 0 then return {'gone'} end
  local r = redis.call('HGET', sk, 'route')
  redis.call('DEL', sk)
  log('RELEASE', member, 'by', 'slots', 'reason', 'released', 'route', r or '')
  rstat(r, 'released')
  local out = {'released', '', ''}
  local admitted = admit_batch(ARGV[6], ARGV[7], ARGV[8], ARGV[9])
  for i = 1, #admitted do out[#out + 1] = admitted[i] end
  return out
end

-- take
if redis.call('EXISTS', sk) == 1 then return {'exists'} end
local routes = {}
if redis.call('EXISTS', K_ROUTES) == 1 then
  routes = routes_conf()
else
  local lim = effective_limit(ARGV[6])
  routes = {{name = 'default', min = 0, max = lim, prio = 0}}
end
local mine = nil
for i = 1, #routes do if routes[i].name == route then mine = routes[i] end end
if not mine then return {'unknown-route'} end

local function retry_ms()
  -- About one slot's turn: the mean hold over the limit, 1 s to 60 s.
  local svc = tonumber(redis.call('HGET', K_STATS, 'service_ms_ewma')) or 30000
  local lim = math.max(1, effective_limit(ARGV[6]))
  return math.min(60000, math.max(1000, math.floor(svc / lim)))
end

local free = effective_limit(ARGV[6]) - redis.call('ZCARD', K_ACTIVE)
if backoff_left() > 0 or redis.call('EXISTS', K_INTACT) == 0 then free = 0 end
local counts = route_counts()
if route == 'default' and redis.call('EXISTS', K_ROUTES) == 0 then
  counts['default'] = redis.call('ZCARD', K_ACTIVE)
end
-- What those waiting can use now, and what routes under their min are owed.
local owed = 0
if redis.call('EXISTS', K_ROUTES) == 1 then
  for i = 1, #routes do
    local r = routes[i]
    local c = counts[r.name] or 0
    local waiting = redis.call('ZCARD', rq_key(r.name))
    local usable = math.min(waiting, math.max(0, r.max - c))
    if r.name ~= route then usable = math.max(usable, math.min(waiting, math.max(0, r.min - c))) end
    owed = owed + usable
  end
else
  owed = math.min(redis.call('ZCARD', K_WAITING), math.max(0, free))
end
if free - owed < 1 or (counts[route] or 0) >= mine.max then
  rstat(route, 'refused')
  stat('slots_refused')
  return {'full', retry_ms()}
end
redis.call('ZADD', K_ACTIVE, NOW + ttl, member)
redis.call('HSET', sk, 'route', route, 'created_at', NOW, 'expires_at', NOW + ttl)
redis.call('PEXPIRE', sk, ttl + 86400000)
log('ADMIT', member, 'slot', 1, 'route', route)
rstat(route, 'slots')
stat('slots_taken')
return {'ok', NOW + ttl}
