--[[
  Accepts an execution into its session's lane: accept.lib.lua, with KEYS and ARGV as it
  describes them. On one Redis (no Cluster) submit-17.lua admits and accepts in one step.
]]
return accept(KEYS, ARGV)
