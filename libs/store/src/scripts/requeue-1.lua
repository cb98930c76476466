--[[
  Puts a running execution whose kernel was lost back to queued. It stays the head of its lane,
  so order is kept. Two cases:
    'unstarted': its code was never sent to a kernel (lost during claim or kernel start), so
                 running it elsewhere cannot repeat a side effect; always allowed.
    'retry':     its code may have run; allowed once, when the request set retryOnKernelLoss.

  KEYS[1] execution hash
  ARGV[1] workerId it must be running on  ARGV[2] 'unstarted' | 'retry'

  Returns the new attempt number (>= 1; dispatch it under a fresh job id) or 0 when not allowed.
]]
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'workerId') ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'unstarted' then
  if redis.call('HGET', KEYS[1], 'codeSent') == '1' then
    return 0
  end
else
  if redis.call('HGET', KEYS[1], 'retryOnKernelLoss') ~= '1' or redis.call('HGET', KEYS[1], 'retried') == '1' then
    return 0
  end
  redis.call('HSET', KEYS[1], 'retried', '1')
end
redis.call('HSET', KEYS[1], 'status', 'queued')
redis.call('HDEL', KEYS[1], 'workerId', 'workerBoot', 'startedAt', 'cancelRequested', 'codeSent')
return redis.call('HINCRBY', KEYS[1], 'attempt', 1)
