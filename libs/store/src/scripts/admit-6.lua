--[[
  Admits a submission against its tenant's quotas: admit.lib.lua, with KEYS and ARGV as it
  describes them. The accept follows in the session's slot (accept-6.lua); on one Redis (no
  Cluster) submit-17.lua runs both in one step.
]]
return admit(KEYS, ARGV)
