--[[
  Shared prelude (not a script itself), for claim-4.lua and claim-running-6.lua.

  claimHead(K, A): a worker claims the execution it was handed: it must be queued, at the head
  of its lane and within its deadline.

  K[1] execution hash  K[2] session lane  K[3] execution event stream
  K[4] session info hash (its `disposals` count is kept as the claim's `disposalEpoch`: a
  disposal of the session after the claim stops the code from going out, code-sent-2.lua)
  A[1] executionId  A[2] workerId  A[3] now (ms)  A[4] live channel
  A[5] max replay events  A[6] boot id of the worker process (tells a restart apart)
  A[7] the generation of the session's kernel this worker holds alive ('' for none)

  The warm path in one step: when the worker holds the session's kernel alive (A[7]), the
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
local function claimHead(K, A)
  local exec = redis.call('HMGET', K[1], 'status', 'deadlineAt', 'workerId', 'workerBoot', 'kernelMode', 'reset', 'fileOp', 'follower')
  local status = exec[1]
  if not status then
    return {'missing'}
  end
  if status ~= 'queued' then
    return {status, exec[3] or '', exec[4] or ''}
  end
  if redis.call('LINDEX', K[2], 0) ~= A[1] then
    return {'not_head'}
  end
  if tonumber(A[3]) >= tonumber(exec[2]) then
    return {'expired'}
  end
  local session = redis.call('HMGET', K[4], 'disposals', 'home', 'generation', 'usedGeneration')
  local sent = A[7] ~= '' and session[2] == A[2] and session[3] == A[7]
    and exec[5] == 'session' and exec[6] ~= '1' and not exec[7]
  local running = {'status', 'running', 'startedAt', A[3], 'workerId', A[2], 'workerBoot', A[6],
    'disposalEpoch', session[1] or '0'}
  if sent then
    table.insert(running, 'codeSent')
    table.insert(running, '1')
    -- As in code-sent-2.lua: written once per generation.
    if session[4] ~= A[7] then
      redis.call('HSET', K[4], 'usedGeneration', A[7])
    end
  end
  redis.call('HSET', K[1], unpack(running))
  emit(K[1], K[3], A[4], A[5], 'started', '{"workerId":' .. cjson.encode(A[2]) .. '}', exec[8] and {exec[8], A[1]})
  local reply = redis.call('HGETALL', K[1])
  table.insert(reply, 1, sent and '1' or '')
  table.insert(reply, 1, session[3] or '0')
  table.insert(reply, 1, session[2] or '')
  table.insert(reply, 1, 'claimed')
  return reply
end
