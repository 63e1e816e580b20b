-- snapshot.lua: the gate's figures in one consistent read, for /health,
-- /metrics and the admin API.
-- ARGV: 1 prefix, 2 default_limit
-- Returns {active, waiting, base_limit, effective_limit, backoff_ms,
--          oldest_wait_ms, stats field/value pairs...}
-- oldest_wait_ms: how long the longest-waiting caller has waited (0 when
-- nobody waits). The head of the queue has the lowest ticket, but an
-- adopted caller's wait began in Twilio's queue before their ticket, so
-- the first few are looked at, not only the head.
local function oldest_wait()
  local head = redis.call('ZRANGE', K_WAITING, 0, 15)
  local oldest = 0
  for i = 1, #head do
    local enq = tonumber(redis.call('HGET', call_key(head[i]), 'enqueued_at'))
    if enq and NOW - enq > oldest then oldest = NOW - enq end
  end
  return oldest
end
local out = {redis.call('ZCARD', K_ACTIVE), redis.call('ZCARD', K_WAITING),
             base_limit(ARGV[2]), effective_limit(ARGV[2]), backoff_left(), oldest_wait()}
local st = redis.call('HGETALL', K_STATS)
for i = 1, #st do out[#out + 1] = st[i] end
return out
