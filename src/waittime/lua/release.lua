-- release.lua: releases the poller lock if this instance still holds it
-- (compare-and-delete), so that another instance takes over at once.
-- KEYS: lock. ARGV: token. Returns 1 when released, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
