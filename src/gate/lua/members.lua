-- members.lua: the gate's view of who waits, for reconciliation with
-- Twilio's queue members.
-- ARGV: 1 prefix, 2 route (optional; ROUTES_FILE: only that route's
--       callers, who wait in its own Twilio queue)
-- Returns a flat list: sid, enqueued_at_ms for every waiting caller (not
-- those waiting for a callback).
local out = {}
local all = redis.call('ZRANGE', K_WAITING, 0, -1)
for _, sid in ipairs(all) do
  local f = redis.call('HMGET', call_key(sid), 'state', 'enqueued_at', 'route')
  -- A caller waiting for a callback left Twilio's queue on purpose: not
  -- listed, so reconciliation does not look them up at Twilio.
  if f[1] ~= 'callback' and (not ARGV[2] or ARGV[2] == '' or f[3] == ARGV[2]) then
    out[#out + 1] = sid
    out[#out + 1] = tonumber(f[2]) or 0
  end
end
return out
