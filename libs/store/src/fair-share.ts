import type { RedisClient } from './redis-connection';
import type { KeySpace } from './keys';
import { registerScripts, type ScriptRunner } from './scripts';

/**
 * A waiting entry older than this is dropped as left by a crash (a job that was never taken):
 * longer than any job waits, since queued executions end at their deadline and their jobs are
 * taken (and refused by the claim) soon after.
 */
export const STALE_WAITING_MS = 60 * 60_000;

/**
 * Fair share between tenants on FIFO BullMQ queues (docs/quotas.md): a lane head's job gets a
 * BullMQ priority from a virtual clock per tenant (scripts/fair.lib.lua): now, or a second after
 * the tenant's latest waiting head, at most two minutes ahead. A tenant's heads keep their order
 * and a busy tenant's k-th waiting head competes with what other tenants dispatch k seconds
 * later: round-robin between busy tenants, and no head is overtaken for ever by later ones.
 *
 * The waiting heads of a tenant are a sorted set in the tenant's slot (job id → its place on the
 * clock, ms): added at dispatch, removed when a worker takes the job. On the hot paths the admit
 * and release scripts, which run in the tenant's slot anyway, place the new lane head and answer
 * its priority, so dispatch costs no extra round trip; other dispatches ask `priorityFor`. It
 * only steers order: an entry left behind by a crash delays its tenant's next heads until it
 * goes stale, and is never a correctness issue.
 *
 * Heads handed back by a lost or drained worker skip this: they go to the front (Dispatcher).
 */
export class FairShare {
  private readonly run: ScriptRunner;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    readonly enabled: boolean,
  ) {
    this.run = registerScripts(redis);
  }

  /** The priority of a job about to be added for `tenant`; undefined when fair share is off. */
  async priorityFor(tenant: string, jobId: string, now = Date.now()): Promise<number | undefined> {
    if (!this.enabled) return undefined;
    return (await this.run('fair-priority', [this.keys.tenantWaiting(tenant)], [jobId, now, STALE_WAITING_MS])) as number;
  }

  /** A worker took the job: it no longer waits. */
  async taken(tenant: string, jobId: string): Promise<void> {
    if (this.enabled) await this.redis.zrem(this.keys.tenantWaiting(tenant), jobId);
  }
}
