-- repair_begin.lua: whether the gate's slots must be rebuilt from Vapi's
-- live calls, and if so, one instance's claim on doing it.
-- ARGV: 1 prefix, 2 token (one per instance), 3 hold_ms, 4 lost (1: this instance reconnected
--       and writes may have been lost: the slots are suspect from now on)
-- Returns {'intact'} (nothing to do), {'begin', fresh} (this instance
-- repairs now; the claim lasts hold_ms) or {'busy', fresh} (another instance
-- is repairing). fresh is 1 when Redis holds no trace of the gate at all (a
-- first start, or a Redis that lost everything): only the log's tone
-- depends on it.
-- The marker K_INTACT is absent on a Redis that lost the gate's keys (an
-- empty or flushed Redis, a replica promoted before it had them); admission
-- waits for it (admit_batch, enter.lua's fast path).
if ARGV[4] == '1' then
  redis.call('DEL', K_INTACT)
  -- A repair begun before the loss read Vapi before it: begin again.
  redis.call('DEL', K_REPAIRING)
end
if redis.call('EXISTS', K_INTACT) == 1 then return {'intact'} end
local fresh = 0
if redis.call('EXISTS', K_SEQ, K_STATS, K_ACTIVE, K_WAITING) == 0 then fresh = 1 end
-- The token is the instance's own: an instance whose last attempt failed
-- (Vapi unreachable) takes its claim up again at once.
if redis.call('SET', K_REPAIRING, ARGV[2], 'NX', 'PX', tonumber(ARGV[3])) or
   redis.call('GET', K_REPAIRING) == ARGV[2] then
  redis.call('PEXPIRE', K_REPAIRING, tonumber(ARGV[3]))
  return {'begin', fresh}
end
return {'busy', fresh}
