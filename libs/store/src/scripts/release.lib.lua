--[[
  Shared prelude (not a script itself), for release-3.lua and finish-release-10.lua.

  releasePending(K, A): an execution ended (or was never accepted after admit): it no longer
  counts against its tenant's pending quota, and its session stops being live with its last
  pending execution.
  Idempotent: a second release of the same execution changes nothing. With fair share on, the
  session's next lane head (about to be dispatched) is counted as waiting in the same step
  (fair.lib.lua).

  K[1] tenant pending executions (zset)  K[2] tenant live sessions (hash)
  K[3] tenant waiting jobs (zset, fair share)
  A[1] pending member `<session>/<executionId>`  A[2] sessionId
  A[3] job id of the next lane head to count as waiting ('' = none, or fair share off)
  A[4] now (ms)  A[5] waiting entries older than this (ms) are dropped

  Returns {released, priority}: released 1 when the execution was counted, 0 when it was not
  (already released or dropped); priority of the next head's job (0 when none was given).
]]
local function releasePending(K, A)
  local released = 0
  if redis.call('ZREM', K[1], A[1]) == 1 then
    released = 1
    if redis.call('HINCRBY', K[2], A[2], -1) <= 0 then
      redis.call('HDEL', K[2], A[2])
    end
  end
  local priority = 0
  if A[3] ~= '' then
    priority = fairPriority(K[3], A[3], tonumber(A[4]), tonumber(A[5]))
  end
  return {released, priority}
end
