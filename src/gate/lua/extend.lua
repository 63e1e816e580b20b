-- extend.lua: Vapi says the call is still live: renew its lease.
-- ARGV: 1 prefix, 2 member, 3 lease_ms
-- Returns 1 when the member was still active.
if redis.call('ZSCORE', K_ACTIVE, ARGV[2]) then
  redis.call('ZADD', K_ACTIVE, 'XX', NOW + tonumber(ARGV[3]), ARGV[2])
  return 1
end
return 0
