import { SHARED_QUEUE } from '@kernelfleet/contracts';
import { FRONT, type FleetStore } from '@kernelfleet/store';
import { acceptRequest as request, connectStore, testPrefix } from '../support/store-fixtures';

/**
 * The Redis side of capacity and re-homing (docs/capacity.md) against a real Redis: eviction
 * never takes a session with pending work, fair-share places keep a tenant's order, and heads
 * handed back go ahead of everything placed by fair share.
 */
describe('capacity and re-homing in Redis', () => {
  let store: FleetStore;
  beforeAll(() => {
    store = connectStore(testPrefix('capacity'), 'capacity-test');
  });
  afterAll(async () => {
    await store.close();
  });

  it('evicts a homed session with nothing pending, never one with a queued execution or one homed elsewhere', async () => {
    const idle = { tenant: 'acme', sessionId: 'evict-idle' };
    const busy = { tenant: 'acme', sessionId: 'evict-busy' };
    for (const ref of [idle, busy]) expect(await store.sessions.beginGeneration(ref, 'w1')).toBe(1);
    await store.executions.accept(request(busy.sessionId));

    expect(await store.sessions.evict(busy, 'w1', 1)).toBe('busy');
    expect(await store.sessions.get(busy)).toMatchObject({ workerId: 'w1' });
    expect(await store.sessions.evict(idle, 'w2', 1)).toBe('moved');
    expect(await store.sessions.evict(idle, 'w1', 2)).toBe('moved');

    expect(await store.sessions.evict(idle, 'w1', 1)).toBe('evicted');
    expect(await store.redis.hgetall(store.keys.sessionInfo(idle))).toEqual({ generation: '1', kernelState: 'evicted' });
    expect(await store.sessions.homedOn('w1')).toEqual([busy]);
    // A second eviction finds it gone.
    expect(await store.sessions.evict(idle, 'w1', 1)).toBe('moved');
  });

  it("keeps a tenant's waiting heads in order and places another tenant's first head ahead of a backlog", async () => {
    const now = 1_900_000_000_000;
    const a = await Promise.all([0, 1, 2, 3].map(async (i) => (await store.fairShare.priorityFor('flood', `a${i}`, now))!));
    // One second apart on the tenant's clock: a later head never goes before an earlier one.
    expect(a.slice(1).map((p, i) => p - a[i])).toEqual([1, 1, 1]);
    // Taken heads leave; the next one still goes after those waiting.
    await store.fairShare.taken('flood', 'a0');
    expect(await store.fairShare.priorityFor('flood', 'a4', now)).toBe(a[3] + 1);
    // A job already placed keeps its place.
    expect(await store.fairShare.priorityFor('flood', 'a2', now + 5_000)).toBe(a[2]);
    // Another tenant's first head competes with the flood's first.
    expect(await store.fairShare.priorityFor('quiet', 'b0', now)).toBe(a[0]);
    // A backlog is never more than two minutes ahead of now.
    const many: number[] = [];
    for (let i = 0; i < 200; i++) many.push((await store.fairShare.priorityFor('huge', `h${i}`, now))!);
    expect(many.at(-1)! - many[0]).toBe(120);
  });

  it('puts a handed-back head ahead of every head placed by fair share', async () => {
    const placed = await store.executions.accept(request('fair-placed'));
    const handedBack = await store.executions.accept(request('handed-back'));
    await store.dispatcher.enqueue(SHARED_QUEUE, placed.ref);
    await store.dispatcher.enqueue(SHARED_QUEUE, handedBack.ref, handedBack.ref.executionId, FRONT);
    const queue = store.dispatcher.queue(SHARED_QUEUE);
    // BullMQ serves its wait list (jobs without a priority) before the prioritized set.
    expect((await queue.getJobs(['waiting'])).map((j) => j.id)).toEqual([handedBack.ref.executionId]);
    expect((await queue.getJobs(['prioritized'])).map((j) => j.id)).toEqual([placed.ref.executionId]);
    await queue.obliterate({ force: true });
  });
});
