--[[
  One Redis only (its keys span slots): a worker takes a lane head it was handed. The head no
  longer waits (fair share: its tenant's waiting entry goes, whatever the claim answers), the
  worker claims it (claim.lib.lua) and, when the claim is its own, lists it in the worker's
  running set in the same step, where the worker's reaper finds it if the worker dies. On a
  Redis Cluster these are steps of their own (ExecutionRepository.markRunningAndClaim).

  KEYS[1..4] claimHead's K  KEYS[5] the worker's running set
  KEYS[6] the tenant's waiting heads (zset, fair share)
  ARGV[1..7] claimHead's A  ARGV[8] the execution's member in the running set
  ARGV[9] its job id among the waiting heads ('' = fair share off)

  Returns what claimHead returns.
]]
if ARGV[9] ~= '' then
  redis.call('ZREM', KEYS[6], ARGV[9])
end
local reply = claimHead({unpack(KEYS, 1, 4)}, {unpack(ARGV, 1, 7)})
if reply[1] == 'claimed' then
  redis.call('SADD', KEYS[5], ARGV[8])
end
return reply
