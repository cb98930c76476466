--[[
  Shared prelude, prepended to every script that dispatches with fair share (not a script
  itself). docs/quotas.md, "Fair share".

  fairPriority(waitingKey, jobId, now, staleMs) -> BullMQ priority (1 … 2^21 - 1)
    Gives the tenant's new waiting lane head a place on a virtual clock: now, or one second
    after the tenant's latest waiting head, whichever is later, but never more than
    LEAD_MS ahead of now. The place is the job's score in the tenant's waiting set (ms) and,
    in whole seconds, its priority: BullMQ serves lower numbers first, FIFO within one. So a
    tenant's heads keep their order (a later one never overtakes an earlier one), and a
    tenant with a backlog of k heads has its k-th at now + k s, behind other tenants' first
    heads of the next k seconds: round-robin between busy tenants. A job already counted keeps
    its place. Entries older than staleMs (left by a crash) are dropped first.
]]
local LEAD_MS = 120000
-- Priorities wrap around this span (about 24 days of seconds), under BullMQ's limit of 2^21.
local SPAN_S = 2097152 - 1 - LEAD_MS / 1000 - 1
local function fairPriority(waitingKey, jobId, now, staleMs)
  redis.call('ZREMRANGEBYSCORE', waitingKey, '-inf', now - staleMs)
  local at = tonumber(redis.call('ZSCORE', waitingKey, jobId))
  if not at then
    at = now
    local latest = redis.call('ZRANGE', waitingKey, -1, -1, 'WITHSCORES')
    if latest[2] then at = math.max(at, tonumber(latest[2]) + 1000) end
    at = math.min(at, now + LEAD_MS)
    redis.call('ZADD', waitingKey, at, jobId)
  end
  return math.floor(at / 1000) % SPAN_S + 1
end
