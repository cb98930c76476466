import { createHash, randomBytes } from 'node:crypto';
import { newExecutionId, type FleetStore, type IdempotencyRecord } from '@kernelfleet/store';
import { acceptRequest as request, connectStore, testPrefix } from '../support/store-fixtures';

/**
 * The Redis side of owners (accept registers them, release-owner-1.lua takes them off) and of
 * Idempotency-Key claims, raced from many connections.
 */

const prefix = testPrefix('owners');
const connect = () => connectStore(prefix, 'owners-test');

describe('owners and idempotency keys in Redis', () => {
  const stores: FleetStore[] = [];
  let store: FleetStore;

  beforeAll(() => {
    for (let i = 0; i < 8; i++) stores.push(connect());
    store = stores[0];
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
  });

  it('accept registers ownerId; the session id only while there is no owner; per-call never', async () => {
    const explicit = { tenant: 'acme', sessionId: 'reg-explicit' };
    await store.executions.accept(request('reg-explicit', { ownerId: 'alice' }));
    await store.executions.accept(request('reg-explicit'));
    await store.executions.accept(request('reg-explicit', { ownerId: 'bob' }));
    expect(await store.sessions.owners(explicit)).toEqual(['alice', 'bob']);
    expect(await store.sessions.indexedSessionsOf('acme', 'alice')).toEqual(['reg-explicit']);

    const fallback = { tenant: 'acme', sessionId: 'reg-fallback' };
    await store.executions.accept(request('reg-fallback'));
    expect(await store.sessions.owners(fallback)).toEqual(['reg-fallback']);
    expect(await store.sessions.indexedSessionsOf('acme', 'reg-fallback')).toEqual(['reg-fallback']);

    const perCall = { tenant: 'acme', sessionId: 'reg-per-call' };
    await store.executions.accept(request('reg-per-call', { kernelMode: 'per-call', ownerId: 'carol' }));
    await store.executions.accept(request('reg-per-call', { kernelMode: 'per-call' }));
    expect(await store.sessions.owners(perCall)).toEqual([]);
    expect(await store.sessions.indexedSessionsOf('acme', 'carol')).toEqual([]);
    // Another tenant's owner of the same name is another owner.
    expect(await store.sessions.indexedSessionsOf('globex', 'alice')).toEqual([]);
  });

  it('releasing the two owners of a shared session at once: exactly one of them is the last', async () => {
    for (let round = 0; round < 20; round++) {
      const sessionId = `shared-${round}`;
      await store.executions.accept(request(sessionId, { ownerId: 'a' }));
      await store.executions.accept(request(sessionId, { ownerId: 'b' }));
      const ref = { tenant: 'acme', sessionId };
      const released = await Promise.all([stores[1].sessions.releaseOwner(ref, 'a'), stores[2].sessions.releaseOwner(ref, 'b')]);
      expect(released.slice().sort()).toEqual(['detached', 'last']);
      expect(await store.sessions.owners(ref)).toEqual([]);
    }
    expect(await store.sessions.indexedSessionsOf('acme', 'a')).toEqual([]);
    expect(await store.sessions.releaseOwner({ tenant: 'acme', sessionId: 'shared-0' }, 'a')).toBe('not_owner');
  });

  it('clearOwners empties the owner set and the index entries of every owner', async () => {
    const ref = { tenant: 'acme', sessionId: 'cleared' };
    await store.executions.accept(request('cleared', { ownerId: 'x' }));
    await store.executions.accept(request('cleared', { ownerId: 'y' }));
    expect(await store.sessions.clearOwners(ref)).toEqual(['x', 'y']);
    expect(await store.sessions.owners(ref)).toEqual([]);
    expect(await store.sessions.indexedSessionsOf('acme', 'x')).toEqual([]);
    expect(await store.sessions.indexedSessionsOf('acme', 'y')).toEqual([]);
  });

  it('accepting one execution id from many connections creates it once', async () => {
    const executionId = newExecutionId();
    const outcomes = await Promise.all(stores.map((s) => s.executions.accept(request('dup', { executionId }))));
    expect(outcomes.filter((o) => !o.duplicate)).toHaveLength(1);
    expect(new Set(outcomes.map((o) => o.seq))).toEqual(new Set([1]));
    expect(outcomes.filter((o) => o.isHead)).toHaveLength(1);
    expect((await store.executions.laneOf({ tenant: 'acme', sessionId: 'dup' })).map((r) => r.executionId)).toEqual([executionId]);
    const events = await store.executions.readEvents({ tenant: 'acme', sessionId: 'dup', executionId }, 0);
    expect(events.map((e) => e.type)).toEqual(['queued']);
  });

  it('one claim of a new Idempotency-Key wins among many; the others read the winner', async () => {
    const key = `key {with} / odd chars ${randomBytes(4).toString('hex')}`;
    const claims: IdempotencyRecord[] = stores.map((_, i) => ({
      fingerprint: 'fp',
      sessionId: 's',
      executionId: `ex_${i}`,
      claimedAt: Date.now(),
    }));
    const results = await Promise.all(stores.map((s, i) => s.idempotency.claim('acme', key, claims[i], 60)));
    const winners = results.map((r, i) => (r === null ? i : -1)).filter((i) => i >= 0);
    expect(winners).toHaveLength(1);
    for (const r of results) if (r) expect(r.executionId).toBe(`ex_${winners[0]}`);

    await store.idempotency.complete('acme', key, { ...claims[winners[0]], seq: 7 });
    expect(await store.idempotency.read('acme', key)).toMatchObject({ executionId: `ex_${winners[0]}`, seq: 7 });
    const ttl = await store.redis.ttl(store.keys.idempotency('acme', createHash('sha256').update(key).digest('hex')));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    // Tenants do not share keys.
    expect(await store.idempotency.read('globex', key)).toBeNull();
  });
});
