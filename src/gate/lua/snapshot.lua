-- snapshot.lua: the gate's figures in one consistent read, for /health,
-- /metrics and the admin API.
-- ARGV: 1 prefix, 2 default_limit
-- Returns {active, waiting, base_limit, effective_limit, backoff_ms,
--          stats field/value pairs...}
local out = {redis.call('ZCARD', K_ACTIVE), redis.call('ZCARD', K_WAITING),
             base_limit(ARGV[2]), effective_limit(ARGV[2]), backoff_left()}
local st = redis.call('HGETALL', K_STATS)
for i = 1, #st do out[#out + 1] = st[i] end
return out
