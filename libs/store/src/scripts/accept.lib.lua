--[[
  Shared prelude (not a script itself), for accept-6.lua and submit-17.lua.

  accept(K, A) accepts an execution: numbers it in its session, records it, appends it to the
  lane and registers its owner. K and A are its KEYS and ARGV:

  K[1] session seq counter     K[2] session lane       K[3] execution hash
  K[4] execution event stream  K[5] session info hash  K[6] session owners set
  A[1] executionId  A[2] acceptedAt (ms)  A[3] retention (s)  A[4] max replay events
  A[5] live channel
  A[6] owner to add ('' = none)
  A[7] fallback owner, added only while the session has no owner ('' = none)
  A[8] deadlineAt (ms)
  A[9..] field, value pairs of the request (code, kernelMode, …)

  Returns {seq, laneLength, homeWorker or false, duplicate}: laneLength 1 means the execution is
  the lane head and the caller must dispatch it (to the home worker's queue while it is alive).
  duplicate 1: an execution with this id already exists (an Idempotency-Key claim taken over
  after its first holder stalled); nothing is changed and seq is the existing one's.
  Emits `queued` (event seq 1), also to the request's `follower` among A[9..] (emit.lib.lua).
]]
local function accept(K, A)
  if redis.call('EXISTS', K[3]) == 1 then
    return {tonumber(redis.call('HGET', K[3], 'seq')), 0, redis.call('HGET', K[5], 'home'), 1}
  end
  local seq = redis.call('INCR', K[1])
  local retention = tonumber(A[3])
  -- One HSET for the execution and every field of its request (A[9..]).
  redis.call('HSET', K[3], 'executionId', A[1], 'seq', seq, 'status', 'queued',
    'acceptedAt', A[2], 'deadlineAt', A[8], 'evseq', 1, unpack(A, 9))
  local laneLength = redis.call('RPUSH', K[2], A[1])
  local follower
  for i = 9, #A - 1, 2 do
    if A[i] == 'follower' then
      follower = {A[i + 1], A[1]}
    end
  end
  emitNumbered(K[4], A[5], A[4], 1, 'queued', '{"seq":' .. seq .. '}', follower)
  redis.call('HSET', K[5], 'lastActivityAt', A[2])
  if A[6] ~= '' then
    redis.call('SADD', K[6], A[6])
  elseif A[7] ~= '' and redis.call('SCARD', K[6]) == 0 then
    redis.call('SADD', K[6], A[7])
  end
  for i = 3, 6 do
    redis.call('EXPIRE', K[i], retention)
  end
  redis.call('EXPIRE', K[1], retention)
  return {seq, laneLength, redis.call('HGET', K[5], 'home'), 0}
end
