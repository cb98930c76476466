--[[
  Admits a submission against its tenant's quotas, before accept (which runs in the session's
  slot): all the tenant-wide checks and counters in one step, so api replicas admitting at once
  cannot overshoot a limit. Touches only the tenant's keys (hash tag `{tenant}`).

  KEYS[1] tenant quota overrides (hash)     KEYS[2] tenant pending executions (zset)
  KEYS[3] tenant live sessions (hash)       KEYS[4] tenant token bucket (hash)
  KEYS[5] tenant waiting jobs (zset, fair share)
  KEYS[6] tenant sessions index (zset: session id → when its last admitted execution has surely
          ended: deadline + grace, ms)
  ARGV[1] pending member `<session>/<executionId>`  ARGV[2] sessionId
  ARGV[3] code size (bytes)  ARGV[4] requested timeout (ms; 0 = none, use the default)
  ARGV[5] default timeout (ms)
  ARGV[6..12] default limits: maxCodeBytes, maxTimeoutMs, liveSessions, pendingPerSession,
              pendingPerTenant, submitsPerSecond, submitBurst
  ARGV[13] now (ms; '' = the Redis server's clock)  ARGV[14] grace (ms) after the deadline
           before a pending entry left by a crash is dropped
  ARGV[15] fair share: the job id the execution gets if it heads its lane ('' = fair share off)
  ARGV[16] waiting entries older than this (ms) are dropped (left by a crash)
  ARGV[17] retention (s): the sessions index keeps the sessions admitted to within it

  Returns {'ok', timeoutMs, priority}: admitted — the execution is counted as pending (score:
  deadline + grace) and its session as live, one token is taken; timeoutMs is the request's, or
  the default capped at the tenant's maximum. priority > 0: the session had nothing pending, so
  the execution will head its lane; it is counted as waiting (fair share, fair.lib.lua) and its
  job takes this priority (saves the dispatcher a round trip). 0: not counted as waiting. Or {'refused', quota, limit, retryAfterSeconds}:
  nothing was changed (no token taken). retryAfterSeconds 0: waiting does not help.
  An execution already counted is admitted again without counting it twice.
  First drops pending entries past their deadline + grace (left by a crashed process).
  Whenever it admits, the session is (re)entered in the tenant's sessions index, scored like the
  pending entry (deadline + grace), and entries whose score is older than the retention window are
  dropped (`DELETE /v1/sessions` reads it). Session keys expire at most the retention after the
  execution ends, so a session with a kernel or pending work is never missing from the index.
]]
local now = tonumber(ARGV[13])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- GT: a shorter submission never moves a session's score back (GT still adds a new member).
-- The key lives as long as its latest entry needs (score + retention). A session already
-- indexed: the key's TTL already covers every other entry, and PEXPIRE GT only lengthens it to
-- this entry's need. A session new to the index (possibly a new key, with no TTL yet): entries
-- past the retention window are dropped (the only time the index grows) and the TTL is set
-- from the latest entry.
local function indexSession(timeoutMs)
  local retentionMs = tonumber(ARGV[17]) * 1000
  local endsAt = now + timeoutMs + tonumber(ARGV[14])
  if redis.call('ZADD', KEYS[6], 'GT', endsAt, ARGV[2]) == 0 then
    redis.call('PEXPIRE', KEYS[6], endsAt - now + retentionMs, 'GT')
    return
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. (now - retentionMs))
  local last = redis.call('ZRANGE', KEYS[6], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[6], math.max(1, tonumber(last[2]) - now + retentionMs))
end

local names = {'maxCodeBytes', 'maxTimeoutMs', 'liveSessions', 'pendingPerSession', 'pendingPerTenant',
  'submitsPerSecond', 'submitBurst'}
local overrides = redis.call('HMGET', KEYS[1], unpack(names))
local limit = {}
for i, name in ipairs(names) do
  local default = tonumber(ARGV[5 + i])
  local override = tonumber(overrides[i])
  if override and (i > 2 or override < default) then
    limit[name] = override
  else
    limit[name] = default
  end
end

if tonumber(ARGV[3]) > limit.maxCodeBytes then
  return {'refused', 'maxCodeBytes', limit.maxCodeBytes, 0}
end
local timeoutMs = tonumber(ARGV[4])
if timeoutMs == 0 then
  timeoutMs = math.min(tonumber(ARGV[5]), limit.maxTimeoutMs)
elseif timeoutMs > limit.maxTimeoutMs then
  return {'refused', 'maxTimeoutMs', limit.maxTimeoutMs, 0}
end

-- Already counted (an Idempotency-Key claim taken over after its first holder stalled): the
-- execution is admitted once.
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  indexSession(timeoutMs)
  return {'ok', timeoutMs, 0}
end

-- Repair: entries whose execution should long have ended (a crash between admit and accept,
-- or between finish and release).
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, 100)
for _, member in ipairs(stale) do
  redis.call('ZREM', KEYS[2], member)
  local session = string.match(member, '^([^/]+)/')
  if session and redis.call('HINCRBY', KEYS[3], session, -1) <= 0 then
    redis.call('HDEL', KEYS[3], session)
  end
end

if redis.call('ZCARD', KEYS[2]) >= limit.pendingPerTenant then
  return {'refused', 'pendingPerTenant', limit.pendingPerTenant, 1}
end
local sessionPending = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if sessionPending >= limit.pendingPerSession then
  return {'refused', 'pendingPerSession', limit.pendingPerSession, 1}
end
if sessionPending == 0 and redis.call('HLEN', KEYS[3]) >= limit.liveSessions then
  return {'refused', 'liveSessions', limit.liveSessions, 1}
end

-- Token bucket: refills at submitsPerSecond up to submitBurst; a submission takes one token.
local rate = limit.submitsPerSecond
local burst = limit.submitBurst
local bucket = redis.call('HMGET', KEYS[4], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  at = now
end
if tokens < 1 then
  return {'refused', 'submitsPerSecond', rate, math.max(1, math.ceil((1 - tokens) / rate))}
end
redis.call('HSET', KEYS[4], 'tokens', tostring(tokens - 1), 'at', at)
redis.call('PEXPIRE', KEYS[4], math.ceil(burst / rate * 1000) + 1000)

redis.call('ZADD', KEYS[2], now + timeoutMs + tonumber(ARGV[14]), ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)

local priority = 0
if sessionPending == 0 and ARGV[15] ~= '' then
  priority = fairPriority(KEYS[5], ARGV[15], now, tonumber(ARGV[16]))
end
indexSession(timeoutMs)
return {'ok', timeoutMs, priority}
