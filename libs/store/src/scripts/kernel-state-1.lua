--[[
  Records the state of a session's kernel, only while the session is still homed on the worker
  with that kernel's generation: a worker whose session was disposed or taken away meanwhile
  (dispose-2, rehome-1) must not write a state over the one that was decided for it.

  KEYS[1] session info hash
  ARGV[1] workerId  ARGV[2] kernel generation  ARGV[3] kernelState

  Returns 1 when the state was written, else 0.
]]
if redis.call('HGET', KEYS[1], 'home') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'generation') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'kernelState', ARGV[3])
return 1
