--[[
  Shared prelude, prepended to every script that emits execution events (not a script itself).

  emit(execKey, eventsKey, channel, maxEvents, type, dataJson, follower) -> event seq, event JSON
    Numbers the event with the execution's own counter (HINCRBY <exec> evseq), appends it to
    the replay stream under entry id `<seq>-0` (capped near maxEvents entries) and PUBLISHes
    the same JSON on the live channel. Doing both in one script keeps stream order == seq order.
    follower: {channel, executionId} of the api process that follows every event of this
    execution (a streamed submit, the execution hash's `follower`), or nil; the event goes
    there too, with the execution's id as its first field, so one channel serves every
    execution that process follows.
  emitNumbered(eventsKey, channel, maxEvents, seq, type, dataJson, follower) -> event JSON
    The same for an event whose seq the caller already wrote to the counter (accept's first).
  runningFollower(execKey) -> whether the execution is running, its follower or nil
    For a script that emits only while the execution runs: one read of the hash for both.
]]
local function emitNumbered(eventsKey, channel, maxEvents, seq, type, dataJson, follower)
  local event = '{"seq":' .. seq .. ',"type":"' .. type .. '","data":' .. dataJson .. '}'
  redis.call('XADD', eventsKey, 'MAXLEN', '~', maxEvents, seq .. '-0', 'e', event)
  redis.call('PUBLISH', channel, event)
  if follower then
    redis.call('PUBLISH', follower[1], '{"executionId":' .. cjson.encode(follower[2]) .. ',' .. string.sub(event, 2))
  end
  return event
end

local function emit(execKey, eventsKey, channel, maxEvents, type, dataJson, follower)
  local seq = redis.call('HINCRBY', execKey, 'evseq', 1)
  return seq, emitNumbered(eventsKey, channel, maxEvents, seq, type, dataJson, follower)
end

local function runningFollower(execKey)
  local exec = redis.call('HMGET', execKey, 'status', 'follower', 'executionId')
  return exec[1] == 'running', exec[2] and {exec[2], exec[3]} or nil
end
