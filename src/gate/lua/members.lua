-- members.lua: the gate's view of who waits, for reconciliation with
-- Twilio's queue members.
-- ARGV: 1 prefix
-- Returns a flat list: sid, enqueued_at_ms for every waiting caller.
local out = {}
local all = redis.call('ZRANGE', K_WAITING, 0, -1)
for _, sid in ipairs(all) do
  out[#out + 1] = sid
  out[#out + 1] = tonumber(redis.call('HGET', call_key(sid), 'enqueued_at')) or 0
end
return out
