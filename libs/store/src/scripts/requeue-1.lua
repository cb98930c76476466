--[[
  Puts a running execution whose kernel was lost back to queued, for its one re-run
  (`retryOnKernelLoss`). It stays the head of its lane, so order is kept.

  KEYS[1] execution hash
  ARGV[1] workerId it must be running on

  Returns 1 when requeued; 0 when it is not running there or was already re-run once.
]]
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'workerId') ~= ARGV[1] then
  return 0
end
if redis.call('HGET', KEYS[1], 'retried') == '1' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'retried', '1')
redis.call('HDEL', KEYS[1], 'workerId', 'startedAt', 'cancelRequested')
return 1
