--[[
  An execution ended (or was never accepted after admit): it no longer counts against its
  tenant's pending quota, and its session stops being live with its last pending execution.
  Idempotent: a second release of the same execution changes nothing. With fair share on, the
  session's next lane head (about to be dispatched) is counted as waiting in the same step
  (fair.lib.lua).

  KEYS[1] tenant pending executions (zset)  KEYS[2] tenant live sessions (hash)
  KEYS[3] tenant waiting jobs (zset, fair share)
  ARGV[1] pending member `<session>/<executionId>`  ARGV[2] sessionId
  ARGV[3] job id of the next lane head to count as waiting ('' = none, or fair share off)
  ARGV[4] now (ms)  ARGV[5] waiting entries older than this (ms) are dropped

  Returns {released, priority}: released 1 when the execution was counted, 0 when it was not
  (already released or dropped); priority of the next head's job (0 when none was given).
]]
local released = 0
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  released = 1
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[2])
  end
end
local priority = 0
if ARGV[3] ~= '' then
  priority = fairPriority(KEYS[3], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
end
return {released, priority}
