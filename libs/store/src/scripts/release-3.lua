--[[
  An execution no longer counts against its tenant's pending quota (release.lib.lua says how,
  and what it answers). KEYS and ARGV are releasePending's K and A.
]]
return releasePending(KEYS, ARGV)
