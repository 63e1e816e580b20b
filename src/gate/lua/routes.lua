-- routes.lua: the routes of ROUTES_FILE published where every script reads
-- them (cg:{g}:routes), by each instance at start and every 10 s after.
-- ARGV: 1 prefix, 2 outbound order ('after-inbound' | 'arrival'), then
--       name, "min max priority" pairs; none: the gate has one route and
--       an earlier publication is removed.
-- Returns the number of routes published.
redis.call('DEL', K_ROUTES)
local n = 0
for i = 3, #ARGV - 1, 2 do
  redis.call('HSET', K_ROUTES, ARGV[i], ARGV[i + 1])
  n = n + 1
end
-- '.first': where a caller without a route goes (one who entered before
-- the gate had routes), as a number no route lists does.
if n > 0 then redis.call('HSET', K_ROUTES, '.order', ARGV[2], '.first', ARGV[3]) end
return n
