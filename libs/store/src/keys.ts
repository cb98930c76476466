/**
 * Redis key layout. Everything about one session lives under one hash tag,
 * `{<tenant>/<session>}`, so every Lua script touches a single Redis Cluster slot.
 * Ids never contain `{`, `}` or `/` (see contracts/ids), so the tag is unambiguous.
 */
export interface SessionRef {
  tenant: string;
  sessionId: string;
}

export interface ExecutionRef extends SessionRef {
  executionId: string;
}

export class KeySpace {
  constructor(readonly prefix: string) {}

  private session(ref: SessionRef): string {
    return `${this.prefix}:{${ref.tenant}/${ref.sessionId}}`;
  }

  /** LIST of pending execution ids; the head is the one dispatched or running. */
  lane(ref: SessionRef): string {
    return `${this.session(ref)}:lane`;
  }

  /** Counter behind the per-session accept order. */
  seq(ref: SessionRef): string {
    return `${this.session(ref)}:seq`;
  }

  /** HASH: home worker, kernel generation and state, last activity. */
  sessionInfo(ref: SessionRef): string {
    return `${this.session(ref)}:info`;
  }

  /**
   * SET of the session's owner ids (seed §2.4): who holds it, for dispose by owner. Expires
   * with the session (RETENTION_SECONDS after its last accept).
   */
  owners(ref: SessionRef): string {
    return `${this.session(ref)}:owners`;
  }

  /** HASH: one execution (request, status, result). */
  execution(ref: ExecutionRef): string {
    return `${this.session(ref)}:x:${ref.executionId}`;
  }

  /** STREAM: the execution's events, entry id `<event seq>-0`, for replay. */
  events(ref: ExecutionRef): string {
    return `${this.execution(ref)}:events`;
  }

  /** The execution's tool calls and their answers (tool-call-*.lua). */
  toolCalls(ref: ExecutionRef): string {
    return `${this.execution(ref)}:toolcalls`;
  }

  /** STRING: the full sanitised output once it overflowed the result's head and tail. */
  artifact(ref: ExecutionRef): string {
    return `${this.execution(ref)}:artifact`;
  }

  /** LIST: a file transfer's data, sender → receiver (file-transfer.ts); in the execution's slot. */
  fileData(ref: ExecutionRef): string {
    return `${this.execution(ref)}:file:data`;
  }

  /** LIST: a file transfer's credits, receiver → sender (file-transfer.ts); in the execution's slot. */
  fileCredit(ref: ExecutionRef): string {
    return `${this.execution(ref)}:file:credit`;
  }

  /** Pub/sub channel carrying the execution's events live. */
  liveChannel(ref: ExecutionRef): string {
    return `${this.execution(ref)}:live`;
  }

  /** ZSET of registered workers (member: worker id, score: when it joined). */
  workers(): string {
    return `${this.prefix}:workers`;
  }

  /** SET of `tenant/session` homed on a worker (its kernels), for failover and drain. */
  workerSessions(workerId: string): string {
    return `${this.prefix}:worker:${workerId}:sessions`;
  }

  /** SET of executions (`tenant/session/id`) a worker is running, for failover. */
  workerRunning(workerId: string): string {
    return `${this.prefix}:worker:${workerId}:running`;
  }

  /**
   * ZSET of the lane heads waiting for a worker that holds their sessions' kernels (its inbox,
   * worker-inbox.ts): member `tenant/session/id`, score the place in line.
   */
  workerInbox(workerId: string): string {
    return `${this.prefix}:worker:${workerId}:inbox`;
  }

  /** STRING with a TTL: held by the worker reaping a lost worker, so only one does. */
  reapLock(workerId: string): string {
    return `${this.prefix}:worker:${workerId}:reaping`;
  }

  /**
   * Pub/sub channel of one api process's requests: the terminal execution of each execution
   * accepted with this channel as its `waiter` (`wait=true`), every event of each accepted with
   * it as its `follower` (a streamed submit); api-process-channel.ts.
   */
  apiProcessChannel(replicaId: string): string {
    return `${this.prefix}:api:${replicaId}:events`;
  }

  /** Pub/sub channel of one worker's control messages (cancel, dispose). */
  workerControl(workerId: string): string {
    return `${this.workerControlPrefix()}${workerId}:control`;
  }

  workerControlPrefix(): string {
    return `${this.prefix}:worker:`;
  }

  /** STRING: execution id → `<tenant>/<session>`, so `GET /v1/executions/{id}` can find it. */
  executionIndex(executionId: string): string {
    return `${this.prefix}:xid:{${executionId}}`;
  }

  /**
   * SET of the session ids an owner holds in a tenant, so `DELETE /v1/owners/{id}` can find
   * them. An index, not the truth: it may hold stale entries (the session's `owners` set
   * decides), never miss a live one. Its own slot: an owner spans sessions.
   */
  ownerSessions(tenant: string, ownerId: string): string {
    return `${this.prefix}:owner:{${tenant}/${ownerId}}:sessions`;
  }

  /**
   * STRING (JSON) with its own TTL: an `Idempotency-Key` of a tenant → the request fingerprint
   * and the execution it created. The key text is hashed (`keyDigest`), since it may hold any
   * printable character, braces included.
   */
  idempotency(tenant: string, keyDigest: string): string {
    return `${this.prefix}:idem:{${tenant}/${keyDigest}}`;
  }

  /** ZSET of queued executions by deadline, swept by workers (member: tenant/session/id). */
  deadlines(): string {
    return `${this.prefix}:deadlines`;
  }

  /** STRING with a TTL: a worker's liveness lease. */
  workerLease(workerId: string): string {
    return `${this.prefix}:worker:${workerId}:lease`;
  }

  /**
   * BullMQ key prefix of one queue: `P:bull:{<queue>}`. BullMQ's scripts touch several keys of a
   * queue at once, so each queue's keys share a hash tag (BullMQ's Redis Cluster rule); a tag
   * per queue rather than one for all spreads the workers' queues over the cluster's nodes.
   */
  bullPrefix(queueName: string): string {
    return `${this.prefix}:bull:{${queueName}}`;
  }

  /**
   * HASH: one stored API key: `digest` (SHA-256 of the key, never the key), `tenant`, `label`,
   * `createdAt`. All API keys share the `{apikeys}` slot, so create and revoke are one MULTI.
   */
  apiKey(keyId: string): string {
    return `${this.prefix}:{apikeys}:key:${keyId}`;
  }

  /** ZSET of stored API key ids by creation time, for listings. */
  apiKeyIndex(): string {
    return `${this.prefix}:{apikeys}:index`;
  }

  /**
   * Tenant-wide keys share the hash tag `{<tenant>}`: another slot than any session's, so the
   * scripts that touch them (admit, release) touch nothing else.
   */
  private tenant(tenant: string): string {
    return `${this.prefix}:{${tenant}}`;
  }

  /** HASH: the tenant's quota overrides (`npm run quotas -- set`); absent fields use the defaults. */
  tenantQuotas(tenant: string): string {
    return `${this.tenant(tenant)}:quotas`;
  }

  /**
   * ZSET of the tenant's pending executions (`<session>/<id>`), scored by the time (ms) after
   * which an entry left by a crash is dropped: deadline plus a grace.
   */
  tenantPending(tenant: string): string {
    return `${this.tenant(tenant)}:pending`;
  }

  /**
   * ZSET of the tenant's sessions (member: session id, score: when its last admitted execution has
   * surely ended — deadline + grace, ms), written by admit-6.lua and trimmed there to the retention
   * window, so `DELETE /v1/sessions` can find every session of the tenant. An index, not the
   * truth: a member may have nothing left (the session's own keys decide); a session with a kernel
   * or pending work is never missing (its keys expire within the retention window after its last
   * execution ends).
   */
  tenantSessions(tenant: string): string {
    return `${this.tenant(tenant)}:sessions`;
  }

  /** HASH: session id → its pending executions, for the tenant's live sessions (HLEN). */
  tenantLiveSessions(tenant: string): string {
    return `${this.tenant(tenant)}:live`;
  }

  /** HASH: the tenant's submission token bucket (`tokens`, `at` ms). */
  tenantBucket(tenant: string): string {
    return `${this.tenant(tenant)}:bucket`;
  }

  /** ZSET of the tenant's lane heads waiting in a BullMQ queue (job id → dispatched at, ms). */
  tenantWaiting(tenant: string): string {
    return `${this.tenant(tenant)}:waiting`;
  }

  /**
   * LIST (capped, newest first) of recent terminal executions' timings as JSON
   * `{s: status, w: queue wait ms | null, r: run ms | null, at}`, for the dashboard's percentiles.
   */
  statsTimings(): string {
    return `${this.prefix}:{stats}:timings`;
  }

  /** HASH with a TTL: terminal status → executions that ended in one 10-second bucket (`at / 10 000`). */
  statsTerminal(bucket: number): string {
    return `${this.prefix}:{stats}:terminal:${bucket}`;
  }
}

export function encodeRef(ref: ExecutionRef): string {
  return `${ref.tenant}/${ref.sessionId}/${ref.executionId}`;
}

export function decodeRef(member: string): ExecutionRef | null {
  const [tenant, sessionId, executionId, extra] = member.split('/');
  if (!tenant || !sessionId || !executionId || extra !== undefined) return null;
  return { tenant, sessionId, executionId };
}
