--[[
  Accepts an execution: numbers it in its session, records it, appends it to the lane and
  registers its owner.

  KEYS[1] session seq counter     KEYS[2] session lane       KEYS[3] execution hash
  KEYS[4] execution event stream  KEYS[5] session info hash  KEYS[6] session owners set
  ARGV[1] executionId  ARGV[2] acceptedAt (ms)  ARGV[3] retention (s)  ARGV[4] max replay events
  ARGV[5] live channel
  ARGV[6] owner to add ('' = none)
  ARGV[7] fallback owner, added only while the session has no owner ('' = none)
  ARGV[8..] field, value pairs of the request (code, deadlineAt, …)

  Returns {seq, laneLength, homeWorker or false, duplicate}: laneLength 1 means the execution is
  the lane head and the caller must dispatch it (to the home worker's queue while it is alive).
  duplicate 1: an execution with this id already exists (an Idempotency-Key claim taken over
  after its first holder stalled); nothing is changed and seq is the existing one's.
  Emits `queued` (event seq 1).
]]
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {tonumber(redis.call('HGET', KEYS[3], 'seq')), 0, redis.call('HGET', KEYS[5], 'home'), 1}
end
local seq = redis.call('INCR', KEYS[1])
local retention = tonumber(ARGV[3])
-- One HSET for the execution and every field of its request (ARGV[8..]).
redis.call('HSET', KEYS[3], 'executionId', ARGV[1], 'seq', seq, 'status', 'queued',
  'acceptedAt', ARGV[2], 'evseq', 1, unpack(ARGV, 8))
local laneLength = redis.call('RPUSH', KEYS[2], ARGV[1])
emitNumbered(KEYS[4], ARGV[5], ARGV[4], 1, 'queued', '{"seq":' .. seq .. '}')
redis.call('HSET', KEYS[5], 'lastActivityAt', ARGV[2])
if ARGV[6] ~= '' then
  redis.call('SADD', KEYS[6], ARGV[6])
elseif ARGV[7] ~= '' and redis.call('SCARD', KEYS[6]) == 0 then
  redis.call('SADD', KEYS[6], ARGV[7])
end
for i = 3, 6 do
  redis.call('EXPIRE', KEYS[i], retention)
end
redis.call('EXPIRE', KEYS[1], retention)
return {seq, laneLength, redis.call('HGET', KEYS[5], 'home'), 0}
