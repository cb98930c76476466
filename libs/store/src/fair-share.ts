import type { RedisClient } from './redis-connection';
import type { KeySpace } from './keys';

/** BullMQ's lowest priority (its PRIORITY_LIMIT is 2^21). */
const LOWEST_PRIORITY = 2 ** 21;

/**
 * A waiting entry older than this is dropped as left by a crash (a job that was never taken):
 * longer than any job waits, since queued executions end at their deadline and their jobs are
 * taken (and refused by the claim) soon after.
 */
export const STALE_WAITING_MS = 60 * 60_000;

/** A waiting count as a BullMQ priority (1 … 2^21). */
export function fairPriority(waiting: number): number {
  return Math.min(LOWEST_PRIORITY, Math.max(1, waiting));
}

/**
 * Fair share between tenants on FIFO BullMQ queues (docs/quotas.md): a lane head is dispatched
 * with priority k when it is its tenant's k-th head waiting for a worker, so every tenant's
 * k-th waiting job competes with the other tenants' k-th rather than queueing behind a
 * flooding tenant's whole backlog. Within one priority BullMQ keeps FIFO.
 *
 * The count per tenant is a sorted set of waiting job ids in the tenant's slot: added at
 * dispatch, removed when a worker takes the job. On the hot paths the admit and release
 * scripts, which run in the tenant's slot anyway, add the new lane head and answer its
 * priority, so dispatch costs no extra round trip; other dispatches ask `priorityFor`. It only steers order: an entry left behind
 * by a crash makes its tenant look busier until it goes stale, and is never a correctness issue.
 */
export class FairShare {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    readonly enabled: boolean,
  ) {}

  /** The priority of a job about to be added for `tenant`; undefined when fair share is off. */
  async priorityFor(tenant: string, jobId: string, now = Date.now()): Promise<number | undefined> {
    if (!this.enabled) return undefined;
    const key = this.keys.tenantWaiting(tenant);
    const [, , [, waiting]] = (await this.redis
      .multi()
      .zremrangebyscore(key, '-inf', now - STALE_WAITING_MS)
      .zadd(key, 'NX', now, jobId)
      .zcard(key)
      .exec()) as [unknown, unknown, [null, number]];
    return fairPriority(waiting);
  }

  /** A worker took the job: it no longer waits. */
  async taken(tenant: string, jobId: string): Promise<void> {
    if (this.enabled) await this.redis.zrem(this.keys.tenantWaiting(tenant), jobId);
  }
}
