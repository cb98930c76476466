--[[
  Takes one owner off a session (dispose by owner, seed §2.4). Removing it and finding out
  whether it was the last one is one step, so two owners released at once cannot both see the
  other still there (and leave the session running with no owner) or both see themselves last.

  KEYS[1] session owners set
  ARGV[1] ownerId

  Returns 'not_owner' (not an owner: nothing changed), 'detached' (removed; other owners keep
  the session) or 'last' (removed and it was the only owner: the caller disposes the session).
]]
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then
  return 'not_owner'
end
if redis.call('SCARD', KEYS[1]) == 0 then
  return 'last'
end
return 'detached'
