--[[
  One Redis only (its keys span slots): ends an execution (finish.lib.lua) and, when it ended
  here, does in the same step what follows every finish: its deadline entry goes, its tenant's
  pending quota is released (release.lib.lua; with fair share, the next lane head counted as
  waiting), and, for a worker ending its own run, it leaves the worker's running set. On a Redis
  Cluster these are commands of their own after the finish (ExecutionRepository.finish).

  KEYS[1..5] finishExecution's K  KEYS[6] deadlines (zset)  KEYS[7..9] releasePending's K
  KEYS[10] the running set of the worker ending its run
  ARGV[1..9] finishExecution's A  ARGV[10] the execution's member in the deadlines and running sets
  ARGV[11..15] releasePending's A, its third (the next head to count as waiting) filled in here
  ARGV[16] '1' when fair share is on (the next head is counted as waiting)
  ARGV[17] '1': leave the worker's running set (whatever the finish answered: the run is over)

  Returns {'finished', nextHead or '', next head's priority (0 = none)} or what finishExecution
  returns otherwise.
]]
local finished = finishExecution({unpack(KEYS, 1, 5)}, {unpack(ARGV, 1, 9)})
if ARGV[17] == '1' then
  redis.call('SREM', KEYS[10], ARGV[10])
end
if finished[1] ~= 'finished' then
  return finished
end
redis.call('ZREM', KEYS[6], ARGV[10])
local releaseArgs = {unpack(ARGV, 11, 15)}
if ARGV[16] == '1' then
  releaseArgs[3] = finished[2]
end
local released = releasePending({unpack(KEYS, 7, 9)}, releaseArgs)
return {'finished', finished[2], released[2]}
