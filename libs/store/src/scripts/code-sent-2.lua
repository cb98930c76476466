--[[
  The code of a running execution is about to go to a kernel: recorded, if the execution is still
  this worker's. A reaper that took it meanwhile (the worker's lease lapsed while it started the
  kernel) may have put it back in the queue as never run, and then the code must not run here:
  the run's claim is over. After this mark, the reaper no longer re-runs it as unstarted
  (requeue-1.lua). A session kernel's code also stays home when the session was disposed since
  the claim (its `disposals` count moved on from the claim's `disposalEpoch`, dispose-2.lua):
  the disposal came while the kernel was starting.

  KEYS[1] execution hash  KEYS[2] session info hash
  ARGV[1] workerId  ARGV[2] boot id  ARGV[3] the session kernel's generation ('' for a per-call kernel)

  Returns 1 when marked, 0 when the execution is no longer running on this worker process, -1
  when the session was disposed since the claim (nothing marked).
]]
local exec = redis.call('HMGET', KEYS[1], 'status', 'workerId', 'workerBoot', 'disposalEpoch')
if exec[1] ~= 'running' or exec[2] ~= ARGV[1] or exec[3] ~= ARGV[2] then
  return 0
end
local sessionKernel = ARGV[3] ~= ''
local session = {}
if sessionKernel then
  session = redis.call('HMGET', KEYS[2], 'disposals', 'usedGeneration')
  if (session[1] or '0') ~= (exec[4] or '0') then
    return -1
  end
end
redis.call('HSET', KEYS[1], 'codeSent', '1')
-- Written once per generation: the warm path reads it, and most runs reuse the kernel.
if sessionKernel and session[2] ~= ARGV[3] then
  redis.call('HSET', KEYS[2], 'usedGeneration', ARGV[3])
end
return 1
