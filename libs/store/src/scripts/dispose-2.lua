--[[
  Disposes a session's kernel in Redis (`DELETE /v1/sessions/{id}`, dispose by owner, dispose
  all). This is the truth a worker goes by: a worker reuses a session kernel only while the
  session is homed on it with that kernel's generation, and shuts down every kernel whose session
  is not (on the control message, or at its next reconcile). The session keeps its generation
  counter (its next kernel is the next generation) and a pending state loss is dropped: the
  client asked for a fresh kernel, so its next execution does not report `stateLost`. The
  session's `disposals` count goes up: an execution claimed before the disposal whose kernel was
  still starting (its start homes the session again) then does not send its code
  (code-sent-2.lua), it ends `cancelled`.

  KEYS[1] session info hash  KEYS[2] session owners set

  Returns {home or '', generation, owner, owner, …}: the worker that held the kernel (to be told,
  and to drop the session from its set) and the owners removed (their index entries go next).
  Changes nothing but the owners when the session has no info (it never had a kernel); the info
  hash is never created here (it would have no TTL).
]]
local home = redis.call('HGET', KEYS[1], 'home') or ''
local generation = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HDEL', KEYS[1], 'home', 'stateLossPending')
  redis.call('HSET', KEYS[1], 'kernelState', 'none')
  -- An execution claimed before this keeps the count it saw: its code no longer goes out.
  redis.call('HINCRBY', KEYS[1], 'disposals', 1)
end
local owners = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
local reply = {home, generation}
for _, owner in ipairs(owners) do
  table.insert(reply, owner)
end
return reply
