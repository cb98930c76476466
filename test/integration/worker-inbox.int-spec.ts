import { SHARED_QUEUE } from '@kernelfleet/contracts';
import { FleetStore, workerQueueName, type ExecutionRef } from '@kernelfleet/store';
import { connectTestRedis } from '../support/redis-client';
import { acceptRequest, connectStore, testPrefix } from '../support/store-fixtures';

/**
 * A worker's inbox on a real Redis (docs/architecture.md, "The warm path"): the heads of sessions
 * homed on a live worker go there and the rest to the shared queue; a worker takes at most its
 * concurrency at once; a lost worker's inbox moves to the front of the shared queue in order; a
 * queued head missing from the inbox (a pop lost with its connection) is placed again.
 */
describe('worker inbox', () => {
  const prefix = testPrefix('inbox');
  const redis = connectTestRedis();
  let store: FleetStore;
  const lease = { bootId: 'b1', maxKernels: 8, kernels: 0, running: 0, concurrency: 2, draining: false };

  beforeAll(async () => {
    store = connectStore(prefix, `${prefix}-store`);
    await store.registry.startHeartbeat('w-live', () => lease);
  });

  afterAll(async () => {
    await store.registry.stop('w-live');
    await store.close();
    await redis.quit();
  });

  /** A session homed on `workerId` with one accepted (queued) head. */
  async function headHomedOn(sessionId: string, workerId: string): Promise<ExecutionRef> {
    const { ref } = await store.executions.accept(acceptRequest(sessionId));
    await store.sessions.beginGeneration(ref, workerId);
    return ref;
  }

  const sharedJobIds = async () => (await store.dispatcher.queue(SHARED_QUEUE).getJobs(['wait', 'prioritized'])).map((j) => j.id);

  it('puts the head of a session homed on a live worker in its inbox, and any other on the shared queue', async () => {
    const warm = await headHomedOn('warm', 'w-live');
    const orphan = await headHomedOn('orphan', 'w-gone');
    expect(await store.dispatcher.dispatch(warm)).toBe(workerQueueName('w-live'));
    expect(await store.dispatcher.dispatch(orphan)).toBe(SHARED_QUEUE);
    expect(await store.dispatcher.inboxes.waiting('w-live')).toEqual([warm]);
    expect(await sharedJobIds()).toEqual([orphan.executionId]);
    // Dispatched again (a repair, a race): still one entry.
    expect(await store.dispatcher.toWorker('w-live', warm)).toBe(false);
    expect(await store.dispatcher.inboxes.depth('w-live')).toBe(1);
    await store.dispatcher.inboxes.remove('w-live', warm);
    await store.dispatcher.queue(SHARED_QUEUE).obliterate({ force: true });
  });

  it('runs at most its concurrency at once and waits for what runs when it closes', async () => {
    const refs = [await headHomedOn('c1', 'w-c'), await headHomedOn('c2', 'w-c'), await headHomedOn('c3', 'w-c')];
    for (const ref of refs) await store.dispatcher.toWorker('w-c', ref);
    const consumer = store.inboxConsumer('w-c', 2, (error) => {
      throw error;
    });
    const running = new Set<string>();
    let most = 0;
    const done: string[] = [];
    const releases: (() => void)[] = [];
    consumer.start(async (job) => {
      running.add(job.executionId);
      most = Math.max(most, running.size);
      await new Promise<void>((resolve) => releases.push(resolve));
      running.delete(job.executionId);
      done.push(job.executionId);
    }, async () => undefined);
    const until = async (what: () => boolean) => {
      for (const end = Date.now() + 10_000; !what(); await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > end) throw new Error('timed out waiting');
      }
    };
    await until(() => releases.length === 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(running.size).toBe(2);
    expect(await store.dispatcher.inboxes.depth('w-c')).toBe(1);
    releases.shift()!();
    await until(() => releases.length === 2);
    const closed = consumer.close();
    releases.forEach((release) => release());
    await closed;
    expect(most).toBe(2);
    expect(done.sort()).toEqual(refs.map((r) => r.executionId).sort());
  });

  it("moves a lost worker's inbox to the front of the shared queue in its order, and only then counts it empty", async () => {
    const first = await headHomedOn('m1', 'w-lost');
    const second = await headHomedOn('m2', 'w-lost');
    await store.dispatcher.toWorker('w-lost', first, 1);
    await store.dispatcher.toWorker('w-lost', second, 2);
    // A head already on the shared queue with a fair-share priority: the moved ones go before it.
    const placed = await headHomedOn('m3', 'w-other');
    await store.dispatcher.enqueue(SHARED_QUEUE, placed, placed.executionId, 5);
    await store.sessions.release(first, 'w-lost', 'lost');
    await store.sessions.release(second, 'w-lost', 'lost');
    expect(await store.failover.isEmpty('w-lost')).toBe(false);

    expect(await store.failover.moveQueuedJobs('w-lost')).toBe(2);
    expect(await store.dispatcher.inboxes.depth('w-lost')).toBe(0);
    expect(await store.failover.isEmpty('w-lost')).toBe(true);
    const queue = store.dispatcher.queue(SHARED_QUEUE);
    // BullMQ serves its wait list (no priority), first added first, before the prioritized set.
    expect((await queue.getJobs(['waiting'], 0, -1, true)).map((j) => j.id)).toEqual([first.executionId, second.executionId]);
    expect((await queue.getJobs(['prioritized'])).map((j) => j.id)).toEqual([placed.executionId]);
    await queue.obliterate({ force: true });
  });

  it('places a queued head again when it is missing from the inbox, and leaves one that is there in its place', async () => {
    const lost = await headHomedOn('r1', 'w-r');
    const waiting = await headHomedOn('r2', 'w-r');
    await store.dispatcher.toWorker('w-r', waiting, 7);
    const before = await redis.zscore(store.keys.workerInbox('w-r'), `acme/r2/${waiting.executionId}`);

    expect(await store.failover.reofferHeads('w-r')).toBe(1);
    expect(await store.dispatcher.inboxes.waiting('w-r')).toEqual([lost, waiting]);
    expect(await redis.zscore(store.keys.workerInbox('w-r'), `acme/r2/${waiting.executionId}`)).toBe(before);
    // A head no longer queued (claimed meanwhile) is not placed again.
    await store.dispatcher.inboxes.remove('w-r', lost);
    await store.executions.markRunningAndClaim(lost, 'w-r', 'b1', Date.now);
    expect(await store.failover.reofferHeads('w-r')).toBe(0);
    expect(await store.dispatcher.inboxes.waiting('w-r')).toEqual([waiting]);
  });
});
