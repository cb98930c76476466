--[[
  The code of a running execution is about to go to a kernel: recorded, if the execution is still
  this worker's. A reaper that took it meanwhile (the worker's lease lapsed while it started the
  kernel) may have put it back in the queue as never run, and then the code must not run here:
  the run's claim is over. After this mark, the reaper no longer re-runs it as unstarted
  (requeue-1.lua).

  KEYS[1] execution hash  KEYS[2] session info hash
  ARGV[1] workerId  ARGV[2] boot id  ARGV[3] the session kernel's generation ('' for a per-call kernel)

  Returns 1 when marked, 0 when the execution is no longer running on this worker process.
]]
if redis.call('HGET', KEYS[1], 'status') ~= 'running'
  or redis.call('HGET', KEYS[1], 'workerId') ~= ARGV[1]
  or redis.call('HGET', KEYS[1], 'workerBoot') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'codeSent', '1')
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'usedGeneration', ARGV[3])
end
return 1
