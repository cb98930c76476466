--[[
  An execution ended (or was never accepted after admit): it no longer counts against its
  tenant's pending quota, and its session stops being live with its last pending execution.
  Idempotent: a second release of the same execution changes nothing.

  KEYS[1] tenant pending executions (zset)  KEYS[2] tenant live sessions (hash)
  ARGV[1] pending member `<session>/<executionId>`  ARGV[2] sessionId

  Returns 1 when the execution was counted, 0 when it was not (already released or dropped).
]]
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return 1
