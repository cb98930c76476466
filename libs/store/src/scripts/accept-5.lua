--[[
  Accepts an execution: numbers it in its session, records it and appends it to the lane.

  KEYS[1] session seq counter     KEYS[2] session lane       KEYS[3] execution hash
  KEYS[4] execution event stream  KEYS[5] session info hash
  ARGV[1] executionId  ARGV[2] acceptedAt (ms)  ARGV[3] retention (s)  ARGV[4] max replay events
  ARGV[5] live channel  ARGV[6..] field, value pairs of the request (code, deadlineAt, …)

  Returns {seq, laneLength, homeWorker or false}: laneLength 1 means the execution is the lane
  head and the caller must dispatch it (to the home worker's queue while it is alive). Emits
  `queued` (event seq 1).
]]
local seq = redis.call('INCR', KEYS[1])
local retention = tonumber(ARGV[3])
redis.call('HSET', KEYS[3], 'executionId', ARGV[1], 'seq', seq, 'status', 'queued',
  'acceptedAt', ARGV[2], 'evseq', 0)
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
local laneLength = redis.call('RPUSH', KEYS[2], ARGV[1])
emit(KEYS[3], KEYS[4], ARGV[5], ARGV[4], 'queued', '{"seq":' .. seq .. '}')
redis.call('HSET', KEYS[5], 'lastActivityAt', ARGV[2])
for i = 3, 5 do
  redis.call('EXPIRE', KEYS[i], retention)
end
redis.call('EXPIRE', KEYS[1], retention)
return {seq, laneLength, redis.call('HGET', KEYS[5], 'home')}
