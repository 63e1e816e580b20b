-- claim.lua: one gate per Twilio queue in one Redis. Two gates that shared
-- a queue would each find the other's callers in it and adopt them.
-- KEYS[1]: the queue's claim key (keys.h: cg:queue-claim:<account>:<queue>,
-- outside the gate's hash tag, alone in its script); ARGV[1] the claiming
-- gate's key prefix, which names it; ARGV[2] the claim's lifetime in ms,
-- renewed by every instance of the gate while it runs.
-- Returns false when the claim is this gate's (taken or renewed), or the
-- prefix of the gate that holds it, and how many ms it has left.
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= P then
  return {owner, redis.call('PTTL', KEYS[1])}
end
redis.call('SET', KEYS[1], P, 'PX', tonumber(ARGV[2]))
return false
