--[[
  The fair-share priority of a lane head dispatched outside admit and release (failover, a job
  moved to its session's home worker): see fair.lib.lua.

  KEYS[1] tenant waiting jobs (zset)
  ARGV[1] job id  ARGV[2] now (ms)  ARGV[3] waiting entries older than this (ms) are dropped

  Returns the job's BullMQ priority.
]]
return fairPriority(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
