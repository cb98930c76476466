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
  followerOf(execKey) -> follower or nil
    For a script that has not read the execution hash's `follower` with its other fields.
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

local function followerOf(execKey)
  local f = redis.call('HMGET', execKey, 'follower', 'executionId')
  if f[1] then
    return f
  end
end
