-- instances.lua: the registry of the instances sharing this gate (gate/instances.h).
-- ARGV: 1 prefix, 2 op ('announce' | 'leave'), 3 instance id, 4 ttl_ms,
--       announce: 5 version, 6 started (epoch ms), 7 MAX_CONCURRENCY,
--       8 fingerprint, 9 settings ("NAME=digest,NAME=digest,...")
-- Each instance announces itself every few seconds with an expiry of ttl_ms;
-- one that stops cleanly leaves. Expired entries are dropped here, and the
-- lowest MAX_CONCURRENCY among the live ones is kept in K_IMIN (common.lua)
-- for admission, expiring with them, so a dead instance's limit stops
-- counting at the first announcement after its entry expired.
-- Returns {lowest limit (0: none live), live count, then per live
-- instance: id, version, started, limit, fingerprint, settings}.
local K_INSTANCES = P .. 'instances' -- ZSET id -> expiry (epoch ms)
local function inst_key(id) return P .. 'inst:' .. id end
local op, id, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])

redis.call('ZREMRANGEBYSCORE', K_INSTANCES, '-inf', NOW)
if op == 'leave' then
  redis.call('ZREM', K_INSTANCES, id)
  redis.call('DEL', inst_key(id))
elseif op == 'announce' then
  redis.call('ZADD', K_INSTANCES, NOW + ttl, id)
  redis.call('HSET', inst_key(id), 'version', ARGV[5], 'started', ARGV[6], 'limit', ARGV[7],
             'fp', ARGV[8], 'settings', ARGV[9], 'seen', NOW)
  redis.call('PEXPIRE', inst_key(id), ttl)
else
  return redis.error_reply('ERR instances: unknown op')
end

local out = {0, 0}
local lowest = nil
local ids = redis.call('ZRANGE', K_INSTANCES, 0, -1)
for i = 1, #ids do
  local f = redis.call('HMGET', inst_key(ids[i]), 'version', 'started', 'limit', 'fp', 'settings')
  local lim = tonumber(f[3])
  if not lim then
    -- The record is gone (a Redis that lost writes): the entry is dropped
    -- and the instance comes back with its next announcement.
    redis.call('ZREM', K_INSTANCES, ids[i])
  else
    if not lowest or lim < lowest then lowest = lim end
    out[#out + 1] = ids[i]
    out[#out + 1] = f[1] or ''
    out[#out + 1] = f[2] or ''
    out[#out + 1] = lim
    out[#out + 1] = f[4] or ''
    out[#out + 1] = f[5] or ''
    out[2] = out[2] + 1
  end
end
if lowest then
  redis.call('SET', K_IMIN, lowest, 'PX', ttl)
  redis.call('PEXPIRE', K_INSTANCES, ttl)
  out[1] = lowest
else
  redis.call('DEL', K_IMIN)
end
return out
