--[[
  Asks the worker running an execution to stop it (interrupt, keep partial output).

  KEYS[1] execution hash
  ARGV[1] executionId  ARGV[2] prefix of worker control channels (`<prefix>:worker:`)

  Returns 'signalled' when the execution is running: the flag is set and a
  `{"op":"cancel","executionId":…}` message is PUBLISHed on `<ARGV[2]><workerId>:control`.
  Otherwise returns the current status, or 'missing'.
]]
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return 'missing'
end
if status ~= 'running' then
  return status
end
redis.call('HSET', KEYS[1], 'cancelRequested', '1')
local workerId = redis.call('HGET', KEYS[1], 'workerId')
redis.call('PUBLISH', ARGV[2] .. workerId .. ':control',
  '{"op":"cancel","executionId":' .. cjson.encode(ARGV[1]) .. '}')
return 'signalled'
