import type { QuotaLimits } from '@kernelfleet/config';
import { PENDING_GRACE_MS, type Admission, type ExecutionRef, type FleetStore } from '@kernelfleet/store';
import { connectStore, testPrefix } from '../support/store-fixtures';

const DEFAULTS: QuotaLimits = {
  liveSessions: 3,
  pendingPerSession: 4,
  pendingPerTenant: 6,
  submitsPerSecond: 10,
  submitBurst: 1_000,
  maxCodeBytes: 1_000,
  maxTimeoutMs: 60_000,
};

let n = 0;
const ref = (sessionId: string, tenant = 'acme'): ExecutionRef => ({ tenant, sessionId, executionId: `ex_${++n}` });

describe('tenant quotas (admit-6.lua, release-3.lua) against a real Redis', () => {
  const prefix = testPrefix('quota');
  let stores: FleetStore[];
  let store: FleetStore;

  const admit = (r: ExecutionRef, limits: Partial<QuotaLimits> = {}, extra: { codeBytes?: number; timeoutMs?: number; now?: number } = {}) =>
    store.quotas.admit(
      { ref: r, codeBytes: extra.codeBytes ?? 1, timeoutMs: extra.timeoutMs, defaultTimeoutMs: 30_000 },
      { ...DEFAULTS, ...limits },
      extra.now,
    );

  beforeAll(() => {
    stores = [0, 1, 2].map((i) => connectStore(prefix, `quota-${i}`));
    store = stores[0];
  });
  afterAll(async () => {
    const keys = await store.redis.keys(`${prefix}:*`);
    if (keys.length) await store.redis.del(...keys);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('admits up to each pending limit, refuses beyond it with the quota named, and counts again after release', async () => {
    const tenant = 't-pending';
    const inSession = [1, 2, 3, 4].map(() => ref('s1', tenant));
    for (const r of inSession) expect((await admit(r)).kind).toBe('admitted');
    expect(await admit(ref('s1', tenant))).toEqual({ kind: 'refused', quota: 'pendingPerSession', limit: 4, retryAfterSeconds: 1 });
    expect((await admit(ref('s2', tenant))).kind).toBe('admitted');
    expect((await admit(ref('s2', tenant))).kind).toBe('admitted');
    expect(await admit(ref('s3', tenant))).toEqual({ kind: 'refused', quota: 'pendingPerTenant', limit: 6, retryAfterSeconds: 1 });
    expect(await store.quotas.usage(tenant)).toEqual({ pending: 6, liveSessions: 2 });

    expect((await store.quotas.release(inSession[0])).released).toBe(true);
    expect((await store.quotas.release(inSession[0])).released).toBe(false);
    expect(await store.quotas.usage(tenant)).toEqual({ pending: 5, liveSessions: 2 });
    expect((await admit(ref('s1', tenant))).kind).toBe('admitted');
  });

  it('counts live sessions (sessions with something pending) and frees one when its last execution ends', async () => {
    const tenant = 't-live';
    const firsts = ['a', 'b', 'c'].map((s) => ref(s, tenant));
    for (const r of firsts) expect((await admit(r)).kind).toBe('admitted');
    // A live session may take more; a new one may not.
    expect((await admit(ref('a', tenant))).kind).toBe('admitted');
    expect(await admit(ref('d', tenant))).toEqual({ kind: 'refused', quota: 'liveSessions', limit: 3, retryAfterSeconds: 1 });
    await store.quotas.release(firsts[1]);
    expect((await admit(ref('d', tenant))).kind).toBe('admitted');
  });

  it('holds every limit exactly with several connections admitting at once', async () => {
    const tenant = 't-race';
    const refs = Array.from({ length: 60 }, (_, i) => ref(`s${i % 10}`, tenant));
    const outcomes = await Promise.all(
      refs.map((r, i) =>
        stores[i % stores.length].quotas.admit(
          { ref: r, codeBytes: 1, defaultTimeoutMs: 30_000 },
          { ...DEFAULTS, liveSessions: 5, pendingPerSession: 3, pendingPerTenant: 12 },
        ),
      ),
    );
    const admitted = refs.filter((_, i) => outcomes[i].kind === 'admitted');
    const perSession = new Map<string, number>();
    for (const r of admitted) perSession.set(r.sessionId, (perSession.get(r.sessionId) ?? 0) + 1);
    // 5 live sessions × 3 could take 15: the tenant's 12 is what binds.
    expect(admitted).toHaveLength(12);
    expect(perSession.size).toBeLessThanOrEqual(5);
    expect(Math.max(...perSession.values())).toBeLessThanOrEqual(3);
    expect(await store.quotas.usage(tenant)).toEqual({ pending: 12, liveSessions: perSession.size });
  });

  it('token bucket: a burst, then one submission per 1/rate second, refusals until the next token', async () => {
    const tenant = 't-rate';
    const limits = { submitsPerSecond: 2, submitBurst: 3, pendingPerSession: 100, pendingPerTenant: 100 };
    const t0 = 1_000_000_000;
    const at = (ms: number) => admit(ref('s', tenant), limits, { now: t0 + ms });
    for (let i = 0; i < 3; i++) expect((await at(0)).kind).toBe('admitted');
    expect(await at(0)).toEqual({ kind: 'refused', quota: 'submitsPerSecond', limit: 2, retryAfterSeconds: 1 });
    expect((await at(499)).kind).toBe('refused'); // 0.998 tokens
    expect((await at(500)).kind).toBe('admitted'); // 1 token
    expect((await at(500)).kind).toBe('refused');
    // A long pause refills to the burst size, not beyond.
    for (let i = 0; i < 3; i++) expect((await at(60_000)).kind).toBe('admitted');
    expect((await at(60_000)).kind).toBe('refused');
  });

  it('a refusal changes nothing: no token taken, nothing counted', async () => {
    const tenant = 't-nochange';
    const limits = { submitsPerSecond: 1, submitBurst: 1, pendingPerSession: 1 };
    const t0 = 2_000_000_000;
    expect((await admit(ref('s', tenant), limits, { now: t0 })).kind).toBe('admitted');
    expect((await admit(ref('s', tenant), limits, { now: t0 + 5_000 })).kind).toBe('refused'); // session full
    // The refused one took no token: a submission to another session at the same instant passes.
    expect((await admit(ref('other', tenant), limits, { now: t0 + 5_000 })).kind).toBe('admitted');
    expect(await store.quotas.usage(tenant)).toEqual({ pending: 2, liveSessions: 2 });
  });

  it('applies overrides per tenant; code size and timeout overrides only lower the defaults', async () => {
    await store.quotas.setOverrides('t-small', { pendingPerSession: 1, maxCodeBytes: 5, maxTimeoutMs: 10_000 });
    await store.quotas.setOverrides('t-big', { maxCodeBytes: 5_000, maxTimeoutMs: 600_000 });
    expect(await admit(ref('s', 't-small'), {}, { codeBytes: 6 })).toEqual({ kind: 'refused', quota: 'maxCodeBytes', limit: 5, retryAfterSeconds: 0 });
    expect(await admit(ref('s', 't-small'), {}, { timeoutMs: 10_001 })).toEqual({ kind: 'refused', quota: 'maxTimeoutMs', limit: 10_000, retryAfterSeconds: 0 });
    // No timeout asked: the default (30 s) capped at the tenant's maximum.
    expect(await admit(ref('s', 't-small'))).toMatchObject({ kind: 'admitted', timeoutMs: 10_000 });
    expect((await admit(ref('s', 't-small'))).kind).toBe('refused');
    expect((await admit(ref('s', 't-big'), {}, { codeBytes: 1_001 })).kind).toBe('refused');
    expect((await admit(ref('s', 't-big'), {}, { timeoutMs: 60_001 })).kind).toBe('refused');
    expect(await admit(ref('s', 't-big'))).toMatchObject({ kind: 'admitted', timeoutMs: 30_000 });
    // Another tenant is untouched by t-small's overrides.
    expect((await admit(ref('s', 't-plain'), {}, { codeBytes: 900, timeoutMs: 50_000 })).kind).toBe('admitted');
    expect((await admit(ref('s', 't-plain'))).kind).toBe('admitted');
    await store.quotas.clearOverrides('t-small');
    expect(await store.quotas.overrides('t-small')).toEqual({});
  });

  it('admits an execution already counted once (an Idempotency-Key takeover), without counting it twice', async () => {
    const r = ref('s', 't-twice');
    expect((await admit(r)).kind).toBe('admitted');
    expect((await admit(r)).kind).toBe('admitted');
    expect(await store.quotas.usage('t-twice')).toEqual({ pending: 1, liveSessions: 1 });
  });

  it('drops entries a crash left behind once their deadline and the grace have passed', async () => {
    const tenant = 't-leak';
    const limits = { pendingPerTenant: 2 };
    const t0 = 3_000_000_000;
    for (const s of ['a', 'b']) expect((await admit(ref(s, tenant), limits, { now: t0, timeoutMs: 1_000 })).kind).toBe('admitted');
    expect((await admit(ref('c', tenant), limits, { now: t0 + 1_000 + PENDING_GRACE_MS })).kind).toBe('refused');
    expect((await admit(ref('c', tenant), limits, { now: t0 + 1_001 + PENDING_GRACE_MS })).kind).toBe('admitted');
    expect(await store.quotas.usage(tenant)).toEqual({ pending: 1, liveSessions: 1 });
  });

  it('repair releases counted executions that have ended', async () => {
    const tenant = 't-repair';
    const [ended, running] = [ref('a', tenant), ref('b', tenant)];
    await admit(ended);
    await admit(running);
    const released = await store.quotas.repair(tenant, async (r) => r.executionId === ended.executionId);
    expect(released).toBe(1);
    expect(await store.quotas.usage(tenant)).toEqual({ pending: 1, liveSessions: 1 });
  });

  it('fair share in the scripts: a new lane head is counted as waiting at admit, a next head at release', async () => {
    const tenant = 'f-scripts';
    const first = ref('s1', tenant);
    const admitted = await admit(first);
    const p = (admitted as { priority: number }).priority;
    expect(p).toBeGreaterThan(0);
    // Behind a pending execution it will not head the lane: no priority, not counted.
    const second = ref('s1', tenant);
    expect((await admit(second)) as { priority?: number }).toEqual({ kind: 'admitted', timeoutMs: 30_000, priority: undefined });
    // The tenant's next waiting head a second later on its clock (fair.lib.lua; capacity-store.int-spec.ts).
    expect(await admit(ref('s2', tenant))).toMatchObject({ priority: p + 1 });
    // The first is taken by a worker and ends; the second becomes head, placed after s2's.
    await store.fairShare.taken(tenant, first.executionId);
    expect(await store.quotas.release(first, second.executionId)).toEqual({ released: true, priority: p + 2 });
  });
});
