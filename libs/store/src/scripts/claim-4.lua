--[[
  A worker claims the execution it was handed: it must be queued, at the head of its lane and
  within its deadline.

  KEYS[1] execution hash  KEYS[2] session lane  KEYS[3] execution event stream
  KEYS[4] session info hash (its `disposals` count is kept as the claim's `disposalEpoch`: a
  disposal of the session after the claim stops the code from going out, code-sent-2.lua)
  ARGV[1] executionId  ARGV[2] workerId  ARGV[3] now (ms)  ARGV[4] live channel
  ARGV[5] max replay events  ARGV[6] boot id of the worker process (tells a restart apart)
  ARGV[7] the generation of the session's kernel this worker holds alive ('' for none)

  The warm path in one step: when the worker holds the session's kernel alive (ARGV[7]), the
  session is still homed there at that generation, and the execution runs on that kernel as it
  is (a session execution, no reset, not a file operation), the claim also records that the
  code goes to the kernel now, as code-sent-2.lua would right after (nothing can be disposed in
  between: both are this one step).

  Returns {'claimed', home, generation, sent, field, value, …} (the session's home worker and
  kernel generation as they are now, '1' when the code-sent mark was made here, then the
  execution hash, now `running`), or
  {'missing'} | {'not_head'} | {'expired'} |
  {<current status>, <runner workerId or ''>, <runner boot id or ''>}.
  Emits `started` when claimed.
]]
local exec = redis.call('HMGET', KEYS[1], 'status', 'deadlineAt', 'workerId', 'workerBoot', 'kernelMode', 'reset', 'fileOp')
local status = exec[1]
if not status then
  return {'missing'}
end
if status ~= 'queued' then
  return {status, exec[3] or '', exec[4] or ''}
end
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[1] then
  return {'not_head'}
end
if tonumber(ARGV[3]) >= tonumber(exec[2]) then
  return {'expired'}
end
local session = redis.call('HMGET', KEYS[4], 'disposals', 'home', 'generation', 'usedGeneration')
local sent = ARGV[7] ~= '' and session[2] == ARGV[2] and session[3] == ARGV[7]
  and exec[5] == 'session' and exec[6] ~= '1' and not exec[7]
local running = {'status', 'running', 'startedAt', ARGV[3], 'workerId', ARGV[2], 'workerBoot', ARGV[6],
  'disposalEpoch', session[1] or '0'}
if sent then
  table.insert(running, 'codeSent')
  table.insert(running, '1')
  -- As in code-sent-2.lua: written once per generation.
  if session[4] ~= ARGV[7] then
    redis.call('HSET', KEYS[4], 'usedGeneration', ARGV[7])
  end
end
redis.call('HSET', KEYS[1], unpack(running))
emit(KEYS[1], KEYS[3], ARGV[4], ARGV[5], 'started', '{"workerId":' .. cjson.encode(ARGV[2]) .. '}')
local reply = redis.call('HGETALL', KEYS[1])
table.insert(reply, 1, sent and '1' or '')
table.insert(reply, 1, session[3] or '0')
table.insert(reply, 1, session[2] or '')
table.insert(reply, 1, 'claimed')
return reply
