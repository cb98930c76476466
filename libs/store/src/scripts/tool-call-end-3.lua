--[[
  Ends a tool call that got no answer: its own timeout or the execution's deadline passed
  (`timedOut`), or the execution is ending (`ended`: cancelled, interrupted, finished).

  KEYS[1] execution hash  KEYS[2] execution event stream  KEYS[3] the execution's tool calls hash
  ARGV[1] callId  ARGV[2] 'timedOut' | 'ended'  ARGV[3] live channel  ARGV[4] max replay events

  Returns 'ended', or the call's state when it is no longer pending ('answered': deliver the
  answer instead), or 'missing'. Emits `tool_result {callId, timedOut: true}` or
  `{callId, ended: true}`, and the status event `{type: 'tool_result', callId, name, timedOut |
  ended: true}`, while the execution runs (`result` stays the last event).
]]
local state = redis.call('HGET', KEYS[3], ARGV[1] .. ':state')
if not state then
  return 'missing'
end
if state ~= 'pending' then
  return state
end
redis.call('HSET', KEYS[3], ARGV[1] .. ':state', ARGV[2])
local running, follower = runningFollower(KEYS[1])
if running then
  local callId = cjson.encode(ARGV[1])
  local how = ',"' .. ARGV[2] .. '":true}'
  emit(KEYS[1], KEYS[2], ARGV[3], ARGV[4], 'tool_result', '{"callId":' .. callId .. how, follower)
  local name = cjson.encode(cjson.decode(redis.call('HGET', KEYS[3], ARGV[1])).name)
  emit(KEYS[1], KEYS[2], ARGV[3], ARGV[4], 'status', '{"type":"tool_result","callId":' .. callId .. ',"name":' .. name .. how, follower)
end
return 'ended'
