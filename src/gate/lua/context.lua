-- context.lua: what the assistant is told of a caller being admitted
-- (assistantOverrides.variableValues), read in one step.
-- ARGV: 1 prefix, 2 sid
-- Returns {waited_ms, entry_pos, to, route ('': none)}: the time since the
-- caller entered the
-- queue, their position then (0: not recorded), the number they dialled.
local f = redis.call('HMGET', call_key(ARGV[2]), 'enqueued_at', 'entry_pos', 'to', 'route')
local enq = tonumber(f[1])
return {enq and (NOW - enq) or -1, tonumber(f[2]) or 0, f[3] or '', f[4] or ''}
