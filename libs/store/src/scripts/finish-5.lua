--[[
  Ends an execution in exactly one terminal state (finish.lib.lua says how, and what it
  answers). KEYS and ARGV are finishExecution's K and A.
]]
return finishExecution(KEYS, ARGV)
