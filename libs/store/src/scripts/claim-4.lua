--[[
  A worker claims the execution it was handed (claim.lib.lua says how, and what it answers).
  KEYS and ARGV are claimHead's K and A.
]]
return claimHead(KEYS, ARGV)
