-- repair.lua: the slots rebuilt from Vapi's live calls after Redis lost
-- writes (a failover that lost what the old master had not yet replicated,
-- a flushed or empty Redis). Every live Vapi call of this gate is counted
-- again, so admission never fills a slot that a call still holds.
-- ARGV: 1 prefix, 2 token (repair_begin's), 3 lease_ms, 4 orphan_hold_ms,
--       5 the live calls, one a line: "<vapi id>\t<CallSid>\t<attempt>\t<streaming>"
--       (CallSid and attempt may be empty; streaming 1 when Vapi says the
--       call is in progress: the caller's audio reached it), 6 force (1: no list; admission
--       resumes without a repair because Vapi could not be read)
-- Returns {'repaired', restored callers, restored orphan slots, already
-- held} or {'stale'} when the claim is no longer this repair's (a new loss
-- wiped it, or it ran out): the calls read may predate the loss.
if redis.call('GET', K_REPAIRING) ~= ARGV[2] and ARGV[6] ~= '1' then return {'stale'} end
local lease, hold = tonumber(ARGV[3]), tonumber(ARGV[4])
local restored, orphans, held = 0, 0, 0

-- A call no caller record explains holds a slot under its own name, as an
-- orphan: released by Vapi's end (end.lua) or the sweep's GET /call/{id}.
-- The same name vapi_created.lua gives an admission's call whose record is
-- gone, so both steps together count the call once.
local function orphan(vid, sid)
  redis.call('ZADD', K_ACTIVE, NOW + hold, 'v:' .. vid)
  if sid ~= '' then redis.call('SET', vapi_key(vid), sid, 'EX', CALL_TTL) end
  log('REPAIR', sid, 'vapi', vid, 'slot', 'orphan')
  orphans = orphans + 1
end

for line in string.gmatch(ARGV[5], '[^\n]+') do
  local vid, sid, att, streaming = string.match(line, '^([^\t]+)\t([^\t]*)\t([^\t]*)\t([01])$')
  if vid and redis.call('EXISTS', vapi_ended_key(vid)) == 0 then
    att = tonumber(att) or 0
    if redis.call('ZSCORE', K_ACTIVE, 'v:' .. vid) then
      held = held + 1
    elseif sid == '' then
      orphan(vid, sid)
    else
      local ck = call_key(sid)
      local f = redis.call('HMGET', ck, 'state', 'vapi_id', 'attempts')
      local state, cur_vid, cur_att = f[1], f[2], tonumber(f[3]) or 0
      local holding = state == 'admitting' or state == 'connected' or state == 'ending'
      if holding and cur_vid == vid then
        if redis.call('ZSCORE', K_ACTIVE, sid) then
          held = held + 1
        else
          redis.call('ZADD', K_ACTIVE, NOW + lease, sid)
          restored = restored + 1
        end
      elseif state == 'admitting' and not cur_vid and cur_att == att then
        -- The admission is in flight (vapi_created.lua not yet run): its
        -- slot already counts this call.
        held = held + 1
      elseif (state == 'waiting' or state == 'admitting') and att > cur_att and streaming == '1' then
        -- The admission that made this call was lost with the writes, and
        -- the caller talks to the assistant (Vapi has their audio: the
        -- Twilio update was applied). Not admitted again (a second Vapi
        -- call would take over their line); the slot is theirs. A call not
        -- yet streaming may belong to an admission still in flight, which
        -- vapi_created.lua will find stale: it counts as an orphan below,
        -- under the same name, and the caller waits on.
        redis.call('ZREM', K_WAITING, sid)
        redis.call('HSET', ck, 'state', 'connected', 'vapi_id', vid, 'attempts', att,
                   'admitted_at', NOW, 'connected_at', NOW, 'repaired', 1)
        redis.call('ZADD', K_ACTIVE, NOW + lease, sid)
        redis.call('SET', vapi_key(vid), sid, 'EX', CALL_TTL)
        log('REPAIR', sid, 'vapi', vid, 'slot', 'caller')
        restored = restored + 1
      else
        -- No record (lost entirely), a record of another attempt, or a
        -- caller who left: the call counts on its own.
        orphan(vid, sid)
      end
    end
  end
end
redis.call('DEL', K_REPAIRING)
redis.call('SET', K_INTACT, NOW)
if restored + orphans > 0 then stat('repaired', restored + orphans) end
return {'repaired', restored, orphans, held}
