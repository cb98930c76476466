--[[
  The whole accept path in one step, on one Redis only (its keys span the tenant's, the
  session's and a worker's slots, which a Redis Cluster keeps apart): claims the request's
  Idempotency-Key, admits the submission (admit.lib.lua), accepts it (accept.lib.lua), indexes
  it, schedules its deadline and, when it heads its lane and its session is homed on the worker
  the caller guessed, places it in that worker's inbox. A Redis Cluster runs the same steps as
  commands and admit-6.lua, accept-6.lua in turn (Submissions).

  KEYS[1..6]  admit's K               KEYS[7..12] accept's K
  KEYS[13] execution index (id → `<tenant>/<session>`)   KEYS[14] deadlines (zset)
  KEYS[15] the owner's sessions index (set)  KEYS[16] the guessed home worker's inbox (zset)
  KEYS[17] the Idempotency-Key's record (string)
  ARGV[1..17] admit's A (A[13] '' = the Redis server's clock)
  ARGV[18] the execution index's value  ARGV[19] the execution's ref `<tenant>/<session>/<id>`
  ARGV[20] owner whose sessions index gets the session ('' = none)
  ARGV[21] the guessed home worker, alive and not draining as the caller last saw it ('' = none)
  ARGV[22] the key's record as JSON, without its seq ('' = no Idempotency-Key)
  ARGV[23] the key record's TTL (s)
  ARGV[24..] accept's A; its A[8] (deadlineAt) '' = acceptedAt + the admitted timeout

  Returns {'key', record JSON} when the Idempotency-Key is taken already (nothing changed: the
  caller reads what it stands for), admit's refusal as it is (nothing changed, the key left
  unclaimed), or {'ok', timeoutMs, priority, deadlineAt, seq, laneLength, home or false,
  duplicate, dispatched}: the key then names the execution with its seq; dispatched 1 = the
  head is in the guessed worker's inbox; a head not dispatched here is the caller's to dispatch,
  with `priority` (> 0: already counted as waiting for fair share).
]]
local keyed = ARGV[22] ~= ''
if keyed then
  local taken = redis.call('GET', KEYS[17])
  if taken then
    return {'key', taken}
  end
end

local now = tonumber(ARGV[13])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local admitArgs = {unpack(ARGV, 1, 17)}
admitArgs[13] = now
local admitted = admit({unpack(KEYS, 1, 6)}, admitArgs)
if admitted[1] ~= 'ok' then
  return admitted
end
local timeoutMs, priority = admitted[2], admitted[3]

local acceptArgs = {unpack(ARGV, 24)}
if acceptArgs[8] == '' then
  acceptArgs[8] = tonumber(acceptArgs[2]) + timeoutMs
end
local deadlineAt = tonumber(acceptArgs[8])
local accepted = accept({unpack(KEYS, 7, 12)}, acceptArgs)
local seq, laneLength, home, duplicate = accepted[1], accepted[2], accepted[3], accepted[4]

local retention = tonumber(acceptArgs[3])
redis.call('SET', KEYS[13], ARGV[18], 'EX', retention)
if keyed then
  redis.call('SET', KEYS[17], string.sub(ARGV[22], 1, -2) .. ',"seq":' .. seq .. '}', 'EX', ARGV[23])
end
-- NX: a duplicate accept must not move the deadline of the execution that already exists.
redis.call('ZADD', KEYS[14], 'NX', deadlineAt, ARGV[19])
if ARGV[20] ~= '' then
  redis.call('SADD', KEYS[15], ARGV[2])
  redis.call('EXPIRE', KEYS[15], retention)
end

local fairShare = ARGV[15] ~= ''
local dispatched = 0
if duplicate ~= 1 and laneLength == 1 then
  if ARGV[21] ~= '' and home == ARGV[21] then
    if fairShare and priority == 0 then
      priority = fairPriority(KEYS[5], ARGV[15], now, tonumber(ARGV[16]))
    end
    -- The inbox's score, as inboxScore (worker-inbox.ts) gives it.
    local score = now
    if fairShare then
      score = priority * 1000 + now % 1000
    end
    redis.call('ZADD', KEYS[16], 'NX', score, ARGV[19])
    dispatched = 1
  end
elseif priority > 0 then
  -- Admit took it for a new lane head from its own count, which a crash can skew: not waiting.
  redis.call('ZREM', KEYS[5], ARGV[15])
  priority = 0
end
return {'ok', timeoutMs, priority, deadlineAt, seq, laneLength, home, duplicate, dispatched}
