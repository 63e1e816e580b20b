-- write.lua: the fenced write of one refresh: nothing is written unless
-- the lock is still ours, so a deposed leader cannot overwrite its
-- successor.
-- KEYS: lock, version, meta, queues, names (one hash slot: {wt:<WS>}).
-- ARGV: token, names fetched now (1/0), then three counted lists of hash
-- pairs: meta, queues (SID -> record), names (name -> SID). HSET is fed in
-- chunks so that unpack() stays within Lua's stack. The seed's queue-times
-- key has no hash tag, so it is set by a separate command once this fenced
-- write succeeded (a script may touch one slot on Redis Cluster).
-- Returns the new version, or -1 when the lock is not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local function put(key, at)
  local n = tonumber(ARGV[at])
  local first = at + 1
  local done = 0
  while done < n do
    local k = n - done
    if k > 200 then k = 200 end
    local from = first + 2 * done
    redis.call('HSET', key, unpack(ARGV, from, from + 2 * k - 1))
    done = done + k
  end
  return first + 2 * n
end
local v = redis.call('INCR', KEYS[2])
local nv = redis.call('HGET', KEYS[3], 'names_version')
if ARGV[2] == '1' then nv = v end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
redis.call('HSET', KEYS[3], 'version', v)
if nv then redis.call('HSET', KEYS[3], 'names_version', nv) end
local i = put(KEYS[3], 3)
i = put(KEYS[4], i)
put(KEYS[5], i)
return v
