--[[
  Records a tool call that code in the kernel made, and emits it (`tool_call`) so the client
  following the execution can answer it.

  KEYS[1] execution hash  KEYS[2] execution event stream  KEYS[3] the execution's tool calls hash
  ARGV[1] callId  ARGV[2] the call as JSON ({callId, name, args, deadlineAt})  ARGV[3] live channel
  ARGV[4] max replay events  ARGV[5] retention (seconds)  ARGV[6] the status event that goes with
  the call (JSON), emitted right after it

  The calls hash holds, per call: <callId> the call JSON (never changed), <callId>:state
  (pending | answered | timedOut | ended), <callId>:answer (the answer's JSON, once answered) and
  <callId>:same (the answer with its keys sorted, to tell the same answer again from another).
  Returns the `tool_call` event's seq, or 0 when the execution is not running (nothing recorded).
]]
local running, follower = runningFollower(KEYS[1])
if not running then
  return 0
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2], ARGV[1] .. ':state', 'pending')
redis.call('EXPIRE', KEYS[3], ARGV[5])
local seq = emit(KEYS[1], KEYS[2], ARGV[3], ARGV[4], 'tool_call', ARGV[2], follower)
emit(KEYS[1], KEYS[2], ARGV[3], ARGV[4], 'status', ARGV[6], follower)
return seq
