-- route_figures.lua: each route's figures in one read, for /metrics and
-- /health (ROUTES_FILE; none without it).
-- ARGV: 1 prefix
-- Returns a flat list, per route: name, waiting (in its line, inbound and
-- outbound), active (slots held), min, max, priority, then the route's
-- counters (cg:{g}:rstats:<route>): entered, admissions, released,
-- abandoned, overflowed, refused (leases and outbound calls refused),
-- slots (leases taken), expired (leases that ran out), outbound (calls
-- queued), failed (outbound calls that could not be placed).
if redis.call('EXISTS', K_ROUTES) == 0 then return {} end
local routes = routes_conf()
local counts = route_counts()
local out = {}
for i = 1, #routes do
  local r = routes[i]
  local st = redis.call('HMGET', rstats_key(r.name), 'entered', 'admissions', 'released',
                        'abandoned', 'overflowed', 'refused', 'slots', 'expired', 'outbound',
                        'failed')
  out[#out + 1] = r.name
  out[#out + 1] = redis.call('ZCARD', rq_key(r.name))
  out[#out + 1] = counts[r.name] or 0
  out[#out + 1] = r.min
  out[#out + 1] = r.max
  out[#out + 1] = r.prio
  for k = 1, 10 do out[#out + 1] = tonumber(st[k]) or 0 end
end
return out
