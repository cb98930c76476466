--[[
  Ends an execution in exactly one terminal state and releases its place in the lane.

  KEYS[1] execution hash  KEYS[2] session lane  KEYS[3] execution event stream
  KEYS[4] session info hash  KEYS[5] artifact
  ARGV[1] executionId  ARGV[2] required current status ('' = any non-terminal)
  ARGV[3] terminal status  ARGV[4] the terminal execution as JSON  ARGV[5] now (ms)
  ARGV[6] retention (s)  ARGV[7] live channel  ARGV[8] max replay events
  ARGV[9] '1' when the result names an artifact (its TTL then counts from now, as the
          execution's; an artifact the result does not name keeps the TTL its writes gave it)

  Returns {'finished', nextHead or ''} — a non-empty nextHead must be dispatched by the caller —
  or {'missing'} | {'already', status} | {'conflict', status}. Emits `result` (the last event),
  also on the results channel of the api process waiting for it (the execution's `waiter`).
]]
local exec = redis.call('HMGET', KEYS[1], 'status', 'waiter')
local status = exec[1]
if not status then
  return {'missing'}
end
if status ~= 'queued' and status ~= 'running' then
  return {'already', status}
end
if ARGV[2] ~= '' and ARGV[2] ~= status then
  return {'conflict', status}
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'doc', ARGV[4], 'finishedAt', ARGV[5])
local _, event = emit(KEYS[1], KEYS[3], ARGV[7], ARGV[8], 'result', ARGV[4])
if exec[2] then
  redis.call('PUBLISH', exec[2], event)
end

local nextHead = ''
local front = redis.call('LRANGE', KEYS[2], 0, 1)
if front[1] == ARGV[1] then
  redis.call('LPOP', KEYS[2])
  nextHead = front[2] or ''
else
  redis.call('LREM', KEYS[2], 1, ARGV[1])
end
local retention = tonumber(ARGV[6])
for _, i in ipairs(ARGV[9] == '1' and {1, 3, 4, 5} or {1, 3, 4}) do
  redis.call('EXPIRE', KEYS[i], retention)
end
redis.call('HSET', KEYS[4], 'lastActivityAt', ARGV[5])
return {'finished', nextHead}
