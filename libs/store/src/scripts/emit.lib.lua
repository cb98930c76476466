--[[
  Shared prelude, prepended to every script that emits execution events (not a script itself).

  emit(execKey, eventsKey, channel, maxEvents, type, dataJson) -> event seq, event JSON
    Numbers the event with the execution's own counter (HINCRBY <exec> evseq), appends it to
    the replay stream under entry id `<seq>-0` (capped near maxEvents entries) and PUBLISHes
    the same JSON on the live channel. Doing both in one script keeps stream order == seq order.
  emitNumbered(eventsKey, channel, maxEvents, seq, type, dataJson) -> event JSON
    The same for an event whose seq the caller already wrote to the counter (accept's first).
]]
local function emitNumbered(eventsKey, channel, maxEvents, seq, type, dataJson)
  local event = '{"seq":' .. seq .. ',"type":"' .. type .. '","data":' .. dataJson .. '}'
  redis.call('XADD', eventsKey, 'MAXLEN', '~', maxEvents, seq .. '-0', 'e', event)
  redis.call('PUBLISH', channel, event)
  return event
end

local function emit(execKey, eventsKey, channel, maxEvents, type, dataJson)
  local seq = redis.call('HINCRBY', execKey, 'evseq', 1)
  return seq, emitNumbered(eventsKey, channel, maxEvents, seq, type, dataJson)
end
