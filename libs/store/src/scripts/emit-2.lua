--[[
  Emits one event of a running execution (stdout, stderr, display, status).

  KEYS[1] execution hash  KEYS[2] execution event stream
  ARGV[1] event type  ARGV[2] event data as JSON  ARGV[3] live channel  ARGV[4] max replay events

  Returns the event's seq, or 0 when the execution is no longer running (late output of a
  cancelled or finished execution is dropped, so `result` stays the last event).
]]
local running, follower = runningFollower(KEYS[1])
if not running then
  return 0
end
local seq = emit(KEYS[1], KEYS[2], ARGV[3], ARGV[4], ARGV[1], ARGV[2], follower)
return seq
