--[[
  The client's answer to a tool call (any api replica). The first answer is kept and the
  worker running the execution is told; the same answer again changes nothing.

  KEYS[1] execution hash  KEYS[2] execution event stream  KEYS[3] the execution's tool calls hash
  ARGV[1] callId  ARGV[2] the answer as canonical JSON (keys sorted: what "the same answer" means)
  ARGV[3] '1' when the answer is ok:true  ARGV[4] live channel  ARGV[5] max replay events
  ARGV[6] worker control channel prefix  ARGV[7] executionId  ARGV[8] the answer as sent (what
  the kernel gets: its keys in the client's order)

  Returns 'answered' | 'same' (this answer was given before) | 'conflict' (another answer was
  given before) | 'missing' (no such call) | 'gone' (the call or its execution ended unanswered).
  Emits `tool_result {callId, ok}` and the status event `{type: 'tool_result', callId, name, ok}`,
  and publishes {op: 'tool-answer', executionId, callId,
  answer?} on the control channel of the worker running the execution (`answer` when under 64
  KiB, saving the worker a read; larger ones it reads from the hash).
]]
local state = redis.call('HGET', KEYS[3], ARGV[1] .. ':state')
if not state then
  return 'missing'
end
if state == 'answered' then
  if redis.call('HGET', KEYS[3], ARGV[1] .. ':same') == ARGV[2] then
    return 'same'
  end
  return 'conflict'
end
if state ~= 'pending' then
  return 'gone'
end
local running, follower = runningFollower(KEYS[1])
if not running then
  return 'gone'
end
redis.call('HSET', KEYS[3], ARGV[1] .. ':state', 'answered', ARGV[1] .. ':answer', ARGV[8], ARGV[1] .. ':same', ARGV[2])
local ok = 'false'
if ARGV[3] == '1' then
  ok = 'true'
end
local callId = cjson.encode(ARGV[1])
emit(KEYS[1], KEYS[2], ARGV[4], ARGV[5], 'tool_result', '{"callId":' .. callId .. ',"ok":' .. ok .. '}', follower)
local name = cjson.encode(cjson.decode(redis.call('HGET', KEYS[3], ARGV[1])).name)
emit(KEYS[1], KEYS[2], ARGV[4], ARGV[5], 'status', '{"type":"tool_result","callId":' .. callId .. ',"name":' .. name .. ',"ok":' .. ok .. '}', follower)
local worker = redis.call('HGET', KEYS[1], 'workerId')
if worker then
  local answer = ''
  if #ARGV[8] <= 65536 then
    answer = ',"answer":' .. ARGV[8]
  end
  redis.call('PUBLISH', ARGV[6] .. worker .. ':control',
    '{"op":"tool-answer","executionId":' .. cjson.encode(ARGV[7]) .. ',"callId":' .. cjson.encode(ARGV[1]) .. answer .. '}')
end
return 'answered'
