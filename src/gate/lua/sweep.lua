-- sweep.lua: active entries whose lease ran out, claimed for one check so
-- that other instances sweeping at the same time skip them.
-- ARGV: 1 prefix, 2 max_entries, 3 claim_ms
-- Returns a flat list: member, state, vapi_id, connected_at_ms, admitted_at_ms,
-- attempt
-- (states: the call's state, 'orphan' for v: and u: slots). A callback's
-- reserved slot (cb_reserved, cb_dialing, cb_ringing) is settled here (callback_settle) and not
-- listed.
local due = redis.call('ZRANGEBYSCORE', K_ACTIVE, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, m in ipairs(due) do
  redis.call('ZADD', K_ACTIVE, 'XX', NOW + tonumber(ARGV[3]), m)
  local prefix = string.sub(m, 1, 2)
  if prefix == 'v:' then
    out[#out + 1] = m; out[#out + 1] = 'orphan'; out[#out + 1] = string.sub(m, 3)
    out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0
  elseif prefix == 's:' then
    -- A slot lease (slots.lua) that ran out: nobody renewed it, so it is
    -- freed here; the sweep's admission run fills it.
    redis.call('ZREM', K_ACTIVE, m)
    local r = redis.call('HGET', slot_key(m), 'route')
    redis.call('DEL', slot_key(m))
    log('RELEASE', m, 'by', 'lease', 'reason', 'slot-expired', 'route', r or '')
    rstat(r, 'expired')
    stat('released')
  elseif prefix == 'u:' then
    out[#out + 1] = m; out[#out + 1] = 'orphan'; out[#out + 1] = ''
    out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0
  else
    local f = redis.call('HMGET', call_key(m), 'state', 'vapi_id', 'connected_at', 'admitted_at',
                         'attempts')
    if f[1] == 'cb_reserved' or f[1] == 'cb_dialing' or f[1] == 'cb_ringing' then
      -- A callback's reserved slot: settled here, never released as a
      -- call's (that would lose the callback); the next admission pass
      -- fills the slot.
      callback_settle(m, 'expire', f[5], '', 'lease-expired', '0')
    else
      out[#out + 1] = m
      out[#out + 1] = f[1] or 'unknown'
      out[#out + 1] = f[2] or ''
      out[#out + 1] = tonumber(f[3]) or 0
      out[#out + 1] = tonumber(f[4]) or 0
      out[#out + 1] = tonumber(f[5]) or 0
    end
  end
end
return out
