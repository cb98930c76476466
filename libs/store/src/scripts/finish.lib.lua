--[[
  Shared prelude (not a script itself), for finish-5.lua and finish-release-10.lua.

  finishExecution(K, A) ends an execution in exactly one terminal state and releases its place
  in the lane.

  K[1] execution hash  K[2] session lane  K[3] execution event stream
  K[4] session info hash  K[5] artifact
  A[1] executionId  A[2] required current status ('' = any non-terminal)
  A[3] terminal status  A[4] the terminal execution as JSON  A[5] now (ms)
  A[6] retention (s)  A[7] live channel  A[8] max replay events
  A[9] '1' when the result names an artifact (its TTL then counts from now, as the
       execution's; an artifact the result does not name keeps the TTL its writes gave it)

  Returns {'finished', nextHead or ''} — a non-empty nextHead must be dispatched by the caller —
  or {'missing'} | {'already', status} | {'conflict', status}. Emits `result` (the last event),
  also on the channel of the api process waiting for it (the execution's `waiter`) and of the
  one following every event (its `follower`, emit.lib.lua).
]]
local function finishExecution(K, A)
  local exec = redis.call('HMGET', K[1], 'status', 'waiter', 'follower')
  local status = exec[1]
  if not status then
    return {'missing'}
  end
  if status ~= 'queued' and status ~= 'running' then
    return {'already', status}
  end
  if A[2] ~= '' and A[2] ~= status then
    return {'conflict', status}
  end
  redis.call('HSET', K[1], 'status', A[3], 'doc', A[4], 'finishedAt', A[5])
  local _, event = emit(K[1], K[3], A[7], A[8], 'result', A[4], exec[3] and {exec[3], A[1]})
  if exec[2] then
    redis.call('PUBLISH', exec[2], event)
  end

  local nextHead = ''
  local front = redis.call('LRANGE', K[2], 0, 1)
  if front[1] == A[1] then
    redis.call('LPOP', K[2])
    nextHead = front[2] or ''
  else
    redis.call('LREM', K[2], 1, A[1])
  end
  local retention = tonumber(A[6])
  for _, i in ipairs(A[9] == '1' and {1, 3, 4, 5} or {1, 3, 4}) do
    redis.call('EXPIRE', K[i], retention)
  end
  redis.call('HSET', K[4], 'lastActivityAt', A[5])
  return {'finished', nextHead}
end
