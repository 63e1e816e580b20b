-- enter.lua: a caller arrives (/incoming), or an unknown caller already in
-- Twilio's queue is adopted (/queue-wait, reconciliation).
-- ARGV: 1 prefix, 2 sid, 3 from, 4 to, 5 mode ('incoming'|'adopt'),
--       6 max_queue_size, 7 default_limit, 8 fast_path (0|1),
--       9 admit_lease_ms, 10 instance, 11 already_waited_ms (adopt)
-- Returns {'existing', state, position} | {'fast', attempt} |
--         {'waiting', position, room (1: a slot looks free)} |
--         {'overflow', position}
local sid, from, to, mode = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ck = call_key(sid)
local state = redis.call('HGET', ck, 'state')
if state then
  -- Idempotent: a retried webhook must not enqueue the caller twice.
  local rank = redis.call('ZRANK', K_WAITING, sid)
  return {'existing', state, rank and (rank + 1) or 0}
end

local waiting = redis.call('ZCARD', K_WAITING)
local ticket = redis.call('INCR', K_SEQ)
local enqueued_at = NOW - (tonumber(ARGV[11]) or 0)
redis.call('HSET', ck, 'state', 'waiting', 'from', from, 'to', to, 'ticket', ticket,
           'enqueued_at', enqueued_at, 'attempts', 0, 'entered_by', ARGV[10],
           'entry_pos', waiting + 1)
stat('entered')

if mode == 'incoming' and ARGV[8] == '1' and waiting == 0 and backoff_left() == 0 and
   redis.call('EXISTS', K_INTACT) == 1 and redis.call('ZCARD', K_ACTIVE) < effective_limit(ARGV[7]) then
  -- Fast path: nobody waits and a slot is free, so this caller takes it
  -- now and the webhook answers with the assistant's TwiML directly.
  redis.call('HSET', ck, 'state', 'admitting', 'attempts', 1, 'admitted_at', NOW,
             'admitted_by', ARGV[10], 'fast', 1)
  redis.call('ZADD', K_ACTIVE, NOW + tonumber(ARGV[9]), sid)
  log('ENTER', sid, 'pos', 1, 'from', from)
  log('ADMIT', sid, 'attempt', 1, 'fast', 1)
  stat('admissions')
  return {'fast', 1}
end

if mode == 'incoming' and waiting >= tonumber(ARGV[6]) then
  redis.call('HSET', ck, 'state', 'overflowed', 'ended_reason', 'queue-full', 'ended_at', NOW)
  finish_call(ck)
  log('ENTER', sid, 'pos', waiting + 1, 'from', from)
  log('OVERFLOW', sid, 'pos', waiting + 1, 'wait', 0, 'reason', 'queue-full')
  stat('overflowed')
  return {'overflow', waiting + 1}
end

redis.call('ZADD', K_WAITING, ticket, sid)
log('ENTER', sid, 'pos', waiting + 1, 'from', from, 'mode', mode)
-- Whether a slot looks free: with every slot taken an admission pass
-- could place nobody, and the release that frees one admits in its own
-- step (end.lua), so the caller of this script skips the pass.
local room = redis.call('ZCARD', K_ACTIVE) < effective_limit(ARGV[7]) and 1 or 0
return {'waiting', waiting + 1, room}
