--[[
  Takes a session away from a worker that no longer holds its kernel (lost, draining, culled).

  KEYS[1] session info hash
  ARGV[1] workerId the session must still be homed on  ARGV[2] new kernelState

  Returns 1 when the session was homed there (home cleared, state set), else 0: a session that
  already moved on is left alone.
]]
if redis.call('HGET', KEYS[1], 'home') ~= ARGV[1] then
  return 0
end
redis.call('HDEL', KEYS[1], 'home')
redis.call('HSET', KEYS[1], 'kernelState', ARGV[2])
return 1
