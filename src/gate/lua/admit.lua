-- admit.lua: fill free slots from the head of the queue.
-- ARGV: 1 prefix, 2 default_limit, 3 max_batch, 4 admit_lease_ms, 5 instance
-- Returns {sid, from, attempt, context, sid, from, attempt, context, ...}
-- (context: the caller's admission_context; a callback's reserved slot:
-- sid, number, -attempt, {}; see admit_batch); empty when there is no room,
-- nobody waits, or admission is backing off.
return admit_batch(ARGV[2], ARGV[3], ARGV[4], ARGV[5])
