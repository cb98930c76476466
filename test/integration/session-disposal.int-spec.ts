import { SHARED_QUEUE, type ExecutionStatus } from '@kernelfleet/contracts';
import type { QuotaLimits } from '@kernelfleet/config';
import type { ExecutionRef, FleetStore, SessionRef } from '@kernelfleet/store';
import { acceptRequest, connectStore, testPrefix } from '../support/store-fixtures';

/**
 * The Redis side of disposal (SessionDisposal, dispose-2.lua) and of the tenant's sessions index
 * that `DELETE /v1/sessions` reads (admit-6.lua). connectStore keeps 600 s of retention.
 */

const LIMITS: QuotaLimits = {
  liveSessions: 100,
  pendingPerSession: 100,
  pendingPerTenant: 1_000,
  submitsPerSecond: 1_000,
  submitBurst: 1_000,
  maxCodeBytes: 1_000,
  maxTimeoutMs: 60_000,
};

describe('session disposal in Redis', () => {
  const prefix = testPrefix('dispose');
  let store: FleetStore;
  let listener: FleetStore;

  beforeAll(() => {
    store = connectStore(prefix, 'dispose-test');
    listener = connectStore(prefix, 'dispose-listener');
  });
  afterAll(async () => {
    const keys = await store.redis.keys(`${prefix}:*`);
    if (keys.length) await store.redis.del(...keys);
    await Promise.all([store.close(), listener.close()]);
  });

  /** What the api does on submit: admit (tenant slot, sessions index), then accept. */
  async function submit(ref: SessionRef, opts: { ownerId?: string; now?: number } = {}): Promise<ExecutionRef> {
    const executionId = `ex_${Math.random().toString(16).slice(2)}`;
    const admission = await store.quotas.admit(
      { ref: { ...ref, executionId }, codeBytes: 8, defaultTimeoutMs: 30_000 },
      LIMITS,
      opts.now,
    );
    expect(admission.kind).toBe('admitted');
    const accepted = await store.executions.accept(acceptRequest(ref.sessionId, { tenant: ref.tenant, executionId, ownerId: opts.ownerId }));
    return accepted.ref;
  }

  const status = async (ref: ExecutionRef) => (await store.executions.status(ref)) as ExecutionStatus;

  it('admit enters each admitted session in its tenant\'s index, which keeps only the retention window', async () => {
    const now = Date.now();
    // Its execution ended (deadline + grace) over 600 s ago.
    await submit({ tenant: 'idx', sessionId: 'long-ago' }, { now: now - 700_000 });
    await submit({ tenant: 'idx', sessionId: 'recent' }, { now: now - 1_000 });
    await submit({ tenant: 'idx', sessionId: 'recent' });
    await submit({ tenant: 'idx-other', sessionId: 'theirs' });
    // Refused (too much code): not entered.
    const refused = await store.quotas.admit({ ref: { tenant: 'idx', sessionId: 'refused', executionId: 'ex_r' }, codeBytes: 5_000, defaultTimeoutMs: 30_000 }, LIMITS);
    expect(refused.kind).toBe('refused');

    expect(await store.sessions.indexedSessionsOfTenant('idx')).toEqual(['recent']);
    expect(await store.sessions.indexedSessionsOfTenant('idx-other')).toEqual(['theirs']);
    // Gone from Redis too, not only filtered on read. An entry lasts until the retention window
    // after its execution has surely ended (deadline 30 s + grace 60 s), and so does the key.
    expect(await store.redis.zrange(store.keys.tenantSessions('idx'), 0, -1)).toEqual(['recent']);
    const [, score] = await store.redis.zrange(store.keys.tenantSessions('idx'), 0, -1, 'WITHSCORES');
    expect(Number(score) - Date.now()).toBeGreaterThan(85_000);
    expect(Number(score) - Date.now()).toBeLessThanOrEqual(90_000);
    const ttl = await store.redis.pttl(store.keys.tenantSessions('idx'));
    expect(ttl).toBeGreaterThan(680_000);
    expect(ttl).toBeLessThanOrEqual(690_000);
  });

  it('dispose cancels the queued executions (none dispatched meanwhile), clears owners, un-homes the session and tells its home once', async () => {
    const ref = { tenant: 'acme', sessionId: 'to-dispose' };
    const queued = [await submit(ref, { ownerId: 'ann' }), await submit(ref, { ownerId: 'bob' }), await submit(ref)];
    expect(await store.sessions.beginGeneration(ref, 'w-home')).toBe(1);
    await store.sessions.setStateLossPending(ref, 'lost');
    const messages: string[] = [];
    const unlisten = await listener.live.listen(store.keys.workerControl('w-home'), (m) => messages.push(m));
    try {
      expect(await store.disposal.dispose(ref)).toEqual({ cancelled: 3, home: 'w-home' });
      for (const execution of queued) expect(await status(execution)).toBe('cancelled');
      // Cancelled from the tail: no queued head handed the lane on to one about to be cancelled.
      for (const execution of queued) expect(await store.dispatcher.queue(SHARED_QUEUE).getJob(execution.executionId)).toBeUndefined();
      expect(await store.sessions.get(ref)).toMatchObject({ workerId: null, kernel: { generation: 1, state: 'none' }, pending: 0 });
      expect(await store.sessions.pendingStateLoss(ref)).toBeNull();
      expect(await store.sessions.isHeldBy(ref, 'w-home', 1)).toBe(false);
      expect(await store.sessions.owners(ref)).toEqual([]);
      expect(await store.sessions.indexedSessionsOf('acme', 'ann')).toEqual([]);
      expect(await store.sessions.indexedSessionsOf('acme', 'bob')).toEqual([]);
      expect(await store.sessions.homedOn('w-home')).toEqual([]);
      await new Promise((r) => setTimeout(r, 200));
      expect(messages.map((m) => JSON.parse(m))).toEqual([{ op: 'dispose', tenant: 'acme', sessionId: 'to-dispose' }]);

      // Again: nothing left to cancel, no home to tell.
      expect(await store.disposal.dispose(ref)).toEqual({ cancelled: 0, home: null });
      // The next kernel is the next generation; a late state from the old one is refused.
      expect(await store.sessions.setKernelState(ref, 'w-home', 1, 'dead')).toBe(false);
      expect(await store.sessions.beginGeneration(ref, 'w-next')).toBe(2);
      expect(await store.sessions.setKernelState(ref, 'w-next', 2, 'idle')).toBe(true);

      // Without the message (a lost one, as far as the worker can tell): Redis changes the same.
      await store.disposal.dispose(ref, { notify: false });
      expect(await store.sessions.get(ref)).toMatchObject({ workerId: null, kernel: { generation: 2, state: 'none' } });
      await new Promise((r) => setTimeout(r, 200));
      expect(messages).toHaveLength(1);
    } finally {
      unlisten();
    }
  });

  it('disposeAll disposes only the tenant\'s sessions with a home worker or pending executions', async () => {
    const tenant = 'all';
    const homed = { tenant, sessionId: 'homed' };
    const pending = { tenant, sessionId: 'pending' };
    const nothing = { tenant, sessionId: 'nothing' };
    const theirs = { tenant: 'all-other', sessionId: 'homed' };
    for (const ref of [homed, nothing, theirs]) await store.lanes.endQueued(await submit(ref), 'cancelled');
    await store.sessions.beginGeneration(homed, 'w1');
    await store.sessions.beginGeneration(theirs, 'w1');
    const waiting = await submit(pending);

    expect(await store.disposal.disposeAll(tenant)).toEqual(['homed', 'pending']);
    expect(await status(waiting)).toBe('cancelled');
    expect(await store.sessions.get(homed)).toMatchObject({ workerId: null, kernel: { state: 'none' } });
    expect(await store.sessions.get(theirs)).toMatchObject({ workerId: 'w1', kernel: { generation: 1, state: 'idle' } });
    expect(await store.disposal.disposeAll(tenant)).toEqual([]);
    expect(await store.disposal.disposeAll('no-such-tenant')).toEqual([]);
  });
});
