--[[
  Evicts an idle session kernel to make room for another session (docs/capacity.md): the
  session loses its home, only while it is still homed on the worker with that kernel's
  generation and has nothing pending. A session with a queued or running execution is never
  evicted: an accept that got in first makes this refuse; one that comes after finds the session
  un-homed and dispatches its execution to the shared queue, where it gets a fresh kernel and
  `stateLost` (reason `evicted`).

  KEYS[1] session info hash  KEYS[2] session lane
  ARGV[1] workerId  ARGV[2] kernel generation

  Returns 1 when evicted (home cleared, kernelState `evicted`, or `dead` if it had died), 0 when the session has pending
  work, -1 when it is no longer homed there with that generation.
]]
if redis.call('HGET', KEYS[1], 'home') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'generation') ~= ARGV[2] then
  return -1
end
if redis.call('LLEN', KEYS[2]) > 0 then
  return 0
end
redis.call('HDEL', KEYS[1], 'home')
-- A kernel that had died keeps saying so: its state went away before the eviction.
if redis.call('HGET', KEYS[1], 'kernelState') ~= 'dead' then
  redis.call('HSET', KEYS[1], 'kernelState', 'evicted')
end
return 1
