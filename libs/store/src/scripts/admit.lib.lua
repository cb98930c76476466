--[[
  Shared prelude (not a script itself), for admit-6.lua and submit-17.lua.

  admit(K, A) admits a submission against its tenant's quotas, before accept (which runs in the
  session's slot): all the tenant-wide checks and counters in one step, so api replicas
  admitting at once cannot overshoot a limit. Touches only the tenant's keys (hash tag
  `{tenant}`). K and A are its KEYS and ARGV:

  K[1] tenant quota overrides (hash)     K[2] tenant pending executions (zset)
  K[3] tenant live sessions (hash)       K[4] tenant token bucket (hash)
  K[5] tenant waiting jobs (zset, fair share)
  K[6] tenant sessions index (zset: session id → when its last admitted execution has surely
       ended: deadline + grace, ms)
  A[1] pending member `<session>/<executionId>`  A[2] sessionId
  A[3] code size (bytes)  A[4] requested timeout (ms; 0 = none, use the default)
  A[5] default timeout (ms)
  A[6..12] default limits: maxCodeBytes, maxTimeoutMs, liveSessions, pendingPerSession,
           pendingPerTenant, submitsPerSecond, submitBurst
  A[13] now (ms; '' = the Redis server's clock)  A[14] grace (ms) after the deadline
        before a pending entry left by a crash is dropped
  A[15] fair share: the job id the execution gets if it heads its lane ('' = fair share off)
  A[16] waiting entries older than this (ms) are dropped (left by a crash)
  A[17] retention (s): the sessions index keeps the sessions admitted to within it

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
local function admit(K, A)
  local now = tonumber(A[13])
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
    local retentionMs = tonumber(A[17]) * 1000
    local endsAt = now + timeoutMs + tonumber(A[14])
    if redis.call('ZADD', K[6], 'GT', endsAt, A[2]) == 0 then
      redis.call('PEXPIRE', K[6], endsAt - now + retentionMs, 'GT')
      return
    end
    redis.call('ZREMRANGEBYSCORE', K[6], '-inf', '(' .. (now - retentionMs))
    local last = redis.call('ZRANGE', K[6], -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', K[6], math.max(1, tonumber(last[2]) - now + retentionMs))
  end

  local names = {'maxCodeBytes', 'maxTimeoutMs', 'liveSessions', 'pendingPerSession', 'pendingPerTenant',
    'submitsPerSecond', 'submitBurst'}
  local overrides = redis.call('HMGET', K[1], unpack(names))
  local limit = {}
  for i, name in ipairs(names) do
    local default = tonumber(A[5 + i])
    local override = tonumber(overrides[i])
    if override and (i > 2 or override < default) then
      limit[name] = override
    else
      limit[name] = default
    end
  end

  if tonumber(A[3]) > limit.maxCodeBytes then
    return {'refused', 'maxCodeBytes', limit.maxCodeBytes, 0}
  end
  local timeoutMs = tonumber(A[4])
  if timeoutMs == 0 then
    timeoutMs = math.min(tonumber(A[5]), limit.maxTimeoutMs)
  elseif timeoutMs > limit.maxTimeoutMs then
    return {'refused', 'maxTimeoutMs', limit.maxTimeoutMs, 0}
  end

  -- Already counted (an Idempotency-Key claim taken over after its first holder stalled): the
  -- execution is admitted once.
  if redis.call('ZSCORE', K[2], A[1]) then
    indexSession(timeoutMs)
    return {'ok', timeoutMs, 0}
  end

  -- Repair: entries whose execution should long have ended (a crash between admit and accept,
  -- or between finish and release).
  local stale = redis.call('ZRANGEBYSCORE', K[2], '-inf', '(' .. now, 'LIMIT', 0, 100)
  for _, member in ipairs(stale) do
    redis.call('ZREM', K[2], member)
    local session = string.match(member, '^([^/]+)/')
    if session and redis.call('HINCRBY', K[3], session, -1) <= 0 then
      redis.call('HDEL', K[3], session)
    end
  end

  if redis.call('ZCARD', K[2]) >= limit.pendingPerTenant then
    return {'refused', 'pendingPerTenant', limit.pendingPerTenant, 1}
  end
  local sessionPending = tonumber(redis.call('HGET', K[3], A[2]) or '0')
  if sessionPending >= limit.pendingPerSession then
    return {'refused', 'pendingPerSession', limit.pendingPerSession, 1}
  end
  if sessionPending == 0 and redis.call('HLEN', K[3]) >= limit.liveSessions then
    return {'refused', 'liveSessions', limit.liveSessions, 1}
  end

  -- Token bucket: refills at submitsPerSecond up to submitBurst; a submission takes one token.
  local rate = limit.submitsPerSecond
  local burst = limit.submitBurst
  local bucket = redis.call('HMGET', K[4], 'tokens', 'at')
  local tokens = tonumber(bucket[1]) or burst
  local at = tonumber(bucket[2]) or now
  if now > at then
    tokens = math.min(burst, tokens + (now - at) * rate / 1000)
    at = now
  end
  if tokens < 1 then
    return {'refused', 'submitsPerSecond', rate, math.max(1, math.ceil((1 - tokens) / rate))}
  end
  redis.call('HSET', K[4], 'tokens', tostring(tokens - 1), 'at', at)
  redis.call('PEXPIRE', K[4], math.ceil(burst / rate * 1000) + 1000)

  redis.call('ZADD', K[2], now + timeoutMs + tonumber(A[14]), A[1])
  redis.call('HINCRBY', K[3], A[2], 1)

  local priority = 0
  if sessionPending == 0 and A[15] ~= '' then
    priority = fairPriority(K[5], A[15], now, tonumber(A[16]))
  end
  indexSession(timeoutMs)
  return {'ok', timeoutMs, priority}
end
