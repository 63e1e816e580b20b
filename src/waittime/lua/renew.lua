-- renew.lua: renews the poller lock if this instance still holds it
-- (compare-and-set).
-- KEYS: lock. ARGV: token, lock time in ms. Returns 1 when renewed, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
