-- read.lua: the version-checked read every instance reloads its snapshot with.
-- KEYS: version, meta, queues. ARGV: the version the reader has.
-- Returns {'0'} when nothing is stored, {version} when the reader is up to
-- date, else {version, meta pairs, queue pairs}.
local v = redis.call('GET', KEYS[1])
if not v then return {'0'} end
if v == ARGV[1] then return {v} end
return {v, redis.call('HGETALL', KEYS[2]),
        redis.call('HGETALL', KEYS[3])}
